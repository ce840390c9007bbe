/**
 * A stand-in for AWS's instance metadata service (IMDSv2) on 127.0.0.1 that answers the spot
 * `instance-action` path with the recorded notice (cli/testdata/aws-instance-action.json), for
 * tests that feed a spot interruption to `ngsci agent --metadata-url`.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './stack.js';

export interface AwsMetadata {
  server: Server;
  /** what `--metadata-url` takes */
  url: string;
  close(): Promise<void>;
}

export async function recordedSpotNotice(): Promise<AwsMetadata> {
  const action = readFileSync(join(ROOT, 'cli', 'testdata', 'aws-instance-action.json'), 'utf8');
  const server = createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token')
      return res.writeHead(200).end('imds-token');
    if (
      req.url === '/latest/meta-data/spot/instance-action' &&
      req.headers['x-aws-ec2-metadata-token'] === 'imds-token'
    )
      return res.writeHead(200).end(action);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
