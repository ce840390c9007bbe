/**
 * Ports for the stacks that tests start, reserved so that nothing else can take them between the
 * moment we pick them and the moment JupyterHub, the proxy and the service bind them.
 *
 * Picking a port with listen(0) and closing it again is a race: the kernel hands the same
 * ephemeral port to the next listen(0) or outgoing connection of anyone on the machine (the fake
 * single-user servers, PGlite, Chromium, another person's stack), and the proxy then finds its API
 * port answered by a stranger. So ports come from below the kernel's ephemeral range (which
 * listen(0) never uses), and each one is claimed with a lock file that every test process on this
 * machine honours; a lock whose process has died is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Below Linux's default ephemeral range (32768-60999) and above the usual fixed service ports. */
export const PORT_RANGE = { first: 20000, last: 32000 } as const;

/** Where the claims live: shared by every test process of this machine. */
export const LOCK_DIR = join(tmpdir(), 'ngsci-test-ports');

export interface PortReservation {
  ports: number[];
  /** gives the ports back (idempotent); also done when this process exits */
  release(): void;
}

const held = new Set<number>();
process.once('exit', () => {
  for (const port of held) rmSync(lockFile(port), { force: true });
});

const lockFile = (port: number) => join(LOCK_DIR, String(port));

/**
 * Takes `count` distinct ports that no live test process holds and nothing listens on, looking
 * upwards from `start` (default: a place that differs per process, so that concurrent stacks
 * rarely meet at a lock).
 */
export async function reservePorts(
  count: number,
  start = PORT_RANGE.first +
    ((process.pid * 7919 + Date.now()) % (PORT_RANGE.last - PORT_RANGE.first)),
): Promise<PortReservation> {
  mkdirSync(LOCK_DIR, { recursive: true });
  const span = PORT_RANGE.last - PORT_RANGE.first + 1;
  let next = start - PORT_RANGE.first;
  const ports: number[] = [];
  for (let tried = 0; ports.length < count; tried++) {
    if (tried >= span) {
      release(ports);
      throw new Error(`no free port left in ${PORT_RANGE.first}-${PORT_RANGE.last}`);
    }
    const port = PORT_RANGE.first + (next++ % span);
    if (!claim(port)) continue;
    if (await canListen(port)) ports.push(port);
    else release([port]);
  }
  return { ports, release: () => release(ports) };
}

function claim(port: number): boolean {
  if (held.has(port)) return false;
  try {
    writeFileSync(lockFile(port), String(process.pid), { flag: 'wx' });
  } catch {
    if (!isStale(port)) return false;
    rmSync(lockFile(port), { force: true });
    try {
      writeFileSync(lockFile(port), String(process.pid), { flag: 'wx' });
    } catch {
      return false; // another process took the stale claim first
    }
  }
  held.add(port);
  return true;
}

/** A claim left by a process that no longer runs (a killed test runner). */
function isStale(port: number): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(lockFile(port), 'utf8'));
  } catch {
    return false; // being written or just released: not ours to judge
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function release(ports: number[]): void {
  for (const port of ports) {
    if (held.delete(port)) rmSync(lockFile(port), { force: true });
  }
}

/** Whether something (outside the lock files' knowledge) already listens on the port. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}
