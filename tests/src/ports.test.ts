/**
 * The port reservation behind every test stack: ports never come from the kernel's ephemeral
 * range, a port another live test process claimed or something listens on is skipped, and a
 * claim left by a dead process is taken over.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { LOCK_DIR, PORT_RANGE, reservePorts } from './ports.js';

const EPHEMERAL_FIRST = Number(
  readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
);

/** A run of ports that nobody claims right now, high in the range where stacks rarely look. */
async function quietRun(length: number): Promise<number> {
  for (let p = PORT_RANGE.last - length; p > PORT_RANGE.first; p -= length) {
    const run = Array.from({ length }, (_, i) => p + i);
    if (run.every((q) => !existsSync(join(LOCK_DIR, String(q))))) return p;
  }
  throw new Error('no quiet run of ports');
}

const listen = (port: number) =>
  new Promise<Server>((resolve) => {
    const s = createServer();
    s.listen(port, '127.0.0.1', () => resolve(s));
  });

test('ports come from below the ephemeral range, distinct even when reserved at once', async () => {
  const [a, b] = await Promise.all([reservePorts(4), reservePorts(4)]);
  const all = [...a.ports, ...b.ports];
  assert.equal(new Set(all).size, 8);
  for (const p of all) assert.ok(p < EPHEMERAL_FIRST, `${p} is in the ephemeral range`);
  a.release();
  b.release();
});

test("another live process's claim is skipped; a dead process's claim is taken over", async () => {
  const start = await quietRun(3);
  // the runner that started us is alive; a finished child is not
  writeFileSync(join(LOCK_DIR, String(start)), String(process.ppid));
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], {
    encoding: 'utf8',
  });
  writeFileSync(join(LOCK_DIR, String(start + 1)), dead.stdout.trim());
  const r = await reservePorts(1, start);
  try {
    assert.deepEqual(r.ports, [start + 1]);
    assert.equal(readFileSync(join(LOCK_DIR, String(start + 1)), 'utf8'), String(process.pid));
  } finally {
    r.release();
    rmSync(join(LOCK_DIR, String(start)), { force: true });
  }
  assert.equal(existsSync(join(LOCK_DIR, String(start + 1))), false, 'released');
});

test('a port something already listens on is skipped', async () => {
  const start = await quietRun(2);
  const stranger = await listen(start);
  const r = await reservePorts(1, start);
  try {
    assert.deepEqual(r.ports, [start + 1]);
  } finally {
    r.release();
    stranger.close();
  }
});
