/**
 * Admin verbs over `/api/v1/admin/*`: quotas and budgets, plans, every instance, stopping anyone's
 * server, users' spend, and the data-access audit.
 */
import { writeFileSync } from 'node:fs';
import type {
  AuditList,
  AuditRule,
  AuditRuleList,
  AuditVerification,
  Instance,
  Quota,
  SecurityEventList,
} from '@ngsci/contract';
import { SecurityEventKind } from '@ngsci/contract';
import type { AdminUserList, InstanceList, PlanList, QuotaList } from '../types.js';
import { GLOBAL_OPTIONS, parse, str } from '../args.js';
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
import { asOf, help, instanceRows, type Ctx } from './user.js';
import { estimateBaseCommand } from './admin-base.js';
import { credits } from './admin-credits.js';
import { gpuWaste } from './admin-gpu-waste.js';

const COMMON = `
Every verb takes --url URL, --token TOKEN (an admin's; default $NGSCI_API_URL,
$JUPYTERHUB_API_TOKEN), --json and --help, before or after the verb.`;

export const ADMIN_HELP = `Usage: ngsci admin VERB ...

Verbs:
  quota list                                  every quota and budget
  quota set (--user U | --group G | --default) [--budget DOLLARS|none] [--hard-stop|--no-hard-stop]
            [--max-concurrent N] [--sizes a,b|any] [--gpu-hours N] [--idle-cpu 30m] [--idle-gpu 15m] [--max-age 24h]
            [--idle-cpu-min 10m] [--idle-cpu-max 4h|never] [--idle-gpu-min 5m] [--idle-gpu-max 1h|never]
                                              the bounds researchers choose their own idle timeout within
                                              (ngsci idle); max never: no upper bound; none: unset
            [--forbid a,b|none]               sizes refused whatever any quota allows: ids or
                                              package wildcards (any.h100x8, xl.any)
  quota delete ID
  instances [--all]                           every user's instances
  stop USER[/SERVER]                          stops a user's server (default: default)
  plans [list]                                plans and their price multipliers
  plans set ID "LABEL" MULTIPLIER             e.g. plans set academic "Academic" 0.5
  plans assign (--user U | --group G) PLAN
  users [--month YYYY-MM]                     spend per user against their budget (their own,
                                              else their group's), then per group
  gpu-waste [--month YYYY-MM] [--limit N]     users and groups ranked by GPU money wasted (billed
                                              time with every GPU idle), most first
  audit [--user U] [--path PREFIX] [--from DATE] [--to DATE] [--csv [FILE]]
                                              data-access events (who read which file, when)
  audit verify [--chain INSTANCE_ID]          recompute the hash chains; exit 1 on a broken link
  audit events [--kind KIND] [--limit N]      security events, newest first (honeypot_read,
                                              read_threshold, agent_silent, audit_pruned, ...)
  audit rules                                 honeypot paths and read thresholds
  audit add-honeypot PATH [--stop-server] [--note TEXT]
                                              any open or read of PATH (a folder if it ends in /)
                                              is a critical alert
  audit add-threshold --window 1h [--max-files N] [--max-bytes 10GB] [--path PREFIX]
                      [--stop-server] [--note TEXT]
                                              files/bytes one user may read per window
  audit remove-rule ID
  estimate-base --cloud aws|gcp|azure [...]  the base infrastructure's fixed monthly cost
                                              (computed here from dated list prices; --help)
  credits [list]                              cloud credit grants: used, left, alerts
  credits add --cloud aws|gcp|azure --amount DOLLARS --expires YYYY-MM-DD [--starts DAY] [--note TEXT]
  credits remove ID
  credits statement [--month YYYY-MM] [--csv] list cost, credits applied, net cost per cloud
${COMMON}`;

/**
 * The first word of `args` that is a verb, skipping flags and the values of flags that take one
 * (`--url URL` may come before the verb): the verb and the rest, flags kept in place. A word that
 * is not one of `verbs` is no verb (undefined) when `verbs` is given, so the default verb gets it.
 */
export function splitVerb(
  args: string[],
  opts: { verbs?: readonly string[]; valueFlags?: readonly string[] } = {},
): { verb: string | undefined; rest: string[] } {
  const takesValue = new Set([
    ...Object.entries(GLOBAL_OPTIONS)
      .filter(([, o]) => o.type === 'string')
      .map(([name]) => name),
    ...(opts.valueFlags ?? []),
  ]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      const name = a.replace(/^--?/, '').split('=')[0]!;
      if ((takesValue.has(name) || (a === '-o' && takesValue.has('o'))) && !a.includes('=')) i++;
      continue;
    }
    if (opts.verbs && !opts.verbs.includes(a)) return { verb: undefined, rest: args };
    return { verb: a, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
  }
  return { verb: undefined, rest: args };
}

const wantsHelp = (args: string[]) => args.includes('--help') || args.includes('-h');

export async function admin(ctx: Ctx, args: string[]): Promise<number> {
  const { verb, rest } = splitVerb(args);
  if (verb === undefined && rest.length && !wantsHelp(rest))
    throw new UsageError('admin: missing VERB (see: ngsci admin --help)');
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
    case 'gpu-waste':
      return gpuWaste(ctx, rest);
    case 'audit':
      return audit(ctx, rest);
    case 'estimate-base':
      return estimateBaseCommand(ctx, rest);
    case 'credits':
    case 'credit':
      return credits(ctx, rest);
    case undefined:
    case 'help':
      return help(ctx, ADMIN_HELP);
    default:
      throw new UsageError(`admin: unknown verb '${verb}' (see: ngsci admin --help)`);
  }
}

const print = (ctx: Ctx, data: unknown, human: () => string) =>
  ctx.io.out(`${ctx.json ? JSON.stringify(data, null, 2) : human()}\n`);

/** a quota row's bounds for researchers' own idle timeouts: `10m-4h`, `5m-`, `-never` */
const idleBounds = (min?: number | null, max?: number | null) =>
  min == null && max == null
    ? null
    : `${min == null ? '' : duration(min)}-${max == null ? '' : max === 0 ? 'never' : duration(max)}`;

const quotaRows = (qs: Quota[]) =>
  table(
    [
      'id',
      'subject',
      'budget/month',
      'hard stop',
      'max running',
      'sizes',
      'forbidden',
      'GPU h',
      'idle cpu',
      'idle gpu',
      'cpu choice',
      'gpu choice',
      'max age',
    ],
    qs.map((q) => [
      q.id,
      q.subjectKind === 'default' ? 'default' : `${q.subjectKind} ${q.subjectName}`,
      q.monthlyBudgetMicros === null ? null : dollars(q.monthlyBudgetMicros),
      q.hardStop ? 'yes' : 'no',
      q.maxConcurrent,
      q.allowedSizes?.join(',') ?? null,
      q.forbiddenSizes?.join(',') || null,
      q.gpuHoursPerMonth,
      q.idleTimeoutCpuSeconds === null ? null : duration(q.idleTimeoutCpuSeconds),
      q.idleTimeoutGpuSeconds === null ? null : duration(q.idleTimeoutGpuSeconds),
      idleBounds(q.idleTimeoutCpuMinSeconds, q.idleTimeoutCpuMaxSeconds),
      idleBounds(q.idleTimeoutGpuMinSeconds, q.idleTimeoutGpuMaxSeconds),
      q.maxAgeSeconds === null ? null : duration(q.maxAgeSeconds),
    ]),
  );

const QUOTA_VALUE_FLAGS = [
  'user',
  'group',
  'budget',
  'max-concurrent',
  'sizes',
  'forbid',
  'gpu-hours',
  'idle-cpu',
  'idle-gpu',
  'idle-cpu-min',
  'idle-cpu-max',
  'idle-gpu-min',
  'idle-gpu-max',
  'max-age',
];

async function quota(ctx: Ctx, args: string[]): Promise<number> {
  const { verb, rest } = splitVerb(args, { valueFlags: QUOTA_VALUE_FLAGS });
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
      forbid: { type: 'string' },
      'gpu-hours': { type: 'string' },
      'idle-cpu': { type: 'string' },
      'idle-gpu': { type: 'string' },
      'max-age': { type: 'string' },
      'idle-cpu-min': { type: 'string' },
      'idle-cpu-max': { type: 'string' },
      'idle-gpu-min': { type: 'string' },
      'idle-gpu-max': { type: 'string' },
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
  if (v.forbid !== undefined)
    body.forbiddenSizes = none(v.forbid)
      ? null
      : str(v.forbid)!
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
  const bounds = [
    ['idle-cpu-min', 'idleTimeoutCpuMinSeconds'],
    ['idle-cpu-max', 'idleTimeoutCpuMaxSeconds'],
    ['idle-gpu-min', 'idleTimeoutGpuMinSeconds'],
    ['idle-gpu-max', 'idleTimeoutGpuMaxSeconds'],
  ] as const;
  for (const [flag, field] of bounds) {
    const raw = str(v[flag]);
    if (raw === undefined) continue;
    body[field] = none(raw)
      ? null
      : raw === 'never' && flag.endsWith('max')
        ? 0
        : parseDuration(raw, `--${flag}`);
  }
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
  const { verb, rest } = splitVerb(args, { valueFlags: ['user', 'group'] });
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

/**
 * Spend per user against the budget that holds them: their own (or the default), else the
 * tightest of their groups' (marked "group G"); then per group, its members' spend against its
 * budget. Group budgets come from the quota list, which the users' answer does not carry.
 */
async function users(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin users',
    args,
    { month: { type: 'string' } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const month = str(p.values.month);
  if (month !== undefined && !/^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])$/.test(month))
    throw new UsageError(`--month must be a month such as 2026-11, not '${month}'`);
  const api = ctx.api();
  const list = await api.get<AdminUserList>(
    `/admin/users${month ? `?month=${encodeURIComponent(month)}` : ''}`,
  );
  const quotas = (await api.get<QuotaList>('/admin/quotas')).quotas;
  const groupBudget = new Map(
    quotas
      .filter((q) => q.subjectKind === 'group' && q.monthlyBudgetMicros !== null)
      .map((q) => [q.subjectName, q.monthlyBudgetMicros!]),
  );
  const groups = new Map<string, { members: number; spentMicros: number }>();
  for (const u of list.users)
    for (const g of u.groups) {
      const t = groups.get(g) ?? { members: 0, spentMicros: 0 };
      t.members++;
      t.spentMicros += u.spentMicros;
      groups.set(g, t);
    }
  const groupRows = [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, t]) => {
      const budget = groupBudget.get(name) ?? null;
      return {
        name,
        members: t.members,
        spentMicros: t.spentMicros,
        budgetMicros: budget,
        percent:
          budget === null ? null : budget > 0 ? Math.floor((t.spentMicros * 100) / budget) : 100,
      };
    });
  const percentOf = (name: string) => groupRows.find((g) => g.name === name)?.percent ?? null;
  // JSON keeps the service's fields as they are and adds the budget that holds each user
  const userRows = list.users.map((u) => {
    if (u.budgetMicros !== null)
      return {
        ...u,
        budgetFrom: 'user',
        effectiveBudgetMicros: u.budgetMicros,
        effectivePercent: u.percent,
      };
    // the tightest group budget (the highest share used) is the one that stops them first
    const held = u.groups
      .filter((g) => groupBudget.has(g))
      .sort((x, y) => (percentOf(y) ?? 0) - (percentOf(x) ?? 0))[0];
    return held === undefined
      ? { ...u, budgetFrom: null, effectiveBudgetMicros: null, effectivePercent: null }
      : {
          ...u,
          budgetFrom: `group ${held}`,
          effectiveBudgetMicros: groupBudget.get(held)!,
          effectivePercent: percentOf(held),
        };
  });
  const totalMicros = list.users.reduce((sum, u) => sum + u.spentMicros, 0);
  print(ctx, { ...list, users: userRows, groups: groupRows, totalMicros }, () =>
    [
      `Spend in ${list.month}${asOf(list)}`,
      table(
        ['user', 'plan', 'running', 'spent', 'budget', 'used'],
        userRows.map((u) => [
          u.name,
          u.plan,
          u.running,
          dollars(u.spentMicros),
          u.effectiveBudgetMicros === null
            ? null
            : `${dollars(u.effectiveBudgetMicros)}${u.budgetFrom && u.budgetFrom !== 'user' ? ` (${u.budgetFrom})` : ''}`,
          u.effectivePercent === null ? null : `${u.effectivePercent}%`,
        ]),
      ),
      `total: ${dollars(totalMicros)}`,
      ...(groupRows.length
        ? [
            '',
            table(
              ['group', 'members', 'spent', 'budget', 'used'],
              groupRows.map((g) => [
                g.name,
                g.members,
                dollars(g.spentMicros),
                g.budgetMicros === null ? null : dollars(g.budgetMicros),
                g.percent === null ? null : `${g.percent}%`,
              ]),
            ),
          ]
        : []),
    ].join('\n'),
  );
  return EXIT.ok;
}

const AUDIT_VERBS = [
  'list',
  'verify',
  'events',
  'rules',
  'add-honeypot',
  'add-threshold',
  'remove-rule',
] as const;

async function audit(ctx: Ctx, args: string[]): Promise<number> {
  const { verb, rest } = splitVerb(args, {
    valueFlags: [
      'user',
      'path',
      'from',
      'to',
      'limit',
      'output',
      'o',
      'chain',
      'kind',
      'note',
      'window',
      'max-files',
      'max-bytes',
    ],
  });
  switch (verb) {
    case 'verify':
      return auditVerify(ctx, rest);
    case 'events':
      return auditEvents(ctx, rest);
    case 'rules':
      return auditRules(ctx, rest);
    case 'add-honeypot':
      return auditAddHoneypot(ctx, rest);
    case 'add-threshold':
      return auditAddThreshold(ctx, rest);
    case 'remove-rule':
      return auditRemoveRule(ctx, rest);
    case 'list':
    case undefined:
      return auditList(ctx, rest);
    default:
      // a word that is no verb: FILE after --csv, else a typo
      if (rest.includes('--csv')) return auditList(ctx, args);
      throw new UsageError(`admin audit: unknown verb '${verb}' (${AUDIT_VERBS.join(', ')})`);
  }
}

async function auditList(ctx: Ctx, args: string[]): Promise<number> {
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
    { min: 0, max: 1, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  // --csv [FILE]: the file may follow --csv as a word of its own (or come as -o FILE)
  const file = p.positionals[0];
  if (file !== undefined && !p.values.csv)
    throw new UsageError(
      `admin audit: unexpected argument '${file}' (see: ngsci admin audit --help)`,
    );
  if (file !== undefined && p.values.output !== undefined)
    throw new UsageError('admin audit: give the CSV file once: --csv FILE or -o FILE');
  if (file !== undefined) p.values.output = file;
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

async function auditVerify(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin audit verify',
    args,
    { chain: { type: 'string' } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const chain = str(p.values.chain);
  if (chain !== undefined && !/^[0-9a-f-]{1,64}$/i.test(chain))
    throw new UsageError(`--chain must be an instance id, not '${chain}'`);
  const v = await ctx
    .api()
    .get<AuditVerification>(
      `/admin/audit/verify${chain ? `?chain=${encodeURIComponent(chain)}` : ''}`,
    );
  print(ctx, v, () => {
    const lines = [
      v.intact
        ? `intact: ${v.events} events in ${v.chains} chains verified`
        : `BROKEN: ${v.breaks.length} of ${v.chains} chains (${v.events} events checked)`,
    ];
    for (const b of v.breaks)
      lines.push(
        `  ${b.message}`,
        `    chain ${b.chain}, event ${b.eventId ?? '-'}: expected ${b.expected}, stored ${b.stored ?? '(none)'}`,
      );
    if (v.unchained) lines.push(`(${v.unchained} events from before hash chains are not covered)`);
    return lines.join('\n');
  });
  // a broken chain is a failure scripts and cron jobs must see
  return v.intact ? EXIT.ok : EXIT.service;
}

const SECURITY_KINDS: readonly string[] = SecurityEventKind.options;

async function auditEvents(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin audit events',
    args,
    { kind: { type: 'string' }, limit: { type: 'string' } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const q = new URLSearchParams();
  const kind = str(p.values.kind);
  if (kind !== undefined) {
    if (!SECURITY_KINDS.includes(kind))
      throw new UsageError(`--kind must be one of ${SECURITY_KINDS.join(', ')}, not '${kind}'`);
    q.set('kind', kind);
  }
  if (p.values.limit)
    q.set('limit', String(parseInteger(str(p.values.limit)!, '--limit', 1, 1000)));
  const list = await ctx
    .api()
    .get<SecurityEventList>(`/admin/security-events${q.size ? `?${q}` : ''}`);
  print(ctx, list, () =>
    list.events.length
      ? table(
          ['time', 'severity', 'kind', 'user', 'server', 'message'],
          list.events.map((e) => [
            e.at.slice(0, 19).replace('T', ' '),
            e.severity,
            e.kind,
            e.user,
            e.server,
            e.message,
          ]),
        )
      : 'no security events',
  );
  return EXIT.ok;
}

const ruleRows = (rules: AuditRule[]) =>
  table(
    ['id', 'kind', 'path', 'window', 'max files', 'max bytes', 'stops server', 'note'],
    rules.map((r) => [
      r.id,
      r.kind,
      r.path,
      r.windowSeconds === null ? null : duration(r.windowSeconds),
      r.maxFiles,
      r.maxBytes,
      r.stopServer ? 'yes' : 'no',
      r.note,
    ]),
  );

async function auditRules(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse('admin audit rules', args, {}, { min: 0, max: 0, names: '' });
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const list = await ctx.api().get<AuditRuleList>('/admin/audit/rules');
  print(ctx, list, () => (list.rules.length ? ruleRows(list.rules) : 'no audit rules'));
  return EXIT.ok;
}

const absolute = (flag: string, raw: string): string => {
  if (!raw.startsWith('/') || raw.length < 2)
    throw new UsageError(`${flag} must be an absolute path such as /data/canary.csv, not '${raw}'`);
  return raw;
};

async function auditAddHoneypot(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin audit add-honeypot',
    args,
    { 'stop-server': { type: 'boolean', default: false }, note: { type: 'string' } },
    { min: 1, max: 1, names: 'PATH' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const body = {
    kind: 'honeypot',
    path: absolute('PATH', p.positionals[0]!),
    stopServer: p.values['stop-server'] === true,
    ...(p.values.note ? { note: str(p.values.note) } : {}),
  };
  const rule = await ctx.api().post<AuditRule>('/admin/audit/rules', body);
  print(ctx, rule, () => `honeypot rule ${rule.id} added\n${ruleRows([rule])}`);
  return EXIT.ok;
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
  ti: 1024 ** 4,
};

/** "500MB", "10GB", "2GiB", "1000" → bytes. */
export function parseBytes(raw: string, flag: string): number {
  const m = /^(\d+)\s*(?:([kmgt]i?)b?|b)?$/i.exec(raw.trim());
  if (!m) throw new UsageError(`${flag} must be a size such as 500MB, 10GB or 2GiB, not '${raw}'`);
  const n = Number(m[1]) * BYTE_UNITS[(m[2] ?? '').toLowerCase()]!;
  if (n < 1 || !Number.isSafeInteger(n)) throw new UsageError(`${flag} is out of range: '${raw}'`);
  return n;
}

async function auditAddThreshold(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'admin audit add-threshold',
    args,
    {
      window: { type: 'string' },
      'max-files': { type: 'string' },
      'max-bytes': { type: 'string' },
      path: { type: 'string' },
      'stop-server': { type: 'boolean', default: false },
      note: { type: 'string' },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const v = p.values;
  if (v.window === undefined)
    throw new UsageError('admin audit add-threshold: --window is required, e.g. --window 1h');
  if (v['max-files'] === undefined && v['max-bytes'] === undefined)
    throw new UsageError('admin audit add-threshold: give --max-files N, --max-bytes SIZE or both');
  const windowSeconds = parseDuration(str(v.window)!, '--window');
  if (windowSeconds < 60) throw new UsageError('--window must be at least 1m');
  const body = {
    kind: 'threshold',
    windowSeconds,
    ...(v['max-files'] !== undefined
      ? { maxFiles: parseInteger(str(v['max-files'])!, '--max-files', 1, 1_000_000_000) }
      : {}),
    ...(v['max-bytes'] !== undefined
      ? { maxBytes: parseBytes(str(v['max-bytes'])!, '--max-bytes') }
      : {}),
    ...(v.path !== undefined ? { path: absolute('--path', str(v.path)!) } : {}),
    stopServer: v['stop-server'] === true,
    ...(v.note ? { note: str(v.note) } : {}),
  };
  const rule = await ctx.api().post<AuditRule>('/admin/audit/rules', body);
  print(ctx, rule, () => `threshold rule ${rule.id} added\n${ruleRows([rule])}`);
  return EXIT.ok;
}

async function auditRemoveRule(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse('admin audit remove-rule', args, {}, { min: 1, max: 1, names: 'ID' });
  if (p.values.help) return help(ctx, ADMIN_HELP);
  const id = parseInteger(p.positionals[0]!, 'ID', 1, Number.MAX_SAFE_INTEGER);
  await ctx.api().delete(`/admin/audit/rules/${id}`);
  print(ctx, { removed: id }, () => `audit rule ${id} removed`);
  return EXIT.ok;
}
