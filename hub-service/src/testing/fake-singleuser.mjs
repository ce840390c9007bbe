#!/usr/bin/env node
// Test double of jupyterhub-singleuser for the local provisioner's unit tests: listens where
// JUPYTERHUB_SERVICE_URL says and answers <base>api. FAKE_EXIT_AFTER_MS makes it exit with
// FAKE_EXIT_CODE; FAKE_NEVER_READY makes it listen but answer 503.
import { createServer } from 'node:http';

const url = new URL(process.env.JUPYTERHUB_SERVICE_URL);
const server = createServer((req, res) => {
  if (req.url === `${url.pathname}api` && !process.env.FAKE_NEVER_READY) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ version: 'fake', mem: process.env.MEM_LIMIT, cpu: process.env.CPU_LIMIT }),
    );
  } else {
    res.writeHead(503);
    res.end();
  }
});
server.listen(Number(url.port), url.hostname);
if (process.env.FAKE_EXIT_AFTER_MS) {
  setTimeout(
    () => process.exit(Number(process.env.FAKE_EXIT_CODE ?? 1)),
    Number(process.env.FAKE_EXIT_AFTER_MS),
  );
}
process.on('SIGTERM', () => process.exit(0));
