/**
 * Runs one child process for the terraform executor and knows nothing of terraform: an explicit
 * environment (the service's own never leaks in), output streamed line by line, a timeout, and a
 * stop in two stages (SIGINT, which lets terraform save its state, then SIGKILL to the whole
 * process group after a grace period). It always resolves with how the process ended; the caller
 * decides what that means.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export type StopReason = 'timeout' | 'cancelled';

export interface ProcessSpec {
  command: string;
  args: string[];
  cwd: string;
  /** the child's whole environment: nothing is inherited from this process */
  env: Record<string, string>;
  /** after this long the process is stopped (reason `timeout`) */
  timeoutMs: number;
  /** how long the process may take to exit after SIGINT before it gets SIGKILL */
  killGraceMs: number;
  /** aborting stops the process (reason `cancelled`); already aborted, nothing is started */
  signal?: AbortSignal;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** told when a stop begins (`interrupt`, SIGINT sent) and when it escalates (`kill`) */
  onStop?: (stage: 'interrupt' | 'kill', reason: StopReason) => void;
}

export interface ProcessResult {
  /** false when the signal was aborted before the start: no process ran */
  started: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** set when this runner stopped the process; null when it ended on its own */
  stopReason: StopReason | null;
  /** the spawn itself failed (ENOENT for a missing binary...) */
  spawnError: NodeJS.ErrnoException | null;
}

export function runProcess(spec: ProcessSpec): Promise<ProcessResult> {
  if (spec.signal?.aborted) {
    return Promise.resolve({
      started: false,
      exitCode: null,
      signal: null,
      stopReason: 'cancelled',
      spawnError: null,
    });
  }
  return new Promise((resolve) => {
    // a process group of its own, so SIGKILL also reaches the children (terraform's provider plugins)
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stopReason: StopReason | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let spawnError: NodeJS.ErrnoException | null = null;

    const stop = (reason: StopReason): void => {
      if (stopReason || child.exitCode !== null) return;
      stopReason = reason;
      spec.onStop?.('interrupt', reason);
      try {
        child.kill('SIGINT');
      } catch {
        /* already gone */
      }
      killTimer = setTimeout(() => {
        spec.onStop?.('kill', reason);
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, spec.killGraceMs);
    };

    const timer = setTimeout(() => stop('timeout'), spec.timeoutMs);
    const onAbort = (): void => stop('cancelled');
    spec.signal?.addEventListener('abort', onAbort, { once: true });

    const onOut = spec.onStdoutLine;
    const onErr = spec.onStderrLine;
    if (onOut) createInterface({ input: child.stdout }).on('line', onOut);
    else child.stdout.resume();
    if (onErr) createInterface({ input: child.stderr }).on('line', onErr);
    else child.stderr.resume();

    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      spec.signal?.removeEventListener('abort', onAbort);
      resolve({ started: true, exitCode, signal, stopReason, spawnError });
    });
  });
}
