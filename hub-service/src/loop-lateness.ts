/**
 * How late a process's event loop runs: a timer due every `tickMs` records, at each tick, how
 * much later than due it ran (µs, at least 1). Every request the process serves waits behind the
 * same loop, so this is the stall a client sees added. (Node's monitorEventLoopDelay did not see
 * a 60-ms block on Node 20 here, so the timer is ours.) The service samples itself with it
 * (`/metrics`); bench/api runs it alone in a process that does nothing else, whose lateness is
 * then the machine's own: the scheduler's, not the service's.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** how often the loop's lateness is sampled (ms): a stall shorter than this may go unseen */
export const LOOP_TICK_MS = 10;

export function sampleLoopLateness(tickMs = LOOP_TICK_MS): RecordableHistogram {
  const late = createHistogram();
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    late.record(Math.max(1, Math.round((now - last - tickMs) * 1000)));
    last = now;
  }, tickMs).unref();
  return late;
}
