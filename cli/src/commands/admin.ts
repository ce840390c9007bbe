/**
 * Admin verbs over `/api/v1/admin/*`: quotas and budgets, plans, every instance, stopping anyone's
 * server, users' spend, and the data-access audit.
 */
import { writeFileSync } from 'node:fs';
import type { AuditList, Instance, Quota } from '@ngsci/contract';
import type { AdminUserList, InstanceList, PlanList, QuotaList } from '../types.js';
import { parse, str } from '../args.js';
import { EXIT, UsageError } from '../errors.js';
import { table } from '../output.js';
import {
  dollars,
  duration,
  parseDollars,
  parseDuration,
  parseInteger,
  parseServer,
  parseSize,
} from '../parse.js';
import { help, instanceRows, type Ctx } from './user.js';

const COMMON = `
Common options: --url URL, --token TOKEN (an admin's), --json`;

export const ADMIN_HELP = `Usage: ngsci admin VERB ...

Verbs:
  quota list                                  every quota and budget
  quota set (--user U | --group G | --default) [--budget DOLLARS|none] [--hard-stop|--no-hard-stop]
            [--max-concurrent N] [--sizes a,b|any] [--gpu-hours N] [--idle-cpu 30m] [--idle-gpu 15m] [--max-age 24h]
  quota delete ID
  instances [--all]                           every user's instances
  stop USER[/SERVER]                          stops a user's server (default: default)
  plans [list]                                plans and their price multipliers
  plans set ID "LABEL" MULTIPLIER             e.g. plans set academic "Academic" 0.5
  plans assign (--user U | --group G) PLAN
  users                                       this month's spend per user
  audit [--user U] [--path PREFIX] [--from DATE] [--to DATE] [--csv [FILE]]
${COMMON}`;

export async function admin(ctx: Ctx, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'quota':
    case 'quotas':
      return quota(ctx, rest);
    case 'instances':
      return instances(ctx, rest);
    case 'stop':
      return stopFor(ctx, rest);
    case 'plans':
    case 'plan':
      return plans(ctx, rest);
    case 'users':
      return users(ctx, rest);
    case 'audit':
      return audit(ctx, rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return help(ctx, ADMIN_HELP);
    default:
      throw new UsageError(`admin: unknown verb '${verb}' (see: ngsci admin --help)`);
  }
}

const print = (ctx: Ctx, data: unknown, human: () => string) =>
  ctx.io.out(`${ctx.json ? JSON.stringify(data, null, 2) : human()}\n`);

const quotaRows = (qs: Quota[]) =>
  table(
    [
      'id',
      'subject',
      'budget/month',
      'hard stop',
      'max running',
      'sizes',
      'GPU h',
      'idle cpu',
      'idle gpu',
      'max age',
    ],
    qs.map((q) => [
      q.id,
      q.subjectKind === 'default' ? 'default' : `${q.subjectKind} ${q.subjectName}`,
      q.monthlyBudgetMicros === null ? null : dollars(q.monthlyBudgetMicros),
      q.hardStop ? 'yes' : 'no',
      q.maxConcurrent,
      q.allowedSizes?.join(',') ?? null,
      q.gpuHoursPerMonth,
      q.idleTimeoutCpuSeconds === null ? null : duration(q.idleTimeoutCpuSeconds),
      q.idleTimeoutGpuSeconds === null ? null : duration(q.idleTimeoutGpuSeconds),
      q.maxAgeSeconds === null ? null : duration(q.maxAgeSeconds),
    ]),
  );

async function quota(ctx: Ctx, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === 'list' || verb === undefined) {
    const p = parse('admin quota list', rest, {}, { min: 0, max: 0, names: '' });
    if (p.values.help) return help(ctx, ADMIN_HELP);
    const list = await ctx.api().get<QuotaList>('/admin/quotas');
    print(ctx, list, () => (list.quotas.length ? quotaRows(list.quotas) : 'no quotas'));
    return EXIT.ok;
  }
  if (verb === 'delete') {
    const p = parse('admin quota delete', rest, {}, { min: 1, max: 1, names: 'ID' });
    if (p.values.help) return help(ctx, ADMIN_HELP);
    const id = parseInteger(p.positionals[0]!, 'ID', 1, Number.MAX_SAFE_INTEGER);
    await ctx.api().delete(`/admin/quotas/${id}`);
    print(ctx, { deleted: id }, () => `quota ${id} deleted`);
    return EXIT.ok;
  }
  if (verb !== 'set')
    throw new UsageError(`admin quota: unknown verb '${verb}' (list, set, delete)`);
  const p = parse(
    'admin quota set',
    rest,
    {
      user: { type: 'string' },
      group: { type: 'string' },
      default: { type: 'boolean', default: false },
      budget: { type: 'string' },
      'hard-stop': { type: 'boolean' },
      'no-hard-stop': { type: 'boolean' },
      'max-concurrent': { type: 'string' },
      sizes: { type: 'string' },
      'gpu-hours': { type: 'string' },
      'idle-cpu': { type: 'string' },
      'idle-gpu': { type: 'string' },
      'max-age': { type: 'string' },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const v = p.values;
  const subjects = [v.user !== undefined, v.group !== undefined, v.default === true].filter(
    Boolean,
  ).length;
  if (subjects !== 1)
    throw new UsageError('admin quota set: name exactly one of --user U, --group G or --default');
  const body: Record<string, unknown> = v.default
    ? { subjectKind: 'default', subjectName: '' }
    : v.user !== undefined
      ? { subjectKind: 'user', subjectName: str(v.user) }
      : { subjectKind: 'group', subjectName: str(v.group) };
  if (!v.default && !String(body.subjectName).trim())
    throw new UsageError('admin quota set: the user or group name is empty');
  const none = (x: unknown) => x === 'none' || x === 'unlimited';
  if (v.budget !== undefined)
    body.monthlyBudgetMicros = none(v.budget) ? null : parseDollars(str(v.budget)!, '--budget');
  if (v['hard-stop'] && v['no-hard-stop'])
    throw new UsageError('admin quota set: --hard-stop and --no-hard-stop contradict each other');
  if (v['hard-stop']) body.hardStop = true;
  if (v['no-hard-stop']) body.hardStop = false;
  if (v['max-concurrent'] !== undefined)
    body.maxConcurrent = none(v['max-concurrent'])
      ? null
      : parseInteger(str(v['max-concurrent'])!, '--max-concurrent', 0, 1000);
  if (v.sizes !== undefined)
    body.allowedSizes =
      none(v.sizes) || v.sizes === 'any'
        ? null
        : str(v.sizes)!
            .split(',')
            .map((s) => parseSize(s.trim()));
  if (v['gpu-hours'] !== undefined)
    body.gpuHoursPerMonth = none(v['gpu-hours'])
      ? null
      : parseInteger(str(v['gpu-hours'])!, '--gpu-hours', 0, 1_000_000);
  if (v['idle-cpu'] !== undefined)
    body.idleTimeoutCpuSeconds = none(v['idle-cpu'])
      ? null
      : parseDuration(str(v['idle-cpu'])!, '--idle-cpu');
  if (v['idle-gpu'] !== undefined)
    body.idleTimeoutGpuSeconds = none(v['idle-gpu'])
      ? null
      : parseDuration(str(v['idle-gpu'])!, '--idle-gpu');
  if (v['max-age'] !== undefined)
    body.maxAgeSeconds = none(v['max-age']) ? null : parseDuration(str(v['max-age'])!, '--max-age');
  // PUT replaces a quota row, so a change of one limit keeps the row's other limits
  const api = ctx.api();
  const existing = (await api.get<QuotaList>('/admin/quotas')).quotas.find(
    (x) => x.subjectKind === body.subjectKind && x.subjectName === body.subjectName,
  );
  let q: Quota;
  if (existing) {
    const { id: _id, updatedAt: _at, ...kept } = existing;
    q = await api.put<Quota>(`/admin/quotas/${existing.id}`, { ...kept, ...body });
  } else {
    q = await api.post<Quota>('/admin/quotas', body);
  }
  print(ctx, q, () => `${existing ? 'updated' : 'created'}\n${quotaRows([q])}`);
  return EXIT.ok;
}

async function instances(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin instances',
    args,
    { all: { type: 'boolean', default: false } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const list = await ctx
    .api()
    .get<InstanceList>(`/admin/instances${p.values.all ? '?all=true' : ''}`);
  print(ctx, list, () =>
    list.instances.length ? instanceRows(list.instances, true) : 'no instances',
  );
  return EXIT.ok;
}

async function stopFor(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse('admin stop', args, {}, { min: 1, max: 1, names: 'USER[/SERVER]' });
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const spec = p.positionals[0]!;
  const slash = spec.lastIndexOf('/');
  const user = slash < 0 ? spec : spec.slice(0, slash);
  const server = parseServer(slash < 0 ? 'default' : spec.slice(slash + 1));
  if (!user || user.length > 255)
    throw new UsageError(`admin stop: '${spec}' is not USER or USER/SERVER`);
  const inst = await ctx
    .api()
    .post<Instance>(`/admin/instances/${encodeURIComponent(user)}/${server}/stop`);
  print(ctx, inst, () => `stopping ${user}/${server} (${inst.size}, ${inst.state})`);
  return EXIT.ok;
}

async function plans(ctx: Ctx, args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === 'list') {
    const p = parse('admin plans', rest, {}, { min: 0, max: 0, names: '' });
    if (p.values.help) return help(ctx, ADMIN_HELP);
    const list = await ctx.api().get<PlanList>('/admin/plans');
    print(ctx, list, () =>
      table(
        ['id', 'label', 'price ×', 'built in'],
        list.plans.map((pl) => [
          pl.id,
          pl.label,
          (pl.multiplierPpm / 1_000_000).toString(),
          pl.builtIn ? 'yes' : 'no',
        ]),
      ),
    );
    return EXIT.ok;
  }
  if (verb === 'set') {
    const p = parse(
      'admin plans set',
      rest,
      {},
      { min: 3, max: 3, names: 'ID "LABEL" MULTIPLIER' },
    );
    if (p.values.help) return help(ctx, ADMIN_HELP);
    const [id, label, mult] = p.positionals as [string, string, string];
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id))
      throw new UsageError(
        `admin plans set: '${id}' is not a plan id (lower-case letters, digits, dashes)`,
      );
    const m = /^(\d{1,3})(?:\.(\d{1,6}))?$/.exec(mult);
    if (!m)
      throw new UsageError(
        `admin plans set: MULTIPLIER must be a number such as 0, 0.5 or 1, not '${mult}'`,
      );
    const multiplierPpm = Number(m[1]) * 1_000_000 + Number((m[2] ?? '').padEnd(6, '0'));
    const api = ctx.api();
    const exists = (await api.get<PlanList>('/admin/plans')).plans.some((x) => x.id === id);
    const plan = exists
      ? await api.put(`/admin/plans/${id}`, { label, multiplierPpm })
      : await api.post('/admin/plans', { id, label, multiplierPpm });
    print(ctx, plan, () => `plan ${id} (${label}) charges ${mult} × list price`);
    return EXIT.ok;
  }
  if (verb === 'assign') {
    const p = parse(
      'admin plans assign',
      rest,
      { user: { type: 'string' }, group: { type: 'string' } },
      { min: 1, max: 1, names: 'PLAN' },
    );
    if (p.values.help) return help(ctx, ADMIN_HELP);
    if ((p.values.user === undefined) === (p.values.group === undefined))
      throw new UsageError('admin plans assign: name exactly one of --user U or --group G');
    const subjectKind = p.values.user !== undefined ? 'user' : 'group';
    const subjectName = str(p.values.user ?? p.values.group)!;
    const a = await ctx
      .api()
      .put('/admin/plan-assignments', { subjectKind, subjectName, planId: p.positionals[0] });
    print(ctx, a, () => `${subjectKind} ${subjectName} is now on plan ${p.positionals[0]}`);
    return EXIT.ok;
  }
  throw new UsageError(`admin plans: unknown verb '${verb}' (list, set, assign)`);
}

async function users(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse('admin users', args, {}, { min: 0, max: 0, names: '' });
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const list = await ctx.api().get<AdminUserList>('/admin/users');
  print(ctx, list, () =>
    table(
      ['user', 'plan', 'running', 'spent', 'budget', 'used'],
      list.users.map((u) => [
        u.name,
        u.plan,
        u.running,
        dollars(u.spentMicros),
        u.budgetMicros === null ? null : dollars(u.budgetMicros),
        u.percent === null ? null : `${u.percent}%`,
      ]),
    ),
  );
  return EXIT.ok;
}

async function audit(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin audit',
    args,
    {
      user: { type: 'string' },
      path: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      limit: { type: 'string' },
      csv: { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const q = new URLSearchParams();
  if (p.values.user) q.set('user', str(p.values.user)!);
  if (p.values.path) {
    const path = str(p.values.path)!;
    if (!path.startsWith('/'))
      throw new UsageError(`--path must be an absolute path prefix such as /data/, not '${path}'`);
    q.set('path', path);
  }
  for (const k of ['from', 'to'] as const) {
    const v = str(p.values[k]);
    if (v) {
      if (Number.isNaN(Date.parse(v)))
        throw new UsageError(`--${k} must be a date such as 2026-11-01, not '${v}'`);
      q.set(k, new Date(v).toISOString());
    }
  }
  if (p.values.limit)
    q.set('limit', String(parseInteger(str(p.values.limit)!, '--limit', 1, 10_000)));
  const api = ctx.api();
  if (p.values.csv) {
    q.set('format', 'csv');
    const csv = await api.text(`/admin/audit?${q}`);
    if (p.values.output) writeFileSync(str(p.values.output)!, csv);
    else ctx.io.out(csv);
    return EXIT.ok;
  }
  const list = await api.get<AuditList>(`/admin/audit${q.size ? `?${q}` : ''}`);
  print(ctx, list, () =>
    list.events.length
      ? table(
          ['time', 'user', 'server', 'op', 'path', 'bytes', 'ms'],
          list.events.map((e) => [
            e.at.slice(0, 19).replace('T', ' '),
            e.user,
            e.server,
            e.op,
            e.path,
            e.bytes,
            e.durationMs,
          ]),
        ) + (list.nextAfter !== null ? `\n(more: --limit or the CSV export)` : '')
      : 'no events',
  );
  return EXIT.ok;
}
