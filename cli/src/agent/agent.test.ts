/**
 * The agent's readers against recorded outputs: nvidia-smi CSV, the three clouds' metadata
 * answers (served by a local HTTP server that checks the headers each cloud requires), and
 * inotifywait's NUL-separated event stream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { AccessTracker, NulPairs } from './audit.js';
import { parseNvidiaSmi, readGpus, type Runner } from './gpu.js';
import {
  checkSpot,
  parseAwsInstanceAction,
  parseAzureScheduledEvents,
  parseGcpPreempted,
} from './spot.js';

const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../testdata/${name}`, import.meta.url)), 'utf8');

describe('nvidia-smi', () => {
  test('two A100s: index, name, utilisation and memory of each', () => {
    assert.deepEqual(parseNvidiaSmi(fixture('nvidia-smi-a100x2.csv')), [
      {
        index: 0,
        name: 'NVIDIA A100-SXM4-40GB',
        utilizationPercent: 87,
        memoryUsedMiB: 30512,
        memoryTotalMiB: 40960,
      },
      {
        index: 1,
        name: 'NVIDIA A100-SXM4-40GB',
        utilizationPercent: 0,
        memoryUsedMiB: 3,
        memoryTotalMiB: 40960,
      },
    ]);
  });

  test('[N/A] fields become null, not zero', () => {
    const [t4] = parseNvidiaSmi(fixture('nvidia-smi-t4-na.csv'));
    assert.equal(t4?.utilizationPercent, null);
    assert.equal(t4?.memoryUsedMiB, 15);
  });

  test('no nvidia-smi, or no driver: no GPUs and a note, not an error', async () => {
    const missing: Runner = async () => ({ code: null, stdout: '', stderr: '', missing: true });
    assert.deepEqual((await readGpus('nvidia-smi', missing)).gpus, []);
    const noDriver: Runner = async () => ({
      code: 9,
      stdout: fixture('nvidia-smi-no-driver.txt'),
      stderr: '',
    });
    const r = await readGpus('nvidia-smi', noDriver);
    assert.deepEqual(r.gpus, []);
    assert.match(String(r.note), /couldn't communicate with the NVIDIA driver/);
    const real = await readGpus('/nonexistent/nvidia-smi');
    assert.deepEqual(real.gpus, [], 'a missing binary on this machine');
  });
});

describe('spot notices from recorded metadata answers', () => {
  test('parsers: AWS 404 is nothing, an instance-action is a notice; GCP TRUE/FALSE; Azure Preempt but not Freeze', () => {
    assert.equal(parseAwsInstanceAction(404, ''), null);
    assert.deepEqual(parseAwsInstanceAction(200, fixture('aws-instance-action.json')), {
      cloud: 'aws',
      action: 'terminate',
      at: '2026-11-20T10:02:00.000Z',
    });
    assert.deepEqual(parseGcpPreempted(200, fixture('gcp-preempted-true.txt')), {
      cloud: 'gcp',
      action: 'preempt',
      at: null,
    });
    assert.equal(parseGcpPreempted(200, fixture('gcp-preempted-false.txt')), null);
    assert.deepEqual(
      parseAzureScheduledEvents(200, fixture('azure-scheduledevents-preempt.json')),
      { cloud: 'azure', action: 'Preempt', at: '2026-11-20T10:02:30.000Z' },
    );
    assert.equal(
      parseAzureScheduledEvents(200, fixture('azure-scheduledevents-freeze.json')),
      null,
    );
    assert.equal(parseAzureScheduledEvents(200, '{"DocumentIncarnation":0,"Events":[]}'), null);
  });

  let server: Server;
  let base = '';
  const seen: string[] = [];
  let awsAction = false;
  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const h = req.headers;
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/latest/api/token' && req.method === 'PUT') {
        if (!h['x-aws-ec2-metadata-token-ttl-seconds']) return res.writeHead(400).end();
        return res.writeHead(200).end('imds-token-123');
      }
      if (req.url === '/latest/meta-data/spot/instance-action') {
        if (h['x-aws-ec2-metadata-token'] !== 'imds-token-123') return res.writeHead(401).end();
        return awsAction
          ? res.writeHead(200).end(fixture('aws-instance-action.json'))
          : res.writeHead(404).end('Not Found');
      }
      if (req.url === '/computeMetadata/v1/instance/preempted') {
        if (h['metadata-flavor'] !== 'Google') return res.writeHead(403).end();
        return res.writeHead(200).end(fixture('gcp-preempted-true.txt'));
      }
      if (req.url?.startsWith('/metadata/scheduledevents')) {
        if (h.metadata !== 'true') return res.writeHead(400).end();
        return res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(fixture('azure-scheduledevents-preempt.json'));
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('AWS: an IMDSv2 token first, then the instance action with it', async () => {
    assert.equal(await checkSpot('aws', base), null, 'no action planned: 404');
    awsAction = true;
    assert.deepEqual(await checkSpot('aws', base), {
      cloud: 'aws',
      action: 'terminate',
      at: '2026-11-20T10:02:00.000Z',
    });
    assert.deepEqual(seen.slice(0, 2), [
      'PUT /latest/api/token',
      'GET /latest/meta-data/spot/instance-action',
    ]);
  });

  test('GCP and Azure with their metadata headers', async () => {
    assert.equal((await checkSpot('gcp', base))?.action, 'preempt');
    assert.equal((await checkSpot('azure', `${base}/`))?.action, 'Preempt');
  });
});

describe('inotify events', () => {
  test('a recorded `cat` and `ls` become open, read and close of the file; the directory is ignored', () => {
    let t = 1_000;
    const tracker = new AccessTracker(() => (t += 250));
    const pairs = new NulPairs();
    const raw = fixture('inotifywait-cat-ls.bin');
    // fed in awkward pieces, as a pipe delivers it
    const rows = [];
    for (let i = 0; i < raw.length; i += 7)
      for (const [flags, path] of pairs.push(raw.slice(i, i + 7)))
        rows.push(...tracker.handle(flags, path));
    assert.deepEqual(
      rows.map((r) => `${r.op} ${r.path}`),
      ['open /tmp/ino/a.txt', 'read /tmp/ino/a.txt', 'close /tmp/ino/a.txt'],
    );
    assert.equal(rows[2]!.durationMs, 500);
  });

  test('a file opened twice at once is closed once, after the second close', () => {
    const tracker = new AccessTracker(() => 0);
    const ops = [
      ...tracker.handle('OPEN', '/d/x'),
      ...tracker.handle('OPEN', '/d/x'),
      ...tracker.handle('CLOSE_NOWRITE,CLOSE', '/d/x'),
      ...tracker.handle('CLOSE_NOWRITE,CLOSE', '/d/x'),
    ].map((e) => e.op);
    assert.deepEqual(ops, ['open', 'close']);
  });
});
