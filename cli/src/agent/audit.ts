/**
 * The data-access watch: `inotifywait` (Debian's inotify-tools) reports opens, reads and closes
 * under the dataset mount; this turns them into audit events (one open, at most one read, one
 * close with the duration, per open of a file) and hands them over in batches. inotify does not
 * count bytes: the close of a file that was read carries the file's size then, an upper bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import type { AuditEventInput } from '@ngsci/contract';

export const INOTIFY_ARGS = (path: string) => [
  '-m',
  '-r',
  '-e',
  'open,access,close_nowrite',
  '--no-newline',
  '--format',
  '%e%0%w%f%0',
  path,
];

interface OpenFile {
  openedAt: number;
  opens: number;
  readReported: boolean;
}

/** Turns inotify event lines (flags, path) into audit events; pure, so tests feed it recorded lines. */
export class AccessTracker {
  private readonly open = new Map<string, OpenFile>();

  constructor(
    private readonly now: () => number = Date.now,
    /** the file's size in bytes, or null when it cannot be read (gone, no permission) */
    private readonly size: (path: string) => number | null = () => null,
  ) {}

  handle(flags: string, path: string): AuditEventInput[] {
    const f = new Set(flags.split(','));
    if (f.has('ISDIR')) return [];
    const t = this.now();
    const at = new Date(t).toISOString();
    const out: AuditEventInput[] = [];
    if (f.has('OPEN')) {
      const cur = this.open.get(path);
      if (cur) cur.opens += 1;
      else this.open.set(path, { openedAt: t, opens: 1, readReported: false });
      if (!cur) out.push({ path, op: 'open', at });
    }
    if (f.has('ACCESS')) {
      const cur = this.open.get(path);
      if (!cur) {
        // opened before the watch began
        this.open.set(path, { openedAt: t, opens: 1, readReported: true });
        out.push({ path, op: 'read', at });
      } else if (!cur.readReported) {
        cur.readReported = true;
        out.push({ path, op: 'read', at });
      }
    }
    if (f.has('CLOSE_NOWRITE')) {
      const cur = this.open.get(path);
      if (cur && cur.opens > 1) {
        cur.opens -= 1;
      } else {
        this.open.delete(path);
        // a file that was read: its size now is the most it can have given (inotify has no count)
        const bytes = cur?.readReported ? this.size(path) : null;
        out.push({
          path,
          op: 'close',
          at,
          ...(cur ? { durationMs: Math.max(0, t - cur.openedAt) } : {}),
          ...(bytes !== null ? { bytes } : {}),
        });
      }
    }
    return out;
  }
}

/** Splits inotifywait's NUL-separated `flags\0path\0` output, across chunk boundaries. */
export class NulPairs {
  private buf = '';

  push(chunk: string): Array<[string, string]> {
    this.buf += chunk;
    const parts = this.buf.split('\0');
    this.buf = parts.pop() ?? '';
    const pairs: Array<[string, string]> = [];
    // an odd count leaves the flags of an incomplete pair in front of the buffer
    if (parts.length % 2 === 1) this.buf = `${parts.pop()}\0${this.buf}`;
    for (let i = 0; i + 1 < parts.length; i += 2) pairs.push([parts[i]!, parts[i + 1]!]);
    return pairs;
  }
}

/** The size of a regular file, or null. */
export function fileSize(path: string): number | null {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

export interface Watch {
  ready: Promise<void>;
  stop(): void;
  process: ChildProcess;
}

/** Runs inotifywait on `path` and calls `onEvents` with each event's audit rows. */
export function watchDataset(
  path: string,
  onEvents: (events: AuditEventInput[]) => void,
  opts: { command?: string; onError?: (msg: string) => void } = {},
): Watch {
  const tracker = new AccessTracker(Date.now, fileSize);
  const pairs = new NulPairs();
  const child = spawn(opts.command ?? 'inotifywait', INOTIFY_ARGS(path), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    for (const [flags, file] of pairs.push(chunk)) {
      const events = tracker.handle(flags, file);
      if (events.length) onEvents(events);
    }
  });
  let stderr = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      stderr += d;
      if (/Watches established/.test(stderr)) resolve();
    });
    child.once('error', (err) => {
      const msg =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${opts.command ?? 'inotifywait'} not found: install inotify-tools`
          : err.message;
      opts.onError?.(msg);
      reject(new Error(msg));
    });
    child.once('exit', (code) => {
      if (code !== null && code !== 0) {
        const msg = `inotifywait exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`;
        opts.onError?.(msg);
        reject(new Error(msg));
      }
    });
  });
  ready.catch(() => {});
  return { ready, process: child, stop: () => child.kill('SIGTERM') };
}
