/**
 * The CLI's contract with scripts and people: arguments are checked before anything is sent,
 * service errors come out as one line with the service's code, and exit codes say what happened.
 * A fake fetch stands in for the service here; tests/src/cli.test.ts runs against the real one.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './main.js';
import type { Io } from './output.js';
import { dollars, parseDollars, parseDuration } from './parse.js';
import { sseMessages as sseEvents } from '@ngsci/contract/client';
import { bar } from './progress.js';

function io(
  fetchImpl: typeof fetch = async () => new Response('{}'),
  env: Record<string, string> = {
    NGSCI_API_URL: 'http://svc.test/services/ngsci/api/v1',
    JUPYTERHUB_API_TOKEN: 'tok-secret-123',
  },
) {
  const out: string[] = [];
  const err: string[] = [];
  const calls: Array<{ url: string; method: string; body: unknown; auth: string | null }> = [];
  const fake: typeof fetch = async (input, init) => {
    calls.push({
      url: String(input),
      method: init?.method ?? 'GET',
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
      auth: new Headers(init?.headers).get('authorization'),
    });
    return fetchImpl(input, init);
  };
  const value: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    tty: false,
    env,
    fetch: fake,
    sleep: async () => {},
  };
  return { io: value, out: () => out.join(''), err: () => err.join(''), calls };
}

describe('arguments', () => {
  test('bad arguments exit 2 with a line naming the fix, and nothing is sent', async () => {
    for (const [argv, pattern] of [
      [['launch'], /missing SIZE/],
      [['launch', 'GPU_BIG'], /not a size id/],
      [['stop', '--in', 'soon'], /--in must be a duration/],
      [['resize', 'gpu-t4', '--server', 'Bad_Name'], /not a server name/],
      [['status', '--frobnicate'], /unknown option '--frobnicate'/],
      [
        ['admin', 'quota', 'set', '--budget', '100'],
        /exactly one of --user U, --group G or --default/,
      ],
      [
        ['admin', 'quota', 'set', '--user', 'a', '--budget', '12.3456789'],
        /--budget must be an amount in dollars/,
      ],
      [['admin', 'plans', 'set', 'academic', 'Academic', 'half'], /MULTIPLIER must be a number/],
      [['estimate', '/nonexistent/scenario.json'], /no file/],
      [['preferences', '--channels', 'budget=pager'], /--channels takes KIND=CHANNEL/],
      [['teleport'], /unknown verb 'teleport'/],
    ] as Array<[string[], RegExp]>) {
      const t = io();
      const code = await run(argv, t.io);
      assert.equal(code, 2, argv.join(' '));
      assert.match(t.err(), pattern, argv.join(' '));
      assert.equal(t.err().trim().split('\n').length, 1, 'one line');
      assert.equal(t.calls.length, 0, `${argv.join(' ')} sent nothing`);
    }
  });

  test('no URL or token configured: exit 3 saying which variable to set', async () => {
    const t = io(undefined, {});
    assert.equal(await run(['status'], t.io), 3);
    assert.match(t.err(), /NGSCI_API_URL/);
    const rel = io(undefined, {
      NGSCI_API_URL: '/services/ngsci/api/v1',
      JUPYTERHUB_API_TOKEN: 'x',
    });
    assert.equal(await run(['status'], rel.io), 3);
    assert.match(rel.err(), /is a path/);
  });

  test('money and durations are parsed exactly', () => {
    assert.equal(parseDollars('100', '--budget'), 100_000_000);
    assert.equal(parseDollars('$12.345678', '--budget'), 12_345_678);
    assert.equal(parseDollars('0.1', '--budget'), 100_000);
    assert.equal(parseDuration('1h30m', '--in'), 5400);
    assert.equal(parseDuration('10', '--in'), 600, 'a bare number is minutes');
    // the contract's formatter (its vectors: contract/fixtures/money-format.json)
    assert.equal(dollars(526_000), '$0.526');
    assert.equal(dollars(1_999_999), '$2.00');
    assert.equal(dollars(4_200), '$0.0042');
    assert.equal(dollars(1), '< $0.0001', 'never $0.00 for a non-zero amount');
    assert.equal(dollars(1_234_567_890_000), '$1,234,567.89');
  });
});

describe('talking to the service', () => {
  test('a service error is one line with its code, exit 1; the token is sent but never printed', async () => {
    const t = io(async () =>
      Response.json(
        { code: 'quota_exceeded', message: 'you may run 1 instance at a time', requestId: 'r1' },
        { status: 409 },
      ),
    );
    assert.equal(await run(['launch', 'gpu-t4'], t.io), 1);
    assert.equal(t.err(), 'ngsci: [quota_exceeded] you may run 1 instance at a time\n');
    assert.equal(t.calls[0]!.auth, 'token tok-secret-123');
    assert.deepEqual(t.calls[0]!.body, { server: 'default', size: 'gpu-t4', spot: false });
    assert.ok(!t.err().includes('tok-secret-123'));

    const j = io(async () =>
      Response.json(
        { code: 'not_found', message: "no server named 'x'", requestId: 'r2' },
        { status: 404 },
      ),
    );
    assert.equal(await run(['status', 'x', '--json'], j.io), 1);
    assert.deepEqual(JSON.parse(j.err()), {
      error: { code: 'not_found', message: "no server named 'x'" },
    });
  });

  test('an unreachable service: exit 3', async () => {
    const t = io(async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    });
    assert.equal(await run(['budget'], t.io), 3);
    assert.match(t.err(), /cannot reach the ngsci service at http:\/\/svc\.test \(ECONNREFUSED\)/);
  });

  test('admin quota set creates a quota with exact micro-dollars, and changes one limit of an existing one', async () => {
    const existing = {
      id: 7,
      subjectKind: 'group',
      subjectName: 'lab',
      monthlyBudgetMicros: 100_000_000,
      hardStop: false,
      maxConcurrent: 2,
      allowedSizes: null,
      gpuHoursPerMonth: null,
      idleTimeoutCpuSeconds: null,
      idleTimeoutGpuSeconds: null,
      maxAgeSeconds: null,
      updatedAt: '2026-11-20T00:00:00Z',
    };
    let quotas: unknown[] = [];
    const t = io(async (u, init) => {
      if ((init?.method ?? 'GET') === 'GET') return Response.json({ quotas });
      return Response.json(
        { id: 7, ...JSON.parse(String(init?.body)), updatedAt: '2026-11-20T00:00:00Z' },
        { status: init?.method === 'POST' ? 201 : 200 },
      );
    });
    const code = await run(
      [
        'admin',
        'quota',
        'set',
        '--group',
        'lab',
        '--budget',
        '250.50',
        '--hard-stop',
        '--idle-gpu',
        '20m',
        '--sizes',
        'cpu-small,gpu-t4',
      ],
      t.io,
    );
    assert.equal(code, 0, t.err());
    assert.equal(t.calls[1]!.method, 'POST');
    assert.match(t.calls[1]!.url, /\/admin\/quotas$/);
    assert.deepEqual(t.calls[1]!.body, {
      subjectKind: 'group',
      subjectName: 'lab',
      monthlyBudgetMicros: 250_500_000,
      hardStop: true,
      idleTimeoutGpuSeconds: 1200,
      allowedSizes: ['cpu-small', 'gpu-t4'],
    });

    quotas = [existing];
    t.calls.length = 0;
    assert.equal(
      await run(['admin', 'quota', 'set', '--group', 'lab', '--max-concurrent', '4'], t.io),
      0,
    );
    assert.equal(t.calls[1]!.method, 'PUT');
    assert.match(t.calls[1]!.url, /\/admin\/quotas\/7$/);
    const sent = t.calls[1]!.body as Record<string, unknown>;
    assert.equal(sent.maxConcurrent, 4);
    assert.equal(sent.monthlyBudgetMicros, 100_000_000, 'the budget it had is kept');
    assert.equal(sent.id, undefined);
  });

  test('admin stop USER/SERVER and USER alone', async () => {
    const inst = { id: 'i', size: 'cpu-small', state: 'stopping' };
    const t = io(async () => Response.json(inst, { status: 202 }));
    assert.equal(await run(['admin', 'stop', 'alice/gpu1'], t.io), 0);
    assert.equal(await run(['admin', 'stop', 'bob'], t.io), 0);
    assert.deepEqual(
      t.calls.map((c) => `${c.method} ${new URL(c.url).pathname}`),
      [
        'POST /services/ngsci/api/v1/admin/instances/alice/gpu1/stop',
        'POST /services/ngsci/api/v1/admin/instances/bob/default/stop',
      ],
    );
  });
});

describe('admin: what docs/admin-cli.md promises', () => {
  test('--help is accepted by every admin verb, before or after it, and sends nothing', async () => {
    for (const argv of [
      ['admin', '--help'],
      ['admin', 'plans', '--help'],
      ['admin', 'quota', '--help'],
      ['admin', 'quota', 'set', '--help'],
      ['admin', '--help', 'plans'],
      ['admin', 'users', '--help'],
      ['admin', 'instances', '-h'],
      ['admin', 'stop', '--help'],
      ['admin', 'audit', '--help'],
      ['admin', 'audit', 'verify', '--help'],
      ['admin', 'plans', 'assign', '--help'],
    ]) {
      const t = io();
      assert.equal(await run(argv, t.io), 0, `${argv.join(' ')}: ${t.err()}`);
      assert.match(t.out(), /^Usage: ngsci admin VERB/, argv.join(' '));
      assert.equal(t.calls.length, 0, `${argv.join(' ')} sent nothing`);
    }
  });

  test('--url and --token are taken before or after the verb, by every verb', async () => {
    const url = 'http://other.test/services/ngsci/api/v1';
    const answers: Record<string, unknown> = {
      '/admin/plans': { plans: [] },
      '/admin/quotas': { quotas: [] },
      '/admin/users': { month: '2026-11', users: [] },
      '/admin/instances': { instances: [] },
      '/admin/audit/rules': { rules: [] },
    };
    for (const argv of [
      ['admin', '--url', url, '--token', 'adm-tok', 'plans'],
      ['admin', 'plans', '--url', url, '--token', 'adm-tok'],
      ['admin', 'plans', 'list', `--url=${url}`, '--token', 'adm-tok'],
      ['admin', 'quota', '--url', url, '--token', 'adm-tok'],
      ['admin', '--token', 'adm-tok', 'quota', 'list', '--url', url],
      ['admin', 'users', '--url', url, '--token', 'adm-tok'],
      ['admin', 'instances', '--url', url, '--token', 'adm-tok'],
      ['admin', 'audit', '--url', url, '--token', 'adm-tok', 'rules'],
      ['--url', url, 'admin', '--token', 'adm-tok', 'plans'],
    ]) {
      const t = io(async (input) => {
        const path = new URL(String(input)).pathname.replace('/services/ngsci/api/v1', '');
        return Response.json(answers[path] ?? {});
      });
      assert.equal(await run(argv, t.io), 0, `${argv.join(' ')}: ${t.err()}`);
      assert.ok(t.calls.length > 0, argv.join(' '));
      for (const c of t.calls) {
        assert.ok(c.url.startsWith('http://other.test/'), `${argv.join(' ')} called ${c.url}`);
        assert.match(c.auth ?? '', /adm-tok/, argv.join(' '));
      }
    }
  });

  test('audit --csv FILE writes the export to FILE, as -o FILE does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-csv-'));
    const csv = 'at,user,server,op,path\n2026-11-01T00:00:00Z,alice,,read,/data/a.csv\n';
    for (const argv of [
      ['admin', 'audit', '--csv', join(dir, 'a.csv')],
      ['admin', 'audit', '--user', 'alice', '--csv', join(dir, 'b.csv')],
      ['admin', 'audit', '--csv', '-o', join(dir, 'c.csv')],
    ]) {
      const t = io(async () => new Response(csv, { headers: { 'content-type': 'text/csv' } }));
      assert.equal(await run(argv, t.io), 0, `${argv.join(' ')}: ${t.err()}`);
      assert.match(t.calls[0]!.url, /format=csv/);
      assert.equal(t.out(), '', 'the CSV went to the file, not the terminal');
    }
    for (const f of ['a.csv', 'b.csv', 'c.csv'])
      assert.equal(readFileSync(join(dir, f), 'utf8'), csv, f);
    const t = io();
    assert.equal(await run(['admin', 'audit', 'stray.csv'], t.io), 2);
    assert.match(t.err(), /unknown verb 'stray.csv'/);
  });

  test('users: the group budget holds a user without their own, per-group totals, --month', async () => {
    const users = {
      month: '2026-10',
      asOf: '2026-11-30T10:00:00.000Z',
      users: [
        {
          name: 'ann',
          groups: ['lab'],
          plan: 'private',
          running: 1,
          spentMicros: 30_000_000,
          budgetMicros: null,
          percent: null,
        },
        {
          name: 'bo',
          groups: ['lab'],
          plan: 'private',
          running: 0,
          spentMicros: 10_000_000,
          budgetMicros: 20_000_000,
          percent: 50,
        },
        {
          name: 'cy',
          groups: [],
          plan: 'private',
          running: 0,
          spentMicros: 1_500_000,
          budgetMicros: null,
          percent: null,
        },
      ],
    };
    const quotas = {
      quotas: [
        { id: 1, subjectKind: 'group', subjectName: 'lab', monthlyBudgetMicros: 80_000_000 },
      ],
    };
    const t = io(async (input) =>
      Response.json(String(input).includes('/admin/quotas') ? quotas : users),
    );
    assert.equal(await run(['admin', 'users', '--month', '2026-10'], t.io), 0, t.err());
    assert.match(t.calls[0]!.url, /\/admin\/users\?month=2026-10$/);
    const lines = t.out().split('\n');
    const row = (first: string) => lines.find((l) => l.trimStart().startsWith(`${first} `)) ?? '';
    // ann has no budget of her own: her group's $80.00 holds her, at the group's 50%
    assert.match(row('ann'), /\$80\.00 \(group lab\)\s+50%/);
    assert.match(row('bo'), /\$20\.00\s+50%/);
    assert.doesNotMatch(row('cy'), /\$80/);
    assert.match(t.out(), /total: \$41\.50/);
    // per group: its members' spend against its budget
    assert.match(row('lab'), /lab\s+2\s+\$40\.00\s+\$80\.00\s+50%/);

    const j = io(async (input) =>
      Response.json(String(input).includes('/admin/quotas') ? quotas : users),
    );
    assert.equal(await run(['admin', 'users', '--json'], j.io), 0);
    const parsed = JSON.parse(j.out()) as {
      users: Array<{
        name: string;
        budgetMicros: number | null;
        effectiveBudgetMicros: number | null;
        budgetFrom: string | null;
      }>;
      groups: Array<{ name: string; spentMicros: number; budgetMicros: number | null }>;
      totalMicros: number;
    };
    const ann = parsed.users.find((u) => u.name === 'ann')!;
    assert.equal(ann.budgetMicros, null, "the service's field is kept as it is");
    assert.equal(ann.effectiveBudgetMicros, 80_000_000);
    assert.equal(ann.budgetFrom, 'group lab');
    assert.deepEqual(
      parsed.groups.map((g) => [g.name, g.spentMicros, g.budgetMicros]),
      [['lab', 40_000_000, 80_000_000]],
    );
    assert.equal(parsed.totalMicros, 41_500_000);

    const bad = io();
    assert.equal(await run(['admin', 'users', '--month', 'October'], bad.io), 2);
    assert.match(bad.err(), /--month must be a month such as/);
    assert.equal(bad.calls.length, 0);
  });
});

describe('progress', () => {
  test('SSE frames are parsed across chunk boundaries; the bar shows the percentage', async () => {
    const text =
      'id: 1\nevent: instance\ndata: {"a":1}\n\n: comment\nevent: ping\ndata: {}\n\nid: 2\nevent: instance\ndata: {"a":2}\n\n';
    const enc = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < enc.length; i += 5) c.enqueue(enc.slice(i, i + 5));
        c.close();
      },
    });
    const got = [];
    for await (const e of sseEvents(stream)) got.push(e);
    assert.deepEqual(got, [
      { event: 'instance', data: '{"a":1}', id: '1' },
      { event: 'ping', data: '{}', id: '1' },
      { event: 'instance', data: '{"a":2}', id: '2' },
    ]);
    assert.equal(bar(50, 10), '[#####.....]  50%');
  });
});
