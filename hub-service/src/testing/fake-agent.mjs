#!/usr/bin/env node
// Test double of `ngsci` for the local provisioner: `fake-agent.mjs agent` writes its pid and
// instance id to $FAKE_AGENT_OUT, then waits to be killed with its process group.
import { writeFileSync } from 'node:fs';

if (process.argv[2] !== 'agent') process.exit(2);
writeFileSync(
  process.env.FAKE_AGENT_OUT,
  JSON.stringify({ pid: process.pid, instance: process.env.NGSCI_INSTANCE_ID }),
);
setInterval(() => {}, 1000);
