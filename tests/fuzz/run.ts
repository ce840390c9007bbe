/**
 * API fuzzing: schemathesis (tests/requirements.txt) generates requests from the service's own
 * OpenAPI document and sends them to a whole running product (tests/src/stack.ts) through the
 * hub's proxy, once with a researcher's token and once with an admin's (a token the admin made
 * with the admin scope, as the CLI uses). A run passes when no response is a 5xx, every response
 * matches what the document declares (status, content type, headers, body schema), invalid input
 * is refused, and no body carries a stack trace or a path of the machine (tests/fuzz/hooks.py).
 *
 *   npm run fuzz -w tests                        # the long pass: 5,000+ cases
 *   NGSCI_FUZZ_EXAMPLES=40 npm run fuzz -w tests # more or fewer examples per operation and phase
 *
 * tests/src/fuzz.test.ts runs a bounded pass of the same code in `npm test`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, startStack, type Stack } from '../src/stack.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const VENV = process.env.NGSCI_VENV ?? join(ROOT, '.venv');
const ACCESS = 'access:services!service=ngsci';
const ADMIN_SCOPE = 'custom:ngsci:admin';

/**
 * Checks that are not part of the pass: `positive_data_acceptance` fails on every business rule
 * a schema cannot express (a size this hub does not run, `from` after `to`), and
 * `unsupported_method` / `allow_header_conformance` want 405 with `Allow` for a method a path
 * lacks, where the service answers 404 `not_found` like any other unknown route.
 */
const NOT_CHECKED = ['positive_data_acceptance', 'unsupported_method', 'allow_header_conformance'];

/**
 * Operations not fuzzed: the event stream answers 200 and then streams for as long as the client
 * listens, which a request-response fuzzer reads as a timeout. Its refusals and its events are
 * tested in hub-service (instances/event-feed.test.ts) and by the authz matrix.
 */
const NOT_FUZZED = ['/api/v1/instances/{server}/events'];

export type Role = 'user' | 'admin';

export interface FuzzOptions {
  /** schemathesis --max-examples: examples per operation in each generating phase */
  examples: number;
  /** schemathesis --phases */
  phases?: string;
  /** a seed, to repeat a run */
  seed?: string;
  /** concurrent requests per role */
  workers?: number;
  /** the database the service uses */
  database?: 'postgres' | 'pglite';
  log?: (line: string) => void;
}

export interface RoleResult {
  role: Role;
  exitCode: number;
  cases: number;
  statuses: Record<string, number>;
  /** the operations that answered this role with a 2xx at least once */
  succeeded: string[];
  /** schemathesis's failure and error sections, one entry per failing operation */
  failures: string[];
  summary: string;
}

export interface FuzzResult {
  cases: number;
  statuses: Record<string, number>;
  serverErrors: number;
  failures: string[];
  roles: RoleResult[];
  operations: number;
  seconds: number;
  seed: string;
  /** what the service logged at error level while it was fuzzed */
  serviceErrors: string[];
}

/** Starts a product, fuzzes it as a researcher and as an admin (at the same time), stops it. */
export async function fuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const schemathesis = join(VENV, 'bin', 'schemathesis');
  if (!existsSync(schemathesis))
    throw new Error(
      `${schemathesis} is missing: run \`node scripts/setup.mjs\` (tests/requirements.txt)`,
    );
  const started = Date.now();
  const seed = opts.seed ?? String(Math.floor(Math.random() * 2 ** 48));
  const stack = await startStack({
    database: opts.database ?? 'postgres',
    env: {
      // changes per user stay limited, but high enough that the logic behind them is reached;
      // launches keep the product's limit (each starts a real server), and so do token lookups
      NGSCI_WRITES_PER_MINUTE: '100000',
      NGSCI_LOG_LEVEL: 'info',
    },
  });
  const work = mkdtempSync(join(tmpdir(), 'ngsci-fuzz-'));
  try {
    const known = await seed_(stack);
    log(`fuzz: product up at ${stack.url} in ${Math.round((Date.now() - started) / 1000)} s`);
    const roles = await Promise.all(
      (['user', 'admin'] as const).map((role) =>
        runRole(schemathesis, stack, role, known[role], work, { ...opts, seed }),
      ),
    );
    const statuses: Record<string, number> = {};
    for (const r of roles)
      for (const [s, n] of Object.entries(r.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
    const ops = new Set<string>();
    for (const r of roles)
      for (const line of readRecord(join(work, `${r.role}.ndjson`))) ops.add(line.op);
    return {
      cases: roles.reduce((n, r) => n + r.cases, 0),
      statuses,
      serverErrors: Object.entries(statuses)
        .filter(([s]) => Number(s) >= 500)
        .reduce((n, [, c]) => n + c, 0),
      failures: roles.flatMap((r) => r.failures.map((f) => `[${r.role}] ${f}`)),
      roles,
      operations: ops.size,
      seconds: Math.round((Date.now() - started) / 1000),
      seed,
      serviceErrors: serviceErrors(stack.logFile),
    };
  } finally {
    await stack.stop();
    if (!process.env.NGSCI_TEST_KEEP) rmSync(work, { recursive: true, force: true });
  }
}

type Known = Record<string, (string | number)[]>;

/**
 * Tokens, and things that exist for the fuzzer to aim at: a running server of the researcher's,
 * a quota, a plan and an audit rule. Each user also gets a quota of one machine at a time, so
 * the launches the fuzzer makes start real servers but never more than one each.
 */
async function seed_(stack: Stack): Promise<Record<Role, Known & { token: [string] }>> {
  const { researcher, admin } = stack.users;
  const userToken = await stack.userToken(researcher);
  const adminToken = await stack.userToken(admin, [ACCESS, ADMIN_SCOPE]);
  const call = async (path: string, token: string, method: string, body?: unknown) => {
    const res = await stack.api(path, token, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`seeding: ${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  };
  for (const name of [researcher, admin])
    await call('/admin/quotas', adminToken, 'POST', {
      subjectKind: 'user',
      subjectName: name,
      maxConcurrent: 1,
    });
  const quota = await call('/admin/quotas', adminToken, 'POST', {
    subjectKind: 'group',
    subjectName: 'fuzzers',
    monthlyBudgetMicros: 5_000_000,
  });
  const plan = await call('/admin/plans', adminToken, 'POST', {
    id: 'fuzz-lab',
    label: 'Fuzz lab',
    multiplierPpm: 500_000,
  });
  const assignment = await call('/admin/plan-assignments', adminToken, 'PUT', {
    subjectKind: 'group',
    subjectName: 'fuzzers',
    planId: 'fuzz-lab',
  });
  const rule = await call('/admin/audit/rules', adminToken, 'POST', {
    kind: 'honeypot',
    path: '/data/fuzz-canary.csv',
  });
  await call('/admin/prices', adminToken, 'PUT', {
    size: 'cpu-small',
    cloud: 'local',
    onDemandMicrosPerHour: 90_000,
  });
  // not awaited to running: the fuzzer meets it starting, running, or stopped by its own calls
  await call('/instances', userToken, 'POST', { size: 'cpu-small' });
  const catalog = await call('/catalog', userToken, 'GET');
  const sizes = (catalog.sizes as { id: string }[]).map((s) => s.id);
  const month = new Date().toISOString().slice(0, 7);
  const common = { server: ['default'], size: sizes, cloud: ['local', 'aws'], month: [month] };
  return {
    user: { ...common, token: [userToken], user: [researcher] },
    admin: {
      ...common,
      token: [adminToken],
      user: [researcher, admin],
      id: [quota.id, plan.id, assignment.id, rule.id].filter(
        (v): v is string | number => typeof v === 'string' || typeof v === 'number',
      ),
    },
  };
}

async function runRole(
  schemathesis: string,
  stack: Stack,
  role: Role,
  known: Known & { token: [string] },
  work: string,
  opts: FuzzOptions & { seed: string },
): Promise<RoleResult> {
  const record = join(work, `${role}.ndjson`);
  writeFileSync(record, '');
  const { token, ...values } = known;
  const args = [
    '--config-file',
    join(HERE, 'schemathesis.toml'),
    'run',
    `${stack.url}/services/ngsci/api/v1/openapi.json`,
    '--header',
    `Authorization: token ${token[0]}`,
    '--checks',
    'all',
    '--exclude-checks',
    NOT_CHECKED.join(','),
    ...NOT_FUZZED.flatMap((p) => ['--exclude-path', p]),
    '--max-examples',
    String(opts.examples),
    '--phases',
    opts.phases ?? 'examples,coverage,fuzzing,stateful',
    '--seed',
    opts.seed,
    '--workers',
    String(opts.workers ?? 1),
    '--request-timeout',
    '30',
    '--generation-database',
    'none',
    '--no-color',
    '--report',
    'json',
    '--report-dir',
    join(work, `${role}-report`),
  ];
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PYTHONPATH: [HERE, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
    SCHEMATHESIS_HOOKS: 'hooks',
    NGSCI_FUZZ_ROLE: role,
    NGSCI_FUZZ_RECORD: record,
    NGSCI_FUZZ_KNOWN: JSON.stringify(values),
    // where the code and the data of this product live: no response may name them
    NGSCI_FUZZ_PATHS: [ROOT, stack.dataDir, VENV].join(delimiter),
    NO_COLOR: '1',
    COLUMNS: '120',
  };
  const output = await new Promise<{ code: number; text: string }>((resolve, reject) => {
    const child = spawn(schemathesis, args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, text }));
  });
  if (process.env.NGSCI_TEST_KEEP) writeFileSync(join(work, `${role}.log`), output.text);
  const lines = readRecord(record);
  const statuses: Record<string, number> = {};
  for (const l of lines) statuses[l.status] = (statuses[l.status] ?? 0) + 1;
  const succeeded = new Set(
    lines.filter((l) => l.status >= 200 && l.status < 300).map((l) => l.op),
  );
  return {
    role,
    exitCode: output.code,
    cases: lines.length,
    statuses,
    succeeded: [...succeeded].sort(),
    failures: failureSections(output.text),
    summary: summaryOf(output.text),
  };
}

function readRecord(file: string): { op: string; status: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { op: string; status: number });
}

/** The FAILURES and ERRORS sections of schemathesis's output, one entry per operation. */
export function failureSections(text: string): string[] {
  const out: string[] = [];
  const sections = text.split(/^={5,} (?:FAILURES|ERRORS) ={5,}$/m).slice(1);
  for (const section of sections) {
    const body = section.split(/^={5,} (?:SUMMARY|FAILURES|ERRORS|WARNINGS) ={5,}$/m)[0]!;
    for (const part of body.split(/^_{3,} (?=\S)/m).slice(1)) {
      out.push(
        part
          .split('\n')
          .filter((l) => !/Need more help|Join our Discord|discord\.gg/.test(l))
          .map((l) => (l.length > 400 ? `${l.slice(0, 400)} …` : l))
          .join('\n')
          .trim()
          .slice(0, 3000),
      );
    }
  }
  return out;
}

function summaryOf(text: string): string {
  const i = text.search(/^={5,} SUMMARY ={5,}$/m);
  return i === -1 ? text.slice(-3000) : text.slice(i);
}

function serviceErrors(logFile: string): string[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{') && /"level":(50|60)/.test(l))
    .map((l) => l.slice(0, 600));
}

/** The report a person reads: counts, the status histogram, and every failure. */
export function describe(r: FuzzResult): string {
  const hist = Object.entries(r.statuses)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');
  const lines = [
    `fuzz: ${r.cases} cases (${r.roles.map((x) => `${x.role} ${x.cases}`).join(', ')}) ` +
      `over ${r.operations} operations in ${r.seconds} s, seed ${r.seed}`,
    `fuzz: statuses ${hist}`,
    `fuzz: ${r.serverErrors} responses >= 500, ${r.failures.length} failing operations`,
  ];
  for (const f of r.failures) lines.push(`--- ${f}`);
  for (const e of r.serviceErrors) lines.push(`service error log: ${e}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const examples = Number(process.env.NGSCI_FUZZ_EXAMPLES ?? 60);
  const result = await fuzz({
    examples,
    seed: process.env.NGSCI_FUZZ_SEED,
    workers: Number(process.env.NGSCI_FUZZ_WORKERS ?? 1),
  });
  console.log(describe(result));
  for (const r of result.roles) console.log(`\n--- ${r.role}: schemathesis summary\n${r.summary}`);
  const min = Number(process.env.NGSCI_FUZZ_MIN_CASES ?? 5000);
  if (result.cases < min) console.error(`fuzz: only ${result.cases} cases, fewer than ${min}`);
  process.exit(result.failures.length || result.serverErrors || result.cases < min ? 1 : 0);
}
