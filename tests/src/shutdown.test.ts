/**
 * Ctrl-C of `npm start` leaves no process behind, and a second start on the same data reuses it:
 * the instance that ran before is recorded as stopped, so its billing is closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, until } from './stack.js';

/** Every process whose environment names this data dir, or whose cwd is inside it. */
function processesOf(dataDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (environ.includes(`NGSCI_DATA_DIR=${dataDir}\0`) || cwd.startsWith(dataDir))
        found.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

test('Ctrl-C stops the hub, the proxy, the service and every instance; a restart reuses the data', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ngsci-shutdown-'));
  const first = await startStack({ database: 'pglite', dataDir });
  const token = await first.userToken('researcher');
  await first.api('/instances', token, {
    method: 'POST',
    body: JSON.stringify({ size: 'cpu-small' }),
  });
  const running = await until(
    async () => {
      const i = (await (await first.api('/instances/default', token)).json()) as {
        id: string;
        state: string;
      };
      return i.state === 'running' ? i : null;
    },
    'the instance to run',
    90,
    first,
  );
  const pid = first.pidOf(running.id);
  assert.ok(pid);
  const before = processesOf(dataDir);
  assert.ok(
    before.length >= 4,
    `hub, proxy, service and instance are running (found ${before.length})`,
  );
  assert.ok(before.includes(pid!));

  process.kill(first.pid, 'SIGINT');
  await until(async () => processesOf(dataDir).length === 0, 'every process to be gone', 40);

  const t0 = Date.now();
  const second = await startStack({ database: 'pglite', dataDir });
  const secondStartMs = Date.now() - t0;
  try {
    const token2 = await second.userToken('researcher');
    const again = (await (await second.api('/instances/default', token2)).json()) as {
      id: string;
      state: string;
      stoppedAt: string | null;
    };
    assert.equal(again.id, running.id, 'the same database');
    assert.equal(again.state, 'stopped');
    assert.ok(again.stoppedAt, 'its billing was closed at shutdown');
    console.log(`# second start, setup skipped, to ready: ${secondStartMs} ms`);
  } finally {
    await second.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
