/**
 * A process that does nothing but tick (hub-service/src/loop-lateness.ts, as the service samples
 * itself), forked by bench/api beside the stack: how late its loop runs is the machine's own
 * lateness (the scheduler sharing two cores between the client, the service, Postgres, the hub),
 * which no code in the service can remove. Asked `read`, it answers the max and p99 (ms) since the
 * previous read.
 */
import { sampleLoopLateness } from '../../hub-service/src/loop-lateness.js';

const late = sampleLoopLateness();
process.on('message', (m) => {
  if (m !== 'read') return;
  process.send?.({ maxMs: late.max / 1000, p99Ms: late.percentile(99) / 1000 });
  late.reset();
});
// keeps the process alive (the sampler's timer is unref'd); ends with its parent
process.channel?.ref();
process.on('disconnect', () => process.exit(0));
