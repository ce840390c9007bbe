/**
 * The data-access audit end to end, on a real hub with a real local instance whose agent the
 * service started with its own credential (NGSCI_LOCAL_DATASET_PATH is the watched dataset):
 * - a researcher downloads dataset files through the hub's proxy (`/user/researcher/files/…` and
 *   the contents API, with the researcher's token); the reads are in the admin audit with the
 *   right user, server, instance and path, a duration, and the file size as bytes;
 * - the hash chains verify as intact; a user token and the server's own token cannot post to
 *   `/agent/audit`;
 * - the audit stream lands in the NGSCI_AUDIT_SINK file as ECS JSON lines;
 * - recorded nvidia-smi output and a recorded AWS spot notice reach the service through an agent
 *   holding the instance's credential;
 * - a read of a honeypot file raises a critical security event at once (admins get a notice)
 *   and, with stopServer, the server stops.
 *
 * The dataset folder is `~/dataset`, inside the server's root (the researcher's home), where a
 * deployment mounts it so `/files/` and the contents API can serve it. A symlink from the home to
 * a folder outside it would not do: jupyter-server (tornado >= 6.5.9) refuses to serve a link
 * whose target leaves the root (403), so files outside the root are not downloadable that way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentPidOf, environOf, ROOT, startStack, until, type Stack } from './stack.js';
import { recordedSpotNotice, type SpotMetadata } from './spot-metadata.js';

interface AuditEvent {
  id: number;
  user: string;
  server: string;
  instanceId: string | null;
  path: string;
  op: string;
  bytes: number | null;
  durationMs: number | null;
  hash: string | null;
}

interface SecurityEvent {
  kind: string;
  severity: string;
  user: string | null;
  server: string | null;
  instanceId: string | null;
  path: string | null;
  message: string;
}

const COHORT = 'id,age\n1,54\n2,61\n';

describe('the data-access audit against the real service', () => {
  let stack: Stack;
  let token: string;
  let adminToken: string;
  let instanceId = '';
  let metadata: SpotMetadata;
  let extraAgent: ChildProcess | null = null;
  let extraLog = '';
  const work = mkdtempSync(join(tmpdir(), 'ngsci-audit-it-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'ngsci-it-'));
  const dataset = join(dataDir, 'homes', 'researcher', 'dataset');
  const sink = join(work, 'audit.jsonl');
  const canary = join(dataset, 'zz-canary.csv');

  const audit = async (q: string) =>
    (
      (await (await stack.api(`/admin/audit?${q}`, adminToken)).json()) as {
        events: AuditEvent[];
      }
    ).events;
  const securityEvents = async (kind: string) =>
    (
      (await (await stack.api(`/admin/security-events?kind=${kind}`, adminToken)).json()) as {
        events: SecurityEvent[];
      }
    ).events;
  /** a file of the dataset through the hub's proxy, as the researcher's browser gets it */
  const download = (rel: string) =>
    fetch(`${stack.url}/user/researcher/files/dataset/${rel}`, {
      headers: { authorization: `token ${token}` },
    });

  before(async () => {
    mkdirSync(join(dataset, 'images'), { recursive: true });
    writeFileSync(join(dataset, 'cohort.csv'), COHORT);
    writeFileSync(join(dataset, 'images', 'scan-001.bin'), Buffer.alloc(64 * 1024, 7));
    writeFileSync(canary, 'id,name\n0,nobody\n');

    stack = await startStack({
      database: 'postgres',
      dataDir,
      env: { NGSCI_LOCAL_DATASET_PATH: dataset, NGSCI_AUDIT_SINK: `file:${sink}` },
    });
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
  });

  after(async () => {
    if (extraAgent && extraAgent.exitCode === null) extraAgent.kill('SIGKILL');
    await stack?.stop();
    if (metadata) await metadata.close();
  });

  test('a dataset file downloaded through the proxy is in the audit with the right user and path', async () => {
    const cohort = join(dataset, 'cohort.csv');
    // the agent's inotify watch comes up shortly after the server: download until it is seen
    const events = await until(
      async () => {
        const res = await download('cohort.csv');
        assert.equal(res.status, 200, `download: ${res.status}`);
        assert.equal(await res.text(), COHORT);
        await new Promise((r) => setTimeout(r, 1500));
        const list = await audit(`user=researcher&path=${encodeURIComponent(cohort)}`);
        return list.some((e) => e.op === 'close') ? list : null;
      },
      'the download in the audit',
      90,
      stack,
    );
    const ops = [...new Set(events.map((e) => e.op))];
    assert.deepEqual(ops.sort(), ['close', 'open', 'read']);
    for (const e of events) {
      assert.equal(e.user, 'researcher');
      assert.equal(e.server, 'default');
      assert.equal(e.instanceId, instanceId);
      assert.equal(e.path, cohort);
      assert.match(String(e.hash), /^[0-9a-f]{64}$/);
    }
    const close = events.find((e) => e.op === 'close')!;
    assert.equal(typeof close.durationMs, 'number');
    assert.equal(close.bytes, COHORT.length, 'the size of the file read, as bytes');

    // the contents API is a read too
    const scan = join(dataset, 'images', 'scan-001.bin');
    const viaContents = await fetch(
      `${stack.url}/user/researcher/api/contents/dataset/images/scan-001.bin?content=1&format=base64`,
      { headers: { authorization: `token ${token}` } },
    );
    assert.equal(viaContents.status, 200);
    const scanEvents = await until(
      async () => {
        const list = await audit(`user=researcher&path=${encodeURIComponent(scan)}`);
        return list.some((e) => e.op === 'close') ? list : null;
      },
      'the contents API read in the audit',
      30,
      stack,
    );
    assert.equal(scanEvents.find((e) => e.op === 'close')!.bytes, 64 * 1024);

    assert.equal(
      (await stack.api('/admin/audit', token)).status,
      403,
      'researchers cannot read it',
    );
  });

  test('the chains verify as intact; user and server tokens cannot post audit events', async () => {
    const v = (await (await stack.api('/admin/audit/verify', adminToken)).json()) as {
      intact: boolean;
      events: number;
      breaks: unknown[];
    };
    assert.equal(v.intact, true, JSON.stringify(v.breaks));
    assert.ok(v.events >= 6);

    const forged = { events: [{ path: '/etc/passwd', op: 'read', at: new Date().toISOString() }] };
    const asUser = await stack.api('/agent/audit', token, {
      method: 'POST',
      body: JSON.stringify(forged),
    });
    assert.equal(asUser.status, 403);
    const serverToken = environOf(stack.pidOf(instanceId)!).JUPYTERHUB_API_TOKEN;
    assert.ok(serverToken, 'the server has its token');
    const asServer = await stack.api('/agent/audit', serverToken, {
      method: 'POST',
      body: JSON.stringify(forged),
    });
    assert.equal(asServer.status, 403);
    const old = await stack.api('/audit/events', token, {
      method: 'POST',
      body: JSON.stringify(forged),
    });
    assert.equal(old.status, 404, 'the user-token route is gone');
    assert.equal((await audit('path=/etc/passwd')).length, 0);
  });

  test('the audit stream is in the sink file as ECS JSON lines', async () => {
    const cohort = join(dataset, 'cohort.csv');
    const line = await until(
      async () => {
        let text = '';
        try {
          text = readFileSync(sink, 'utf8');
        } catch {
          return null;
        }
        return text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>)
          .find((l) => l.file?.path === cohort && l.event?.action === 'file-close');
      },
      'the read in the sink',
      20,
    );
    assert.equal(line.user!.name, 'researcher');
    assert.equal(line.host!.id, instanceId);
    assert.equal(line.labels!.server, 'default');
    assert.equal(typeof line.event!.duration, 'number');
    assert.match(String(line.ngsci!.hash), /^[0-9a-f]{64}$/);
  });

  test('recorded nvidia-smi output and a recorded AWS spot notice arrive with the agent credential', async () => {
    const tools = join(work, 'tools');
    mkdirSync(tools);
    const smi = join(tools, 'nvidia-smi');
    writeFileSync(
      smi,
      `#!/bin/sh\ncat '${join(ROOT, 'cli', 'testdata', 'nvidia-smi-a100x2.csv')}'\n`,
    );
    chmodSync(smi, 0o755);
    metadata = await recordedSpotNotice();
    // on a local instance the agent shares the researcher's uid, so its credential is readable
    // from /proc (docs/security.md says so); this test uses that to run a second agent with
    // recorded tools: on VMs the credential is in a root-only file
    const agentPid = await until(async () => agentPidOf(instanceId), 'the agent process', 20);
    const env = environOf(agentPid);
    delete env.NGSCI_DATASET_PATH;
    extraAgent = spawn(
      join(ROOT, '.venv', 'bin', 'ngsci'),
      [
        'agent',
        '--cloud',
        'aws',
        '--metadata-url',
        metadata.url,
        '--nvidia-smi',
        smi,
        '--spot-interval',
        '1s',
        '--gpu-interval',
        '5s',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    extraAgent.stderr!.on('data', (d: Buffer) => (extraLog += d.toString()));

    const gpu = await until(
      async () => {
        const g = (await (await stack.api('/instances/default/gpu', token)).json()) as {
          instanceId: string;
          gpus: Array<{ name: string; utilizationPercent: number }>;
        };
        return g.gpus.length ? g : null;
      },
      `a GPU report (agent log: ${extraLog})`,
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
    const spot = await until(
      async () => {
        const list = (await (await stack.api('/notifications', token)).json()) as {
          notifications: Array<{ kind: string; level: string; title: string; instanceId: string }>;
        };
        const s = list.notifications.filter((n) => n.kind === 'spot');
        return s.length ? s : null;
      },
      'the spot notice',
      30,
      stack,
    );
    await new Promise((r) => setTimeout(r, 2500));
    const again = (await (await stack.api('/notifications', token)).json()) as {
      notifications: Array<{ kind: string }>;
    };
    assert.equal(again.notifications.filter((n) => n.kind === 'spot').length, 1);
    assert.equal(spot[0]!.level, 'warning');
    assert.match(spot[0]!.title, /AWS is reclaiming your machine/);
    assert.equal(spot[0]!.instanceId, instanceId);
    extraAgent.kill('SIGTERM');
    assert.equal(await new Promise((r) => extraAgent!.once('exit', r)), 0);
    assert.ok(!extraLog.includes(env.NGSCI_AGENT_TOKEN!), 'the agent never logs its credential');
  });

  test('a honeypot read raises a critical security event at once and stops the server', async () => {
    const rule = await stack.api('/admin/audit/rules', adminToken, {
      method: 'POST',
      body: JSON.stringify({
        kind: 'honeypot',
        path: canary,
        stopServer: true,
        note: 'no study uses this file',
      }),
    });
    assert.equal(rule.status, 201, await rule.clone().text());
    const before = Date.now();
    const res = await download('zz-canary.csv');
    assert.equal(res.status, 200);
    const alert = await until(
      async () => (await securityEvents('honeypot_read'))[0],
      'the honeypot alert',
      30,
      stack,
    );
    assert.equal(alert.severity, 'critical');
    assert.equal(alert.user, 'researcher');
    assert.equal(alert.server, 'default');
    assert.equal(alert.instanceId, instanceId);
    assert.equal(alert.path, canary);
    // the agent flushes every 5 s: "at once" is within a flush and a request
    assert.ok(Date.now() - before < 20_000);

    const notice = await until(
      async () => {
        const list = (await (await stack.api('/notifications', adminToken)).json()) as {
          notifications: Array<{ kind: string; level: string; title: string }>;
        };
        return list.notifications.find((n) => n.kind === 'security');
      },
      'the admin notice',
      20,
      stack,
    );
    assert.equal(notice.level, 'error');
    assert.match(notice.title, /honeypot read/);

    await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as {
          state: string;
        };
        return ['stopping', 'stopped'].includes(i.state);
      },
      'the server to stop',
      60,
      stack,
    );

    const shipped = readFileSync(sink, 'utf8');
    assert.match(shipped, /"action":"honeypot_read"/, 'the alert is in the sink too');
  });
});
