/**
 * `ngsci agent` beside a real local instance, with the instance's own environment (its token):
 * files that a real process reads under the watched dataset folder appear in the admin audit list
 * (JSON and CSV) with the right user, server, instance and path; recorded nvidia-smi output reaches
 * the GPU endpoint; a recorded AWS spot notice becomes the user's notification.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startStack, until, type Stack } from './stack.js';

interface AuditEvent {
  user: string;
  server: string;
  instanceId: string | null;
  path: string;
  op: string;
  durationMs: number | null;
}

describe('the instance agent against the real service', () => {
  let stack: Stack;
  let token: string;
  let adminToken: string;
  let metadata: Server;
  let agent: ChildProcess | null = null;
  let agentLog = '';
  let instanceId = '';
  let serverToken = '';
  const dataset = mkdtempSync(join(tmpdir(), 'ngsci-dataset-'));
  const tools = mkdtempSync(join(tmpdir(), 'ngsci-tools-'));

  before(async () => {
    mkdirSync(join(dataset, 'images'));
    writeFileSync(join(dataset, 'cohort.csv'), 'id,age\n1,54\n2,61\n');
    writeFileSync(join(dataset, 'images', 'scan-001.bin'), Buffer.alloc(64 * 1024, 7));
    // a stand-in nvidia-smi that prints a recorded answer of a two-A100 machine
    const smi = join(tools, 'nvidia-smi');
    writeFileSync(
      smi,
      `#!/bin/sh\ncat '${join(ROOT, 'cli', 'testdata', 'nvidia-smi-a100x2.csv')}'\n`,
    );
    chmodSync(smi, 0o755);
    // an AWS metadata endpoint with a recorded spot interruption notice (IMDSv2)
    const action = readFileSync(join(ROOT, 'cli', 'testdata', 'aws-instance-action.json'), 'utf8');
    metadata = createServer((req, res) => {
      if (req.method === 'PUT' && req.url === '/latest/api/token')
        return res.writeHead(200).end('imds-token');
      if (
        req.url === '/latest/meta-data/spot/instance-action' &&
        req.headers['x-aws-ec2-metadata-token'] === 'imds-token'
      )
        return res.writeHead(200).end(action);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => metadata.listen(0, '127.0.0.1', r));

    stack = await startStack({ database: 'postgres' });
    token = await stack.userToken('researcher');
    adminToken = await stack.userToken('admin');
    const res = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small' }),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const running = await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as {
          id: string;
          state: string;
        };
        return i.state === 'running' ? i : null;
      },
      'the instance to run',
      120,
      stack,
    );
    instanceId = running.id;

    const pid = stack.pidOf(instanceId);
    assert.ok(pid);
    const serverEnv = Object.fromEntries(
      readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    serverToken = serverEnv.JUPYTERHUB_API_TOKEN ?? '';
    assert.ok(serverToken, 'the server has its token');
    const metadataUrl = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`;
    agent = spawn(
      join(ROOT, '.venv', 'bin', 'ngsci'),
      [
        'agent',
        '--dataset',
        dataset,
        '--cloud',
        'aws',
        '--metadata-url',
        metadataUrl,
        '--nvidia-smi',
        smi,
        '--flush-interval',
        '1s',
        '--spot-interval',
        '1s',
        '--gpu-interval',
        '5s',
      ],
      { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
    await until(
      async () => agentLog.includes('watching'),
      `the agent to watch the dataset (log: ${agentLog})`,
      30,
    );
  });

  after(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGKILL');
    }
    await stack?.stop();
    await new Promise((r) => metadata.close(r));
  });

  test('files read by a real process show up in the admin audit list and its CSV export', async () => {
    const cat = spawnSync(
      'cat',
      [join(dataset, 'cohort.csv'), join(dataset, 'images', 'scan-001.bin')],
      { encoding: 'buffer' },
    );
    assert.equal(cat.status, 0);

    const cohort = join(dataset, 'cohort.csv');
    const events = await until(
      async () => {
        const list = (await (
          await stack.api('/admin/audit?user=researcher', adminToken)
        ).json()) as { events: AuditEvent[] };
        const closes = list.events.filter((e) => e.op === 'close');
        return closes.some((e) => e.path === cohort) &&
          closes.some((e) => e.path.endsWith('scan-001.bin'))
          ? list.events
          : null;
      },
      `the reads in the audit list (agent log: ${agentLog})`,
      30,
      stack,
    );
    const forCohort = events.filter((e) => e.path === cohort);
    assert.deepEqual(
      forCohort.map((e) => e.op),
      ['open', 'read', 'close'],
    );
    for (const e of forCohort) {
      assert.equal(e.user, 'researcher');
      assert.equal(e.server, 'default');
      assert.equal(e.instanceId, instanceId);
    }
    assert.equal(typeof forCohort[2]!.durationMs, 'number');
    assert.ok(
      !events.some((e) => e.path === dataset || e.path === `${dataset}/`),
      'listing a folder is not a data access',
    );

    const csv = await (
      await stack.api(`/admin/audit?format=csv&path=${encodeURIComponent(dataset)}`, adminToken)
    ).text();
    assert.ok(
      csv
        .split('\r\n')
        .some((l) => l.includes(`,researcher,default,${instanceId},${cohort},close,`)),
      csv,
    );

    const denied = await stack.api('/admin/audit', token);
    assert.equal(denied.status, 403, 'researchers cannot read the audit');
  });

  test('the recorded nvidia-smi answer reaches the GPU endpoint of the server', async () => {
    const gpu = await until(
      async () => {
        const g = (await (await stack.api('/instances/default/gpu', token)).json()) as {
          instanceId: string;
          gpus: Array<{ name: string; utilizationPercent: number }>;
        };
        return g.gpus.length ? g : null;
      },
      'a GPU report',
      30,
      stack,
    );
    assert.equal(gpu.instanceId, instanceId);
    assert.deepEqual(
      gpu.gpus.map((g) => [g.name, g.utilizationPercent]),
      [
        ['NVIDIA A100-SXM4-40GB', 87],
        ['NVIDIA A100-SXM4-40GB', 0],
      ],
    );
  });

  test('a recorded AWS spot notice becomes one warning notification; the agent stops cleanly', async () => {
    const notices = await until(
      async () => {
        const list = (await (await stack.api('/notifications', token)).json()) as {
          notifications: Array<{
            kind: string;
            level: string;
            title: string;
            body: string;
            instanceId: string;
          }>;
        };
        const spot = list.notifications.filter((n) => n.kind === 'spot');
        return spot.length ? spot : null;
      },
      'the spot notice',
      30,
      stack,
    );
    // the agent keeps polling every second; the notice is still sent once
    await new Promise((r) => setTimeout(r, 2500));
    const again = (await (await stack.api('/notifications', token)).json()) as {
      notifications: Array<{ kind: string }>;
    };
    assert.equal(again.notifications.filter((n) => n.kind === 'spot').length, 1);
    assert.equal(notices[0]!.level, 'warning');
    assert.match(notices[0]!.title, /AWS is reclaiming your machine/);
    assert.equal(notices[0]!.instanceId, instanceId);

    agent!.kill('SIGTERM');
    const code = await new Promise((r) => agent!.once('exit', r));
    assert.equal(code, 0);
    assert.match(agentLog, /stopped/);
    assert.ok(!agentLog.includes(serverToken), 'the agent never logs its token');
  });
});
