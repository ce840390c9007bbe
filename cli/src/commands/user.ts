/** The researcher's verbs: status, launch, stop, resize, usage, budget, catalog, notify, estimate, idle, preemption. */
import { readFileSync } from 'node:fs';
import type {
  Budget,
  Catalog,
  Estimate,
  IdleClassTimeout,
  IdleTimeout,
  Instance,
  Me,
  NotificationList,
  NotificationPreferences,
  Usage,
} from '@ngsci/contract';
import type { InstanceList } from '../types.js';
import {
  CPU_PACKAGE_IDS,
  CpuPackageId,
  EstimateScenario,
  GPU_PACKAGE_IDS,
  GpuPackageId,
  OnPreemption,
  formatGpuIdle,
  formatIdleBounds,
  formatIdleTimeout,
  pairSizeId,
} from '@ngsci/contract';
import { parse, str } from '../args.js';
import type { ApiClient } from '../client.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { block, table, type Io } from '../output.js';
import {
  dollars,
  duration,
  formatHours,
  formatRate,
  formatUnitPrice,
  parseDuration,
  parseServer,
  parseSize,
} from '../parse.js';
import { waitForInstance } from '../progress.js';

export interface Ctx {
  io: Io;
  api: () => ApiClient;
  json: boolean;
  quiet: boolean;
}

const print = (ctx: Ctx, data: unknown, human: () => string) =>
  ctx.io.out(`${ctx.json ? JSON.stringify(data, null, 2) : human()}\n`);

/** The service's clock of an answer, for a heading: ` (as of 15:01:07 UTC)`. */
export const asOf = (answer: { asOf?: string | undefined }): string =>
  answer.asOf ? ` (as of ${answer.asOf.slice(11, 19)} UTC)` : '';

/** Instances with their rate (never rounded) and what each cost so far (the service's figure). */
export const instanceRows = (list: Instance[], withUser = false) =>
  table(
    [
      ...(withUser ? ['user'] : []),
      'server',
      'size',
      'cloud',
      'state',
      'rate',
      'cost so far',
      'since',
      'error',
    ],
    list.map((i) => [
      ...(withUser ? [i.user] : []),
      i.server,
      i.size,
      `${i.cloud}${i.spot ? ' (spot)' : ''}`,
      i.state,
      formatRate(i.ratePerHourMicros),
      i.billedMicros === undefined ? null : dollars(i.billedMicros),
      (i.readyAt ?? i.createdAt).slice(0, 16).replace('T', ' '),
      i.errorCode,
    ]),
  );

export async function status(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'status',
    args,
    { all: { type: 'boolean', default: false } },
    { min: 0, max: 1, names: 'SERVER' },
  );
  if (p.values.help) return help(ctx, HELP.status);
  const api = ctx.api();
  if (p.positionals[0]) {
    const inst = await api.get<Instance>(`/instances/${parseServer(p.positionals[0])}`);
    print(ctx, inst, () =>
      block([
        ['server', inst.server],
        ['state', inst.state],
        ['size', inst.size],
        ['cloud', `${inst.cloud} ${inst.region}${inst.spot ? ' (spot)' : ''}`],
        ['rate', formatRate(inst.ratePerHourMicros)],
        ['cost so far', inst.billedMicros === undefined ? null : dollars(inst.billedMicros)],
        ['started', inst.readyAt ?? inst.createdAt],
        ['url', inst.url],
        ['error', inst.errorCode ? `${inst.errorCode}: ${inst.errorMessage ?? ''}` : null],
      ]),
    );
    return EXIT.ok;
  }
  const [me, list] = await Promise.all([
    api.get<Me>('/me'),
    api.get<InstanceList>(`/instances${p.values.all ? '?all=true' : ''}`),
  ]);
  print(ctx, { me, instances: list.instances }, () => {
    const head = `${me.name}${me.admin ? ' (admin)' : ''} · plan ${me.plan.label}${asOf(list)}`;
    return list.instances.length
      ? `${head}\n\n${instanceRows(list.instances)}`
      : `${head}\n\nno running instances (ngsci launch SIZE starts one)`;
  });
  return EXIT.ok;
}

export async function launch(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'launch',
    args,
    {
      server: { type: 'string', short: 's' },
      cloud: { type: 'string' },
      region: { type: 'string' },
      spot: { type: 'boolean', default: false },
      'on-preemption': { type: 'string' },
      cpu: { type: 'string' },
      gpu: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      timeout: { type: 'string' },
    },
    { min: 0, max: 1, names: 'SIZE' },
  );
  if (p.values.help) return help(ctx, HELP.launch);
  const { choice, size } = machineChoice('launch', p.positionals[0], p.values);
  const server = parseServer(str(p.values.server) ?? 'default');
  const cloud = str(p.values.cloud);
  if (cloud && !['local', 'aws', 'gcp', 'azure'].includes(cloud))
    throw new UsageError(`--cloud must be local, aws, gcp or azure, not '${cloud}'`);
  const onPreemption = str(p.values['on-preemption']);
  if (onPreemption && !['on-demand', 'spot', 'stop'].includes(onPreemption))
    throw new UsageError(`--on-preemption must be on-demand, spot or stop, not '${onPreemption}'`);
  if (onPreemption && !p.values.spot)
    throw new UsageError('--on-preemption applies to spot machines: add --spot');
  const timeout = p.values.timeout ? parseDuration(str(p.values.timeout)!, '--timeout') : 900;
  const api = ctx.api();
  const inst = await api.post<Instance>('/instances', {
    server,
    ...choice,
    ...(cloud ? { cloud } : {}),
    ...(p.values.region ? { region: str(p.values.region) } : {}),
    spot: Boolean(p.values.spot),
    ...(onPreemption ? { onPreemption } : {}),
  });
  // no --cloud: the service chose one and says why ("on GCP: covered by research credits …")
  if (inst.placement && !ctx.quiet && !ctx.json) ctx.io.err(`${inst.placement}\n`);
  if (p.values['no-wait']) {
    print(
      ctx,
      inst,
      () =>
        `launching ${size} as server '${server}' (${inst.state}); follow it with: ngsci status ${server}`,
    );
    return EXIT.ok;
  }
  const running = await waitForInstance(api, ctx.io, {
    server,
    instanceId: inst.id,
    mode: 'launch',
    quiet: ctx.quiet || ctx.json,
    timeoutSeconds: timeout,
  });
  print(
    ctx,
    running,
    () =>
      `server '${server}' is running on ${running.size} at ${formatRate(running.ratePerHourMicros)}: ${running.url ?? ''}`,
  );
  return EXIT.ok;
}

/**
 * The machine a launch or resize asks for: a SIZE, or a pair of packages (--cpu M --gpu t4, which
 * is the size `m.t4`; --gpu defaults to none). Package names are checked here, in any case.
 */
function machineChoice(
  command: 'launch' | 'resize',
  positional: string | undefined,
  values: { cpu?: unknown; gpu?: unknown },
): { choice: { size: string } | { cpu: CpuPackageId; gpu: GpuPackageId }; size: string } {
  const cpuRaw = str(values.cpu as string | boolean | undefined);
  const gpuRaw = str(values.gpu as string | boolean | undefined);
  if (positional !== undefined) {
    if (cpuRaw || gpuRaw) throw new UsageError('give either SIZE or --cpu (with --gpu), not both');
    const size = parseSize(positional);
    return { choice: { size }, size };
  }
  if (!cpuRaw)
    throw new UsageError(
      gpuRaw
        ? `--gpu needs --cpu as well (a CPU package: ${CPU_PACKAGE_IDS.join(', ')})`
        : `${command}: missing SIZE (see: ngsci ${command} --help)`,
    );
  const cpu = CpuPackageId.safeParse(cpuRaw.toLowerCase());
  if (!cpu.success)
    throw new UsageError(
      `--cpu must be a CPU package (${CPU_PACKAGE_IDS.join(', ')}), not '${cpuRaw}'`,
    );
  const gpu = GpuPackageId.safeParse((gpuRaw ?? 'none').toLowerCase());
  if (!gpu.success)
    throw new UsageError(
      `--gpu must be a GPU package (${GPU_PACKAGE_IDS.join(', ')}), not '${gpuRaw}'`,
    );
  return { choice: { cpu: cpu.data, gpu: gpu.data }, size: pairSizeId(cpu.data, gpu.data) };
}

export async function stop(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'stop',
    args,
    { in: { type: 'string' }, 'no-wait': { type: 'boolean', default: false } },
    { min: 0, max: 1, names: 'SERVER' },
  );
  if (p.values.help) return help(ctx, HELP.stop);
  const server = parseServer(p.positionals[0] ?? 'default');
  const delay = p.values.in ? parseDuration(str(p.values.in)!, '--in') : 0;
  const api = ctx.api();
  if (delay) {
    await api.get<Instance>(`/instances/${server}`); // fail now, not in ten minutes, if there is no such server
    if (!ctx.quiet && !ctx.json)
      ctx.io.err(`stopping server '${server}' in ${duration(delay)} (Ctrl-C cancels)\n`);
    await ctx.io.sleep(delay * 1000);
  }
  const inst = await api.post<Instance>(`/instances/${server}/stop`);
  if (p.values['no-wait']) {
    print(ctx, inst, () => `server '${server}' is stopping`);
    return EXIT.ok;
  }
  let now = inst;
  for (let i = 0; i < 300 && now.state !== 'stopped' && now.state !== 'failed'; i++) {
    await ctx.io.sleep(1000);
    now = await api.get<Instance>(`/instances/${server}`);
  }
  print(ctx, now, () => `server '${server}' is ${now.state}`);
  return now.state === 'stopped' ? EXIT.ok : EXIT.failed;
}

export async function resize(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'resize',
    args,
    {
      server: { type: 'string', short: 's' },
      cpu: { type: 'string' },
      gpu: { type: 'string' },
      'no-wait': { type: 'boolean', default: false },
      timeout: { type: 'string' },
    },
    { min: 0, max: 1, names: 'SIZE' },
  );
  if (p.values.help) return help(ctx, HELP.resize);
  const { choice, size } = machineChoice('resize', p.positionals[0], p.values);
  const server = parseServer(str(p.values.server) ?? 'default');
  const timeout = p.values.timeout ? parseDuration(str(p.values.timeout)!, '--timeout') : 900;
  const api = ctx.api();
  const old = await api.post<Instance>(`/instances/${server}/resize`, choice);
  if (p.values['no-wait']) {
    print(ctx, old, () => `resizing server '${server}' from ${old.size} to ${size}`);
    return EXIT.ok;
  }
  const running = await waitForInstance(api, ctx.io, {
    server,
    instanceId: old.id,
    mode: 'resize',
    quiet: ctx.quiet || ctx.json,
    timeoutSeconds: timeout,
  });
  print(
    ctx,
    running,
    () =>
      `server '${server}' now runs on ${running.size} at ${formatRate(running.ratePerHourMicros)}`,
  );
  return EXIT.ok;
}

export async function usage(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'usage',
    args,
    { from: { type: 'string' }, to: { type: 'string' }, granularity: { type: 'string' } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, HELP.usage);
  const q = new URLSearchParams();
  for (const k of ['from', 'to'] as const) {
    const v = str(p.values[k]);
    if (v) {
      if (Number.isNaN(Date.parse(v)))
        throw new UsageError(
          `--${k} must be a date such as 2026-11-01 or 2026-11-01T00:00:00Z, not '${v}'`,
        );
      q.set(k, new Date(v).toISOString());
    }
  }
  const g = str(p.values.granularity);
  if (g) {
    if (!['hour', 'day', 'month'].includes(g))
      throw new UsageError(`--granularity must be hour, day or month, not '${g}'`);
    q.set('granularity', g);
  }
  const u = await ctx.api().get<Usage>(`/usage${q.size ? `?${q}` : ''}`);
  print(ctx, u, () =>
    [
      `usage of ${u.user}, ${u.from.slice(0, 10)} to ${u.to.slice(0, 10)}: ${dollars(u.totalMicros)}${asOf(u)}`,
      // GPU money wasted (contract gpu-waste.ts): only once an agent has sampled a GPU
      ...(u.gpuIdle && u.gpuIdle.sampledSeconds > 0
        ? [`${formatGpuIdle(u.gpuIdle)} (every GPU below ${u.gpuIdle.thresholdPercent}%)`]
        : []),
      '',
      u.series.length
        ? table(
            ['start', 'size', 'hours', 'active h', 'idle h', 'cost'],
            u.series.map((s) => [
              s.start.slice(0, g === 'hour' ? 16 : 10).replace('T', ' '),
              s.size,
              formatHours(s.seconds),
              formatHours(s.activeSeconds),
              formatHours(s.idleSeconds),
              dollars(s.amountMicros),
            ]),
          )
        : 'no usage in this range',
    ].join('\n'),
  );
  return EXIT.ok;
}

export async function budget(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse('budget', args, {}, { min: 0, max: 0, names: '' });
  if (p.values.help) return help(ctx, HELP.budget);
  const b = await ctx.api().get<Budget>('/budget');
  print(ctx, b, () =>
    [
      block([
        ['month', `${b.month}${asOf(b)}`],
        ['spent this month', dollars(b.spentMicros)],
        ...(b.spentTodayMicros === undefined
          ? []
          : [['spent today', dollars(b.spentTodayMicros)] as [string, string]]),
        ['burn rate', formatRate(b.burnMicrosPerHour)],
        [
          'runs out',
          b.exhaustedAt ? b.exhaustedAt.slice(0, 16).replace('T', ' ') : 'not this month',
        ],
        [
          'GPU hours',
          `${formatHours(Math.round(b.gpuHoursUsed * 3600))}${b.gpuHoursLimit !== null ? ` of ${b.gpuHoursLimit} h` : ''}`,
        ],
      ]),
      '',
      b.budgets.length
        ? table(
            ['budget', 'limit', 'spent', 'used', 'hard stop'],
            b.budgets.map((s) => [
              `${s.kind}${s.name ? ` ${s.name}` : ''}`,
              dollars(s.budgetMicros),
              dollars(s.spentMicros),
              `${s.percent}%`,
              s.hardStop ? 'yes' : 'no',
            ]),
          )
        : 'no budget applies to you',
    ].join('\n'),
  );
  return EXIT.ok;
}

export async function catalog(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'catalog',
    args,
    { cloud: { type: 'string' }, pairs: { type: 'boolean', default: false } },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, HELP.catalog);
  const c = await ctx.api().get<Catalog>('/catalog');
  const cloud = str(p.values.cloud) ?? c.defaultCloud;
  if (p.values.pairs) {
    // a pair your quotas forbid is unavailable everywhere, with whose row forbids it (as the
    // spawn form and the sidebar show it); an admin's token may have no budget of its own
    const forbids = c.pairs?.length
      ? ((await ctx
          .api()
          .get<Budget>('/budget')
          .then((b) => b.limits?.forbiddenSizes)
          .catch(() => undefined)) ?? [])
      : [];
    const forbidding = (id: string) => {
      const [cpu, gpu] = id.split('.');
      return forbids.find((f) => [id, `any.${gpu}`, `${cpu}.any`].includes(f.entry));
    };
    if (forbids.length)
      c.pairs = c.pairs?.map((s) => {
        const f = forbidding(s.id);
        return f
          ? { ...s, offers: s.offers.map((o) => ({ ...o, available: false, note: f.reason })) }
          : s;
      });
    print(ctx, { asOf: c.asOf, cloud, packages: c.packages ?? null, pairs: c.pairs ?? [] }, () =>
      c.pairs?.length
        ? `prices as of ${c.asOf} (${cloud}); launch one with: ngsci launch --cpu M --gpu t4\n\n` +
          table(
            ['size', 'cpu', 'gpu', 'machine', 'on demand/h', 'spot/h', 'note'],
            c.pairs.map((s) => {
              const o = s.offers.find((x) => x.cloud === cloud);
              const sold = o?.available === true;
              return [
                s.id,
                s.package?.cpu ?? null,
                s.package?.gpu ?? null,
                sold ? o.instanceType : 'unavailable',
                sold ? formatUnitPrice(o.onDemandMicrosPerHour) : null,
                sold && o.spotMicrosPerHour !== null ? formatUnitPrice(o.spotMicrosPerHour) : null,
                (sold ? o.fit?.beyondAsk : o?.note) ?? null,
              ];
            }),
          )
        : 'this hub lists no CPU × GPU package pairs',
    );
    return EXIT.ok;
  }
  print(
    ctx,
    c,
    () =>
      `prices as of ${c.asOf} (${cloud})\n\n` +
      table(
        ['size', 'label', 'vcpu', 'memory', 'gpu', 'on demand/h', 'spot/h'],
        c.sizes.flatMap((s) => {
          const o = s.offers.find((x) => x.cloud === cloud && x.available);
          return o
            ? [
                [
                  s.id,
                  s.label,
                  s.vcpu,
                  `${s.memoryGiB} GiB`,
                  s.gpu ? `${s.gpu.count}× ${s.gpu.model}` : null,
                  formatUnitPrice(o.onDemandMicrosPerHour),
                  o.spotMicrosPerHour === null ? null : formatUnitPrice(o.spotMicrosPerHour),
                ],
              ]
            : [];
        }),
      ),
  );
  return EXIT.ok;
}

export async function notify(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'notify',
    args,
    { title: { type: 'string' }, level: { type: 'string' }, server: { type: 'string' } },
    { min: 1, max: 1, names: 'MESSAGE (quote it)' },
  );
  if (p.values.help) return help(ctx, HELP.notify);
  const level = str(p.values.level) ?? 'info';
  if (!['info', 'warning', 'error'].includes(level))
    throw new UsageError(`--level must be info, warning or error, not '${level}'`);
  const message = p.positionals[0]!;
  if (!message.trim()) throw new UsageError('notify: the message is empty');
  const server = str(p.values.server) ?? ctx.io.env.JUPYTERHUB_SERVER_NAME ?? undefined;
  const sent = await ctx.api().post<{ title: string }>('/notify', {
    message,
    level,
    ...(p.values.title ? { title: str(p.values.title) } : {}),
    ...(server ? { server } : {}),
  });
  print(ctx, sent, () => 'sent');
  return EXIT.ok;
}

export async function notifications(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'notifications',
    args,
    {
      after: { type: 'string' },
      unread: { type: 'boolean', default: false },
      ack: { type: 'boolean', default: false },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, HELP.notifications);
  const after = str(p.values.after) ?? '0';
  if (!/^\d+$/.test(after)) throw new UsageError(`--after must be a notice id, not '${after}'`);
  const api = ctx.api();
  const list = await api.get<NotificationList>(
    `/notifications?after=${after}${p.values.unread ? '&unacknowledged=true' : ''}`,
  );
  if (p.values.ack && list.notifications.length)
    await api.post('/notifications/ack', { upTo: list.lastId });
  print(ctx, list, () =>
    list.notifications.length
      ? table(
          ['id', 'time', 'kind', 'level', 'title', 'message'],
          list.notifications.map((n) => [
            n.id,
            n.createdAt.slice(0, 16).replace('T', ' '),
            n.kind,
            n.level,
            n.title,
            n.body.slice(0, 80),
          ]),
        )
      : 'no notices',
  );
  return EXIT.ok;
}

export async function preferences(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'preferences',
    args,
    {
      email: { type: 'string' },
      webhook: { type: 'string' },
      channels: { type: 'string', multiple: true },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) return help(ctx, HELP.preferences);
  const body: Record<string, unknown> = {};
  const email = str(p.values.email);
  if (email !== undefined) body.email = email === 'none' ? null : email;
  const hook = str(p.values.webhook);
  if (hook !== undefined) body.webhookUrl = hook === 'none' ? null : hook;
  const ch = p.values.channels as string[] | undefined;
  if (ch) {
    const channels: Record<string, string[]> = {};
    for (const spec of ch) {
      const m =
        /^(budget|idle_stop|failure|spot|message)=((?:jupyterlab|email|webhook)(?:,(?:jupyterlab|email|webhook))*)?$/.exec(
          spec,
        );
      if (!m)
        throw new UsageError(
          `--channels takes KIND=CHANNEL[,CHANNEL] with KIND budget|idle_stop|failure|spot|message and CHANNEL jupyterlab|email|webhook, not '${spec}'`,
        );
      channels[m[1]!] = m[2] ? m[2].split(',') : [];
    }
    body.channels = channels;
  }
  const api = ctx.api();
  const prefs = Object.keys(body).length
    ? await api.put<NotificationPreferences>('/notifications/preferences', body)
    : await api.get<NotificationPreferences>('/notifications/preferences');
  print(ctx, prefs, () =>
    [
      block([
        [
          'email',
          prefs.email && !prefs.emailConfirmed
            ? `${prefs.email} (unconfirmed: open the link mailed to it)`
            : prefs.email,
        ],
        ['webhook', prefs.webhook.configured ? `set (${prefs.webhook.host})` : null],
      ]),
      '',
      table(
        ['kind', 'channels'],
        Object.entries(prefs.channels).map(([k, v]) => [k, v.join(', ') || '(none)']),
      ),
    ].join('\n'),
  );
  return EXIT.ok;
}

export async function estimate(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse('estimate', args, {}, { min: 1, max: 1, names: 'SCENARIO.json' });
  if (p.values.help) return help(ctx, HELP.estimate);
  const file = p.positionals[0]!;
  let raw: unknown;
  try {
    raw = JSON.parse(file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(
      e.code === 'ENOENT'
        ? `estimate: no file ${file}`
        : `estimate: ${file} is not valid JSON (${e.message})`,
    );
  }
  const checked = EstimateScenario.safeParse(raw);
  if (!checked.success) {
    const first = checked.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new CliError(
      EXIT.usage,
      'invalid_scenario',
      `estimate: ${file} is not a valid scenario: ${first.join('; ')}`,
    );
  }
  const est = await ctx.api().post<Estimate>('/estimate', raw);
  print(ctx, est, () =>
    [
      table(
        ['item', 'quantity', 'unit price', 'per month'],
        est.lines.map((l) => [
          l.name,
          `${l.quantity} ${l.unit}`,
          formatUnitPrice(l.unitMicros),
          dollars(l.monthlyMicros),
        ]),
      ),
      '',
      block([
        ['monthly', dollars(est.monthlyMicros)],
        ['annual', dollars(est.annualMicros)],
        [`total (${est.months} months)`, dollars(est.totalMicros)],
        // the scenario's credit grants (docs/billing.md): what they cover, and the total after
        ...(est.credits
          ? ([
              ['credits applied', dollars(est.credits.appliedMicros)],
              ['total after credits', dollars(est.credits.netTotalMicros)],
            ] as Array<[string, string]>)
          : []),
        ['prices as of', est.asOf],
      ]),
      ...(est.credits ? ['', est.credits.summary] : []),
    ].join('\n'),
  );
  return EXIT.ok;
}

/** One class of `ngsci idle`: what applies, what was chosen, the bounds. */
const idleRow = (label: string, t: IdleClassTimeout) => [
  label,
  formatIdleTimeout(t.effectiveSeconds),
  t.chosenSeconds === null
    ? `admin's (${formatIdleTimeout(t.defaultSeconds)})`
    : t.clamped
      ? `${formatIdleTimeout(t.chosenSeconds)} (outside the bounds now: the nearest bound applies)`
      : formatIdleTimeout(t.chosenSeconds),
  formatIdleBounds(t),
];

/** `45m`, `1h30m`, `never` (0), `default` (back to the admin's timeout: null). */
function parseIdleValue(raw: string): number | null {
  const s = raw.trim().toLowerCase();
  if (s === 'default' || s === 'reset' || s === 'admin') return null;
  if (s === 'never' || s === 'off') return 0;
  return parseDuration(s, 'the idle timeout');
}

export async function idle(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'idle',
    args,
    { cpu: { type: 'boolean', default: false }, gpu: { type: 'boolean', default: false } },
    { min: 0, max: 1, names: 'TIMEOUT' },
  );
  if (p.values.help) return help(ctx, HELP.idle);
  const api = ctx.api();
  const raw = p.positionals[0];
  if (raw === undefined && (p.values.cpu || p.values.gpu))
    throw new UsageError('idle: --cpu and --gpu go with a TIMEOUT, e.g. ngsci idle 45m --gpu');
  let t: IdleTimeout;
  if (raw === undefined) t = await api.get<IdleTimeout>('/me/idle-timeout');
  else {
    const value = parseIdleValue(raw);
    // neither flag: both classes
    const both = !p.values.cpu && !p.values.gpu;
    t = await api.put<IdleTimeout>('/me/idle-timeout', {
      ...(both || p.values.cpu ? { cpuSeconds: value } : {}),
      ...(both || p.values.gpu ? { gpuSeconds: value } : {}),
    });
  }
  print(ctx, t, () =>
    [
      raw === undefined ? `idle timeout of ${t.user}` : `idle timeout of ${t.user} set`,
      '',
      table(
        ['sizes', 'applies', 'your choice', 'you may choose'],
        [idleRow('CPU', t.cpu), idleRow('GPU', t.gpu)],
      ),
      ...(t.cpu.clamped || t.gpu.clamped
        ? ['', 'An admin narrowed the bounds since you chose: the nearest bound applies.']
        : []),
    ].join('\n'),
  );
  return EXIT.ok;
}

/** What GET/PUT /api/v1/me/preemption answer (hub-service routes/preemption.ts). */
interface PreemptionDefault {
  user: string;
  chosen: OnPreemption | null;
  adminDefault: OnPreemption;
  effective: OnPreemption;
  source: 'user' | 'admin';
  /** at a spot notice each notebook's kernel variables are saved (by the agent, or an open page) */
  keepState?: boolean;
  updatedAt: string | null;
}

const PREEMPTION_TEXT: Record<OnPreemption, string> = {
  'on-demand': 'start it again on demand (billed at the on-demand price)',
  spot: 'start it again on spot',
  stop: 'leave it stopped',
};

/** `ngsci preemption [on-demand|spot|stop] [--clear]`: your default for spot launches. */
export async function preemption(ctx: Ctx, args: string[]): Promise<number> {
  const p = parse(
    'preemption',
    args,
    {
      clear: { type: 'boolean', default: false },
      'keep-state': { type: 'boolean', default: false },
      'no-keep-state': { type: 'boolean', default: false },
    },
    { min: 0, max: 1, names: 'CHOICE' },
  );
  if (p.values.help) return help(ctx, HELP.preemption);
  const raw = p.positionals[0];
  if (raw !== undefined && p.values.clear)
    throw new UsageError('preemption: give a CHOICE or --clear, not both');
  if (p.values['keep-state'] && p.values['no-keep-state'])
    throw new UsageError('preemption: give --keep-state or --no-keep-state, not both');
  const keepState = p.values['keep-state'] ? true : p.values['no-keep-state'] ? false : undefined;
  let value: OnPreemption | null | undefined;
  if (p.values.clear) value = null;
  else if (raw !== undefined) {
    const parsed = OnPreemption.safeParse(raw.trim().toLowerCase());
    if (!parsed.success)
      throw new UsageError(`preemption: CHOICE is on-demand, spot or stop, not '${raw}'`);
    value = parsed.data;
  }
  const api = ctx.api();
  const d =
    value === undefined && keepState === undefined
      ? await api.get<PreemptionDefault>('/me/preemption')
      : await api.put<PreemptionDefault>('/me/preemption', {
          ...(value !== undefined ? { onPreemption: value } : {}),
          ...(keepState !== undefined ? { keepState } : {}),
        });
  print(ctx, d, () =>
    [
      `spot preemption default of ${d.user}${value === undefined ? (keepState === undefined ? '' : ' set') : value === null ? ' cleared' : ' set'}`,
      '',
      `applies:       ${d.effective}: ${PREEMPTION_TEXT[d.effective]} (${d.source === 'user' ? 'your default' : "the admin's default"})`,
      `your default:  ${d.chosen ?? 'none'}`,
      `admin default: ${d.adminDefault}`,
      `variables:     ${d.keepState ? "kept at a spot notice (each open notebook's kernel variables are saved, and restored after the relaunch)" : 'not kept at a spot notice (documents are saved)'}`,
      '',
      'A launch with --on-preemption overrides both.',
    ].join('\n'),
  );
  return EXIT.ok;
}

export function help(ctx: Ctx, text: string): number {
  ctx.io.out(`${text.trim()}\n`);
  return EXIT.ok;
}

const COMMON = `
Common options:
  --url URL      the ngsci API (default: $NGSCI_API_URL)
  --token TOKEN  a JupyterHub token (default: $JUPYTERHUB_API_TOKEN)
  --json         print JSON for scripts
  -q, --quiet    no progress output`;

export const HELP = {
  status: `Usage: ngsci status [SERVER] [--all]\n\nWho you are, your plan, and your instances (--all: ended ones too); with SERVER, that server in detail.${COMMON}`,
  launch: `Usage: ngsci launch SIZE | --cpu S|M|L|XL [--gpu none|t4|l4|a10g|v100|a100|a100x8|h100x8] [--server NAME] [--cloud C] [--region R] [--spot [--on-preemption on-demand|spot|stop]] [--no-wait] [--timeout 15m]\n\nStarts a machine of SIZE (ngsci catalog lists them), or of a CPU package with a GPU package (the size <cpu>.<gpu>, e.g. m.t4; ngsci catalog --pairs lists them), and shows its progress until JupyterLab answers. With --spot, --on-preemption says what happens when the cloud takes the machine back: start the server again on demand or on spot, or leave it stopped (default: the service's setting).${COMMON}`,
  stop: `Usage: ngsci stop [SERVER] [--in 10m] [--no-wait]\n\nStops a server (default: default), now or after a delay; billing ends when it has stopped.${COMMON}`,
  resize: `Usage: ngsci resize SIZE | --cpu PACKAGE [--gpu PACKAGE] [--server NAME] [--no-wait]\n\nStops the server and starts it again on SIZE (or the pair of packages), keeping its home directory. Save your work first.${COMMON}`,
  usage: `Usage: ngsci usage [--from DATE] [--to DATE] [--granularity hour|day|month]\n\nWhat you used and what it cost (default: this month, by day).${COMMON}`,
  budget: `Usage: ngsci budget\n\nYour month's spend, burn rate, the budgets that apply to you, and when they run out.${COMMON}`,
  catalog: `Usage: ngsci catalog [--cloud C] [--pairs]\n\nThe sizes you can launch and their prices per hour; --pairs: every CPU package with every GPU package, the machine each becomes on the cloud, what it gives beyond the ask, or why it is unavailable.${COMMON}`,
  notify: `Usage: ngsci notify "MESSAGE" [--title T] [--level info|warning|error]\n\nSends you a notice through your channels (JupyterLab, email, webhook).${COMMON}`,
  notifications: `Usage: ngsci notifications [--after ID] [--unread] [--ack]\n\nLists your notices; --ack marks the listed ones as read.${COMMON}`,
  preferences: `Usage: ngsci preferences [--email ADDR|none] [--webhook URL|none] [--channels KIND=CH[,CH]]...\n\nShows or changes where notices go. KIND: budget, idle_stop, failure, spot, message;\nCH: jupyterlab, email, webhook. Example: --channels budget=jupyterlab,email${COMMON}`,
  idle: `Usage: ngsci idle [TIMEOUT] [--cpu|--gpu]\n\nShows your idle timeout (how long a server may sit idle before it is stopped), per size class, and the\nbounds your admin allows; with TIMEOUT (45m, 1h30m, never, default) sets it, for both classes or the\none named. A value outside the bounds is refused with the bounds.${COMMON}`,
  preemption: `Usage: ngsci preemption [on-demand|spot|stop] [--clear] [--keep-state|--no-keep-state]\n\nShows your default for what happens when the cloud takes a spot machine back (start it again on\ndemand, on spot, or leave it stopped), the admin's default and which applies; with a CHOICE sets yours,\nwith --clear removes it (the admin's applies again). A launch's --on-preemption overrides both.\n--keep-state: at a spot notice the open JupyterLab page also saves each notebook's kernel variables,\nrestored after the relaunch (--no-keep-state: documents only).${COMMON}`,
  estimate: `Usage: ngsci estimate SCENARIO.json   (- reads stdin)\n\nWhat a scenario (always-on machines, instance hours, storage, fixed costs) costs per month and in total.${COMMON}`,
};
