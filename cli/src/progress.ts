/**
 * Waiting for a launch or a resize: follows the server's lifecycle events (Server-Sent Events
 * from `GET /instances/{server}/events`) and draws a progress bar on stderr until the instance
 * runs or fails.
 */
import type { Instance, InstanceEvent } from '@ngsci/contract';
import { sseMessages } from '@ngsci/contract/client';
import type { ApiClient } from './client.js';
import { CliError, EXIT } from './errors.js';
import type { Io } from './output.js';

export function bar(progress: number, width = 24): string {
  const p = Math.max(0, Math.min(100, Math.round(progress)));
  const filled = Math.round((p / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(p).padStart(3)}%`;
}

/** Error codes of a start that a limit refused rather than a machine that failed. */
const REFUSALS = new Set(['budget_exhausted', 'quota_exceeded']);

export interface WaitOptions {
  server: string;
  user?: string;
  /** the instance to watch; for a resize, the old one (we wait for the next one) */
  instanceId: string;
  mode: 'launch' | 'resize';
  quiet: boolean;
  timeoutSeconds: number;
}

/** Resolves with the instance once it runs; throws (exit 4) when it fails or the wait times out. */
export async function waitForInstance(api: ApiClient, io: Io, o: WaitOptions): Promise<Instance> {
  const q = o.user ? `?user=${encodeURIComponent(o.user)}` : '';
  const path = `/instances/${o.server}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), o.timeoutSeconds * 1000);
  let lastWidth = 0;
  const draw = (e: InstanceEvent) => {
    if (o.quiet) return;
    const text = `${bar(e.progress)} ${e.state}: ${e.message}`.slice(0, 120);
    if (io.tty) {
      io.err(`\r${text.padEnd(lastWidth)}`);
      lastWidth = text.length;
    } else {
      io.err(`${text}\n`);
    }
  };
  const finish = () => {
    if (!o.quiet && io.tty && lastWidth) io.err('\n');
    lastWidth = 0;
  };
  // a failure is said once, by the error line the caller prints: the bar line is wiped (a
  // terminal) or not drawn (a log), so the error with its code stands at the start of its line
  const wipe = () => {
    if (!o.quiet && io.tty && lastWidth) io.err(`\r${' '.repeat(lastWidth)}\r`);
    lastWidth = 0;
  };
  let settled = false;
  let timedOut = false;
  const timer2 = setTimeout(() => (timedOut = true), o.timeoutSeconds * 1000);
  try {
    const res = await api.raw('GET', `${path}/events${q}`, undefined, {
      headers: { accept: 'text/event-stream' },
      signal: abort.signal,
    });
    if (!res.body) throw new CliError(EXIT.failed, 'no_events', 'the service sent no event stream');
    let target = o.mode === 'launch' ? o.instanceId : null;
    for await (const msg of sseMessages(res.body)) {
      if (msg.event !== 'instance') continue;
      const e = JSON.parse(msg.data) as InstanceEvent;
      if (o.mode === 'resize' && e.instanceId !== o.instanceId) target = e.instanceId;
      if (o.mode === 'resize' && e.instanceId === o.instanceId && e.state === 'failed')
        target = o.instanceId;
      const mine =
        e.instanceId === target || (o.mode === 'resize' && e.instanceId === o.instanceId);
      if (!mine) continue;
      if (e.state === 'failed' && e.instanceId === target) wipe();
      else draw(e);
      if (e.instanceId !== target) continue;
      if (e.state === 'running' || e.state === 'failed' || e.state === 'stopped') {
        settled = true;
        break;
      }
    }
    if (settled) {
      finish();
      const inst = await api.get<Instance>(`${path}${q}`);
      if (inst.state !== 'running') {
        wipe();
        throw new CliError(
          // a limit that stopped the start is the service refusing, as when it refuses the launch
          REFUSALS.has(inst.errorCode ?? '') ? EXIT.service : EXIT.failed,
          inst.errorCode ?? 'instance_failed',
          `the instance ${inst.state}${inst.errorMessage ? `: ${inst.errorMessage}` : ''}`,
        );
      }
      return inst;
    }
    throw new CliError(
      EXIT.failed,
      'events_ended',
      'the event stream ended before the instance was running',
    );
  } catch (err) {
    finish();
    if (timedOut && !(err instanceof CliError)) {
      throw new CliError(
        EXIT.failed,
        'wait_timeout',
        `the instance was not running after ${o.timeoutSeconds} s; it may still start: ngsci status`,
      );
    }
    throw err;
  } finally {
    clearTimeout(timer);
    clearTimeout(timer2);
    abort.abort();
  }
}
