/**
 * The process runner on its own, with small Node scripts as children: lines and exit codes, an
 * environment that is exactly what was given, a timeout, and a cancel in two stages (SIGINT,
 * then SIGKILL to the whole process group when SIGINT is ignored).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { runProcess, type ProcessSpec, type StopReason } from './process.js';

const node = process.execPath;

function spec(script: string, extra: Partial<ProcessSpec> = {}): ProcessSpec {
  return {
    command: node,
    args: ['-e', script],
    cwd: tmpdir(),
    env: { PATH: process.env.PATH ?? '' },
    timeoutMs: 10_000,
    killGraceMs: 300,
    ...extra,
  };
}

/** Gone, or a zombie waiting for a reaper (it runs no more either way). */
function gone(pid: number): boolean {
  const status = `/proc/${pid}/status`;
  if (existsSync(status)) return /^State:\s+Z/m.test(readFileSync(status, 'utf8'));
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

describe('process runner', () => {
  it('process runner: streams stdout and stderr lines and reports the exit code', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const r = await runProcess(
      spec("console.log('one'); console.log('two'); console.error('oops'); process.exitCode = 3", {
        onStdoutLine: (l) => out.push(l),
        onStderrLine: (l) => err.push(l),
      }),
    );
    assert.deepEqual(out, ['one', 'two']);
    assert.deepEqual(err, ['oops']);
    assert.deepEqual(r, {
      started: true,
      exitCode: 3,
      signal: null,
      stopReason: null,
      spawnError: null,
    });
  });

  it('process runner: the child gets exactly the environment given, nothing of this process', async () => {
    process.env.NGSCI_RUNNER_TEST_SECRET = 'must-not-leak';
    try {
      let keys: string[] = [];
      const r = await runProcess(
        spec('console.log(JSON.stringify(Object.keys(process.env)))', {
          env: { PATH: process.env.PATH ?? '', ONLY_THIS: '1' },
          onStdoutLine: (l) => (keys = JSON.parse(l) as string[]),
        }),
      );
      assert.equal(r.exitCode, 0);
      assert.ok(keys.includes('ONLY_THIS'));
      assert.ok(!keys.includes('NGSCI_RUNNER_TEST_SECRET'));
    } finally {
      delete process.env.NGSCI_RUNNER_TEST_SECRET;
    }
  });

  it('process runner: a timeout stops the process with SIGINT; no SIGKILL when it exits', async () => {
    const stages: [string, StopReason][] = [];
    const started = Date.now();
    const r = await runProcess(
      spec(
        "process.on('SIGINT', () => process.exit(130)); console.log('ready'); setInterval(() => {}, 1000)",
        { timeoutMs: 400, killGraceMs: 5000, onStop: (s, why) => stages.push([s, why]) },
      ),
    );
    assert.equal(r.stopReason, 'timeout');
    assert.equal(r.exitCode, 130);
    assert.equal(r.signal, null);
    assert.deepEqual(stages, [['interrupt', 'timeout']]);
    assert.ok(Date.now() - started < 4000, 'did not wait for the kill grace period');
  });

  it('process runner: cancel sends SIGINT, then SIGKILL to the whole group when SIGINT is ignored', async () => {
    const ac = new AbortController();
    const stages: [string, StopReason][] = [];
    let grandchild = 0;
    // the child ignores SIGINT and starts a grandchild that does too (a provider plugin)
    const script = [
      "const { spawn } = require('node:child_process');",
      "process.on('SIGINT', () => {});",
      "const g = spawn(process.execPath, ['-e', \"process.on('SIGINT', () => {}); setInterval(() => {}, 1000)\"], { stdio: 'ignore' });",
      'console.log(String(g.pid));',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const run = runProcess(
      spec(script, {
        signal: ac.signal,
        killGraceMs: 300,
        onStdoutLine: (l) => {
          grandchild = Number(l);
          // the child's SIGINT handler is in place once it prints
          ac.abort();
        },
        onStop: (s, why) => stages.push([s, why]),
      }),
    );
    const r = await run;
    assert.equal(r.stopReason, 'cancelled');
    assert.equal(r.signal, 'SIGKILL');
    assert.deepEqual(stages, [
      ['interrupt', 'cancelled'],
      ['kill', 'cancelled'],
    ]);
    assert.ok(grandchild > 0);
    for (let i = 0; i < 50 && !gone(grandchild); i++) await new Promise((x) => setTimeout(x, 20));
    assert.ok(gone(grandchild), 'the grandchild was killed with its group');
  });

  it('process runner: an already aborted signal starts nothing', async () => {
    const ac = new AbortController();
    ac.abort();
    let lines = 0;
    const r = await runProcess(
      spec("console.log('ran')", { signal: ac.signal, onStdoutLine: () => lines++ }),
    );
    assert.equal(r.started, false);
    assert.equal(r.stopReason, 'cancelled');
    assert.equal(lines, 0);
  });

  it('process runner: a missing command is a spawn error, not an exception', async () => {
    const r = await runProcess(spec('', { command: '/nonexistent/ngsci-no-such-binary' }));
    assert.equal(r.spawnError?.code, 'ENOENT');
    assert.equal(r.stopReason, null);
  });
});
