#!/usr/bin/env node
/** The `ngsci` executable: the real terminal, environment and network for main.ts. */
import { run } from './main.js';

const stop = new AbortController();
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // the agent stops cleanly on the first signal; everything else ends at once
    if (!interrupted && process.argv.includes('agent')) {
      interrupted = true;
      stop.abort();
      return;
    }
    process.exit(130);
  });
}

const code = await run(
  process.argv.slice(2),
  {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    tty: Boolean(process.stderr.isTTY),
    env: process.env,
    fetch,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  },
  stop.signal,
);
process.exitCode = code;
