/**
 * CPU time per component of the stack, read from /proc (Linux): the processes the start script
 * started (the hub, the proxy, the service, local instances) and the Postgres backends serving
 * the bench's database, plus the bench client itself. The difference between two readings,
 * divided by the requests of a phase, is a cost per request that depends much less on what else
 * runs on a shared machine than requests/s does.
 */
import { readdirSync, readFileSync } from 'node:fs';

export type Component = 'service' | 'hub' | 'proxy' | 'postgres' | 'instances' | 'other';
export type CpuReading = Partial<Record<Component | 'bench client', number>>;

/** clock ticks a second of /proc/<pid>/stat (USER_HZ, 100 on every Linux this runs on) */
const TICKS = 100;

function read(pid: string): { ppid: number; ticks: number; cmd: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), cmd };
  } catch {
    return null; // ended meanwhile
  }
}

function classify(cmd: string): Component {
  if (/hub-service/.test(cmd)) return 'service';
  if (/configurable-http-proxy/.test(cmd)) return 'proxy';
  if (/jupyterhub-singleuser|jupyter-lab|ngsci[^ ]* agent|\bagent\b/.test(cmd)) return 'instances';
  if (/bin\/jupyterhub\b/.test(cmd)) return 'hub';
  return 'other';
}

/** Seconds of CPU used so far by each component of the stack under `rootPid`. */
export function cpuReading(rootPid: number, database: string | null): CpuReading {
  const procs = new Map<number, { ppid: number; ticks: number; cmd: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const p = read(d);
    if (p) procs.set(Number(d), p);
  }
  const out: CpuReading = {};
  const add = (c: Component | 'bench client', s: number) => (out[c] = (out[c] ?? 0) + s);
  for (const [pid, p] of procs) {
    if (database && p.cmd.startsWith('postgres: ') && p.cmd.includes(` ${database} `)) {
      add('postgres', p.ticks / TICKS);
      continue;
    }
    // a descendant of the start script?
    let up = pid;
    for (let hops = 0; hops < 20 && up > 1 && up !== rootPid; hops++) up = procs.get(up)?.ppid ?? 0;
    if (up === rootPid && pid !== rootPid) add(classify(p.cmd), p.ticks / TICKS);
  }
  const own = process.cpuUsage();
  add('bench client', (own.user + own.system) / 1e6);
  return out;
}

/** What each component used between two readings, in seconds. */
export function cpuUsed(before: CpuReading, after: CpuReading): CpuReading {
  const out: CpuReading = {};
  for (const k of Object.keys(after) as (keyof CpuReading)[])
    out[k] = Math.max(0, (after[k] ?? 0) - (before[k] ?? 0));
  return out;
}
