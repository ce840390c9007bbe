/**
 * A stand-in for the clouds' instance metadata endpoints on 127.0.0.1, answering each cloud's spot
 * path with its recorded notice (cli/testdata): AWS IMDSv2 `spot/instance-action`, GCP
 * `instance/preempted` ("TRUE", with `Metadata-Flavor: Google`), Azure `scheduledevents` (a
 * Preempt event, with `Metadata: true`); for tests that feed a spot interruption to
 * `ngsci agent --cloud <cloud> --metadata-url`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { agentPidOf, environOf, ROOT, until } from './stack.js';

export type SpotCloud = 'aws' | 'gcp' | 'azure';

export interface SpotMetadata {
  server: Server;
  /** what `--metadata-url` takes */
  url: string;
  close(): Promise<void>;
}

export async function recordedSpotNotice(): Promise<SpotMetadata> {
  const recorded = (name: string) => readFileSync(join(ROOT, 'cli', 'testdata', name), 'utf8');
  const aws = recorded('aws-instance-action.json');
  const gcp = recorded('gcp-preempted-true.txt');
  const azure = recorded('azure-scheduledevents-preempt.json');
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'PUT' && path === '/latest/api/token')
      return res.writeHead(200).end('imds-token');
    if (
      path === '/latest/meta-data/spot/instance-action' &&
      req.headers['x-aws-ec2-metadata-token'] === 'imds-token'
    )
      return res.writeHead(200).end(aws);
    if (
      path === '/computeMetadata/v1/instance/preempted' &&
      req.headers['metadata-flavor'] === 'Google'
    )
      return res.writeHead(200).end(gcp);
    if (path === '/metadata/scheduledevents' && req.headers.metadata === 'true')
      return res.writeHead(200, { 'content-type': 'application/json' }).end(azure);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * Runs the instance's agent check once with the instance's own credential and environment (as the
 * running agent has them; on a local instance the agent shares the researcher's uid, so they are
 * readable from /proc: docs/security.md) against the stand-in: the agent reports the spot notice to the service.
 * Resolves with the agent's log; fails the test if the agent failed or saw no notice.
 */
export async function feedSpotNotice(
  instanceId: string,
  metadataUrl: string,
  cloud: SpotCloud = 'aws',
): Promise<string> {
  const agentPid = await until(async () => agentPidOf(instanceId), 'the agent process', 20);
  const env = environOf(agentPid);
  delete env.NGSCI_DATASET_PATH;
  const agent = spawn(
    join(ROOT, '.venv', 'bin', 'ngsci'),
    ['agent', '--once', '--cloud', cloud, '--metadata-url', metadataUrl],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const code = await new Promise<number | null>((r) => agent.on('exit', r));
  assert.equal(code, 0, log);
  assert.match(log, new RegExp(`spot notice: ${cloud} will `));
  return log;
}
