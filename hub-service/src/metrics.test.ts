/**
 * GET /metrics: who may scrape it (the service's own token anywhere, no token only from this
 * machine's loopback on the unprefixed path), route patterns as labels (never ids), and the
 * figures read from the database (instances, burn rate, spend per plan and group, budget alerts,
 * security events, silent agents, idle GPUs, jobs), on the real app behind a real HTTP server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { serve, type ServerType } from '@hono/node-server';
import { eq } from 'drizzle-orm';
import { harness, type Harness } from './testing/harness.js';
import { createMetrics, METRIC_NAMES } from './metrics.js';
import {
  budgetAlerts,
  gpuSamples,
  instanceAgents,
  usageGroupDays,
  usageIntervals,
} from './db/schema.js';

const SERVICE_TOKEN = 'service-token-0123456789';
let h: Harness;
let server: ServerType;
let origin: string;

before(async () => {
  h = await harness();
  await new Promise<void>((ready) => {
    server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, () => ready());
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((done) => server.close(done));
  await h.close();
});

/** The value of one series in an exposition text, or undefined when it is absent. */
function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n'))
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return undefined;
}

describe('who may scrape', () => {
  test('the service token anywhere; no token only from loopback on /metrics, never through the proxy', async () => {
    const withToken = await fetch(`${origin}/metrics`, {
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
    });
    assert.equal(withToken.status, 200);
    assert.match(withToken.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await withToken.text(), /# TYPE ngsci_http_requests_total counter/);

    // the prefixed path is what the hub's proxy routes here: a token is required
    const prefixed = await fetch(`${origin}/services/ngsci/metrics`);
    assert.equal(prefixed.status, 401);
    assert.equal(((await prefixed.json()) as { code: string }).code, 'unauthenticated');
    const prefixedToken = await fetch(`${origin}/services/ngsci/metrics`, {
      headers: { authorization: `token ${SERVICE_TOKEN}` },
    });
    assert.equal(prefixedToken.status, 200);
    await prefixedToken.text();

    // from this machine, no token: allowed, unless the request was forwarded by a proxy
    const local = await fetch(`${origin}/metrics`);
    assert.equal(local.status, 200);
    await local.text();
    const forwarded = await fetch(`${origin}/metrics`, {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(forwarded.status, 401);
    await forwarded.text();

    // a user's hub token, or a wrong one, is not the service's
    const user = h.token({ name: 'mallory' });
    for (const t of [user, 'service-token-0123456780']) {
      const res = await fetch(`${origin}/metrics`, { headers: { authorization: `token ${t}` } });
      assert.equal(res.status, 403);
      await res.text();
    }
    // without a socket (no peer address) and no token: refused
    assert.equal((await h.app.request('/metrics')).status, 401);
  });
});

describe('what it reports', () => {
  test('requests per route pattern and status, with latency; ids never become labels', async () => {
    const alice = h.token({ name: 'alice' });
    await h.runningInstance('alice', { server: 'srv-7f3a9' });
    assert.equal((await h.request('/api/v1/catalog', { token: alice })).status, 200);
    assert.equal((await h.request('/api/v1/instances/srv-7f3a9', { token: alice })).status, 200);
    assert.equal((await h.request('/api/v1/catalog')).status, 401);
    assert.equal((await h.request('/api/v1/no-such-route', { token: alice })).status, 404);
    assert.equal((await h.request('/api/v1/instances/no-such', { token: alice })).status, 404);

    const text = await (
      await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } })
    ).text();
    // this file's requests went through app.request: same app, same counters
    assert.ok(
      (value(
        text,
        'ngsci_http_requests_total{method="GET",route="/api/v1/catalog",status="200"}',
      ) ?? 0) >= 1,
      text,
    );
    assert.equal(
      value(
        text,
        'ngsci_http_requests_total{method="GET",route="/api/v1/instances/:server",status="200"}',
      ),
      1,
      text,
    );
    assert.ok(!text.includes('srv-7f3a9'), 'a server name became a label');
    // a route's own 404 keeps its route; a path no route matches is `unmatched`
    assert.equal(
      value(
        text,
        'ngsci_http_requests_total{method="GET",route="/api/v1/instances/:server",status="404"}',
      ),
      1,
    );
    assert.ok(!text.includes('no-such'), 'a path became a label');
    assert.ok(
      (value(text, 'ngsci_http_requests_total{method="GET",route="/api/v1/*",status="401"}') ??
        0) >= 1,
    );
    assert.ok(
      (value(text, 'ngsci_http_requests_total{method="GET",route="unmatched",status="404"}') ??
        0) >= 1,
    );
    assert.match(
      text,
      /ngsci_http_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/api\/v1\/catalog"\} [1-9]/,
    );
  });

  test('instances, burn rate, spend per plan and group, alerts, security events, silent agents, idle GPUs', async () => {
    const { db } = h.database;
    const metrics = () => createMetrics({ ...h.services, prefix: '/services/ngsci/' }).text();
    const before = await metrics();
    const spentBefore = value(before, 'ngsci_spend_micros_total{plan="mx-plan"}') ?? 0;
    const groupBefore = value(before, 'ngsci_group_spend_micros_total{group="mx-lab"}') ?? 0;

    const gpu = await h.runningInstance('gina', { size: 'gpu-t4', rate: 526_000, server: 'gpu' });
    const { id: silentId } = await h.runningAgent('sam', 'quiet');
    await db
      .update(instanceAgents)
      .set({ silentSince: new Date() })
      .where(eq(instanceAgents.instanceId, silentId));
    const start = new Date(Date.now() - 3_600_000);
    await db.insert(usageIntervals).values({
      meterKey: `test-${gpu.id}`,
      kind: 'compute',
      userName: 'gina',
      groups: ['mx-lab'],
      instanceId: gpu.id,
      serverName: 'gpu',
      sizeId: 'gpu-t4',
      sizeClass: 'gpu',
      cloud: 'local',
      region: 'localhost',
      planId: 'mx-plan',
      multiplierPpm: 1_000_000,
      rateMicros: 526_000,
      ratePeriodSeconds: 3600,
      startedAt: start,
      endedAt: new Date(),
      billedFrom: 0,
      billedTo: 3600,
      amountMicros: 526_000,
    });
    await db
      .insert(usageGroupDays)
      .values({ groupName: 'mx-lab', day: '2026-01-02', micros: 1_234_567, rows: 1 });
    await db.insert(budgetAlerts).values({
      subjectKind: 'group',
      subjectName: 'mx-lab',
      month: '2026-01',
      threshold: 90,
    });
    await h.services.security.raise({
      kind: 'agent_silent',
      severity: 'warning',
      user: 'sam',
      server: 'quiet',
      instanceId: silentId,
      message: 'the agent stopped reporting',
    });
    await db.insert(gpuSamples).values({
      userName: 'gina',
      serverName: 'gpu',
      instanceId: gpu.id,
      gpus: [
        { index: 0, name: 'T4', utilizationPercent: 2, memoryUsedMiB: 1, memoryTotalMiB: 16_000 },
        { index: 1, name: 'T4', utilizationPercent: 95, memoryUsedMiB: 1, memoryTotalMiB: 16_000 },
      ],
    });

    const text = await metrics();
    assert.ok(
      (value(text, 'ngsci_instances{state="running",size="gpu-t4",cloud="local"}') ?? 0) >= 1,
      text,
    );
    assert.ok((value(text, 'ngsci_burn_rate_micros_per_hour{cloud="local"}') ?? 0) >= 526_000);
    assert.equal(value(text, 'ngsci_spend_micros_total{plan="mx-plan"}'), spentBefore + 526_000);
    assert.match(text, /# TYPE ngsci_spend_micros_total counter/);
    // the ledger's interval is rolled up into its group's day too (a trigger), plus the day row
    assert.equal(
      value(text, 'ngsci_group_spend_micros_total{group="mx-lab"}'),
      groupBefore + 526_000 + 1_234_567,
    );
    assert.equal(
      value(text, 'ngsci_budget_alerts_total{subject_kind="group",threshold="90"}'),
      (value(before, 'ngsci_budget_alerts_total{subject_kind="group",threshold="90"}') ?? 0) + 1,
    );
    assert.ok(
      (value(text, 'ngsci_security_events_total{kind="agent_silent",severity="warning"}') ?? 0) >=
        1,
    );
    assert.ok((value(text, 'ngsci_agent_silent_instances') ?? 0) >= 1);
    assert.equal(value(text, 'ngsci_gpus_reporting'), 2);
    assert.equal(value(text, 'ngsci_gpus_idle'), 1);
    // the meter has not run in this test: its gauges are declared, the leader flag is 0
    assert.equal(value(text, 'ngsci_meter_leader'), 0);
  });

  test('jobs by state, and the oldest waiting one’s age', async () => {
    const alice = h.token({ name: 'jobs-alice' });
    // no provisioner for `local` in this harness: the start job waits in the queue
    const res = await h.request('/api/v1/instances', {
      method: 'POST',
      token: alice,
      body: JSON.stringify({ size: 'cpu-small', server: 'queued' }),
    });
    assert.ok(res.status < 300, await res.text());
    const text = await createMetrics({ ...h.services, prefix: '/services/ngsci/' }).text();
    const waiting =
      (value(text, 'ngsci_jobs{state="queued",kind="start"}') ?? 0) +
      (value(text, 'ngsci_jobs{state="running",kind="start"}') ?? 0) +
      (value(text, 'ngsci_jobs{state="failed",kind="start"}') ?? 0);
    assert.ok(waiting >= 1, text);
    assert.match(text, /ngsci_jobs_oldest_age_seconds\{state="(queued|running)",kind="start"\} \d/);
  });
});

test("the meter's last cycle: its duration, rows and time, from the report it keeps", async () => {
  const meter = h.services.metering.meter;
  assert.ok(meter, 'the harness builds a meter');
  const metrics = createMetrics({ ...h.services, prefix: '/services/ngsci/' });
  const started = Date.now() / 1000;
  const report = await meter.cycle();
  const text = await metrics.text();
  assert.equal(value(text, 'ngsci_meter_cycle_duration_seconds'), report.ms / 1000);
  assert.equal(value(text, 'ngsci_meter_cycle_rows_written'), report.rowsWritten);
  assert.equal(value(text, 'ngsci_meter_cycle_streams'), report.streams);
  const at = value(text, 'ngsci_meter_last_cycle_timestamp_seconds')!;
  assert.ok(at >= Math.floor(started) - 1 && at <= Date.now() / 1000 + 1, String(at));
});

test('every metric the Grafana board queries is exported', async () => {
  const board = JSON.parse(
    readFileSync(new URL('../../deploy/grafana/ngsci.json', import.meta.url), 'utf8'),
  ) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  const text = await createMetrics({ ...h.services, prefix: '/services/ngsci/' }).text();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  assert.deepEqual([...exported].sort(), [...METRIC_NAMES].sort());
  let queried = 0;
  for (const panel of board.panels) {
    for (const target of panel.targets ?? []) {
      const names = [
        ...target.expr.matchAll(/\b(ngsci_[a-z_]+?)(_bucket|_sum|_count)?\b(?=[{[\s)]|$)/g),
      ];
      assert.ok(names.length > 0, `panel "${panel.title}" queries no ngsci metric: ${target.expr}`);
      for (const [, name] of names) {
        queried++;
        assert.ok(
          exported.has(name!),
          `panel "${panel.title}" queries ${name}, which /metrics does not export`,
        );
      }
    }
  }
  assert.ok(queried >= 8, `the board queries ${queried} metrics`);
});

test("the process's own pauses: how late the event loop ran since the last scrape, and the collector's pauses", async () => {
  const metrics = createMetrics({ ...h.services, prefix: '/services/ngsci/' });
  await metrics.text(); // from here on
  // a handler that holds the event loop for 60 ms, as a long synchronous piece of work would
  await new Promise<void>((done) =>
    setImmediate(() => {
      const until = performance.now() + 60;
      while (performance.now() < until);
      done();
    }),
  );
  // and garbage to collect
  let kept = 0;
  for (let i = 0; i < 200; i++) kept += new Array<number>(50_000).fill(i).length;
  assert.ok(kept > 0);
  await new Promise((r) => setTimeout(r, 50));
  const text = await metrics.text();
  const late = value(text, 'ngsci_event_loop_delay_max_seconds')!;
  assert.ok(late >= 0.05 && late < 5, `the loop was late ${late} s`);
  assert.ok(value(text, 'ngsci_event_loop_delay_p99_seconds')! > 0);
  assert.ok(value(text, 'ngsci_gc_pause_seconds_count{kind="minor"}')! > 0, 'minor pauses seen');
  // the next scrape covers only what came after this one
  await new Promise((r) => setTimeout(r, 30));
  const next = value(await metrics.text(), 'ngsci_event_loop_delay_max_seconds')!;
  assert.ok(next < 0.05, `since the previous scrape: ${next} s`);
});
