/**
 * A researcher's own idle timeout on the real hub (issue 15, part 4): the admin sets the bounds
 * with `ngsci admin quota set`, the researcher chooses with `ngsci idle` and `%ngsci idle` (an
 * out-of-bounds value is refused with the bounds), and the culler stops the researcher's idle
 * server after the researcher's short timeout while another user's server, on the admin's hour,
 * keeps running. When the admin narrows the bounds, the choice is clamped and the answer says so.
 * Meter and culler run every second.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import postgres from 'postgres';
import { assertWarnedThenCulled } from './culling.js';
import { ROOT, startPostgresStack, until, type PostgresStack, type Stack } from './stack.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}
interface IdleClass {
  chosenSeconds: number | null;
  effectiveSeconds: number;
  minSeconds: number;
  maxSeconds: number;
  clamped: boolean;
}
interface Idle {
  cpu: IdleClass;
  gpu: IdleClass;
}

let stack: Stack;
let sql: postgres.Sql;
let pgStack: PostgresStack;
const tokens: Record<string, string> = {};

before(async () => {
  pgStack = await startPostgresStack(
    {
      NGSCI_CULL_EVERY: '1',
      NGSCI_CULL_WARNING: '2',
      NGSCI_CULL_TIMEOUT: '3600',
    },
    ['patient'],
  );
  ({ stack, sql } = pgStack);
  for (const u of ['admin', 'researcher', 'patient']) tokens[u] = await stack.userToken(u);
});

after(async () => {
  await pgStack?.stop();
});

const run = (cmd: string, args: string[], token: string): Promise<Result> =>
  new Promise((resolve) => {
    const child = spawn(join(ROOT, '.venv', 'bin', cmd), args, {
      env: {
        PATH: process.env.PATH ?? '',
        NGSCI_API_URL: `${stack.url}/services/ngsci/api/v1`,
        JUPYTERHUB_API_TOKEN: token,
        HOME: process.env.HOME ?? '/tmp',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
const ngsci = (args: string[], user = 'researcher') => run('ngsci', args, tokens[user]!);
/** `%ngsci …` in a real IPython shell with the magic loaded, as in a notebook's kernel. */
const magic = (line: string) =>
  run(
    'ipython',
    ['--no-banner', '--colors=NoColor', '-c', `%load_ext ngsci_magic\n%ngsci ${line}`],
    tokens.researcher!,
  );

const idleOf = async (user: string): Promise<Idle> => {
  const res = await stack.api('/me/idle-timeout', tokens[user]!);
  assert.equal(res.status, 200);
  return (await res.json()) as Idle;
};
const instance = async (user: string) =>
  (await (await stack.api('/instances/default', tokens[user]!)).json()) as {
    id: string;
    state: string;
  };

test(
  "the admin's bounds, the researcher's choice from the CLI and the magic, the culler on it",
  { timeout: 240_000 },
  async () => {
    // the admin: researchers may choose 5 s to 2 h on CPU sizes (the admin's timeout stays 1 h)
    const set = await ngsci(
      ['admin', 'quota', 'set', '--default', '--idle-cpu-min', '5s', '--idle-cpu-max', '2h'],
      'admin',
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /5s-2h/);

    // without a value: the admin's hour and the bounds
    const shown = await ngsci(['idle']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /CPU\s+1 h\s+admin's \(1 h\)\s+5 s to 2 h/);

    // out of bounds: refused with the bounds, from the CLI and from the magic; nothing changes
    const high = await ngsci(['idle', '3h', '--cpu']);
    assert.equal(high.code, 1);
    assert.match(
      high.stderr,
      /\[idle_timeout_out_of_bounds\] an idle timeout of 3 h is outside the bounds for CPU sizes: 5 s to 2 h \(set by your admin\)/,
    );
    const magicHigh = await magic('idle 4h --cpu');
    assert.match(
      magicHigh.stdout + magicHigh.stderr,
      /ngsci: \[idle_timeout_out_of_bounds\] an idle timeout of 4 h is outside the bounds for CPU sizes: 5 s to 2 h/,
    );
    assert.equal((await idleOf('researcher')).cpu.chosenSeconds, null);

    // in bounds through the magic, then the CLI: the last one applies
    const magicSet = await magic('idle 45m --cpu');
    assert.match(magicSet.stdout, /idle timeout of researcher set/, magicSet.stderr);
    assert.equal((await idleOf('researcher')).cpu.effectiveSeconds, 2700);
    const short = await ngsci(['idle', '8s', '--cpu']);
    assert.equal(short.code, 0, short.stderr);
    assert.match(short.stdout, /CPU\s+8 s\s+8 s\s+5 s to 2 h/);
    const magicShow = await magic('idle');
    assert.match(magicShow.stdout, /CPU\s+8 s\s+8 s\s+5 s to 2 h/, magicShow.stderr);

    // both servers run; the researcher's stops after its 8 idle seconds, the other keeps the hour
    for (const u of ['researcher', 'patient']) {
      const res = await stack.api('/instances', tokens[u]!, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.equal(res.status, 202, `${u}: ${await res.text()}`);
    }
    for (const u of ['researcher', 'patient'])
      await until(
        async () => ['running', 'failed'].includes((await instance(u)).state),
        `${u} running`,
        120,
        stack,
      );
    const other = await instance('patient');
    assert.equal(other.state, 'running');
    const culled = await until(
      async () => {
        const i = await instance('researcher');
        return ['stopped', 'failed'].includes(i.state) ? i : null;
      },
      "the researcher's idle server to be culled",
      90,
      stack,
    );
    assert.equal(culled.state, 'stopped');
    await assertWarnedThenCulled(sql, culled.id);
    const still = await instance('patient');
    assert.equal(still.id, other.id);
    assert.equal(still.state, 'running', "the admin's hour still applies to the other user");
    const patientEvents = (
      await sql<
        Array<{ message: string }>
      >`select message from instance_events where instance_id = ${other.id} order by id`
    ).map((e) => e.message);
    assert.ok(!patientEvents.some((m) => /idle/.test(m)), patientEvents.join(' | '));

    // the admin narrows the bounds: a choice above the new maximum is clamped, and said so
    assert.equal((await ngsci(['idle', '90m', '--cpu'])).code, 0);
    const narrowed = await ngsci(
      ['admin', 'quota', 'set', '--default', '--idle-cpu-max', '1h'],
      'admin',
    );
    assert.equal(narrowed.code, 0, narrowed.stderr);
    const after = await idleOf('researcher');
    assert.equal(after.cpu.chosenSeconds, 5400);
    assert.equal(after.cpu.effectiveSeconds, 3600);
    assert.equal(after.cpu.clamped, true);
    const told = await ngsci(['idle']);
    assert.match(told.stdout, /An admin narrowed the bounds since you chose/);

    await stack.api('/instances/default/stop', tokens.patient!, { method: 'POST' });
  },
);
