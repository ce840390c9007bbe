/**
 * The audit through the real app: agents post with their own credential only (a user token
 * cannot write events); events join a hash chain per instance that verification recomputes, so
 * an edited, deleted, reordered or truncated row is named; honeypot and threshold rules raise
 * security events (and stop the server when asked); the stream is shipped as ECS JSON lines;
 * retention archives before it deletes. The GPU and spot reports of the agent are here too.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asc, eq, sql } from 'drizzle-orm';
import { auditEvents } from '../db/schema.js';
import { createLogger } from '../logger.js';
import { ACCESS, harness, type Harness } from '../testing/harness.js';
import { pruneAudit } from './retention.js';
import { verifyChains } from './chain.js';

const sinkDir = mkdtempSync(join(tmpdir(), 'ngsci-audit-sink-'));
const sinkFile = join(sinkDir, 'audit.jsonl');

let h: Harness;
let admin: string;
before(async () => {
  h = await harness({ env: { NGSCI_AUDIT_SINK: `file:${sinkFile}` } });
  admin = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
});
after(async () => h.close());

const body = async (res: Response) => (await res.json()) as Record<string, unknown>;

/** A running instance of `user` with an issued agent credential, as the worker leaves it. */
async function agentFor(user: string, server = 'default') {
  const { id, token } = await h.runningAgent(user, server);
  const post = (events: unknown[], extra: Record<string, unknown> = {}) =>
    h.request('/api/v1/agent/audit', {
      token,
      method: 'POST',
      body: JSON.stringify({ ...extra, events }),
    });
  return { id, token, post };
}

const reads = (paths: string[], at = '2026-11-20T10:00:00Z') =>
  paths.flatMap((path) => [
    { path, op: 'open', at },
    { path, op: 'read', at },
    { path, op: 'close', at, durationMs: 40, bytes: 1000 },
  ]);

const verify = async (chain?: string) =>
  body(
    await h.request(`/api/v1/admin/audit/verify${chain ? `?chain=${chain}` : ''}`, {
      token: admin,
    }),
  ) as Promise<{
    intact: boolean;
    events: number;
    breaks: Array<{
      chain: string;
      eventId: number | null;
      reason: string;
      expected: string;
      stored: string | null;
    }>;
  }>;

const eventIds = async (chain: string) =>
  (
    await h.database.db
      .select({ id: auditEvents.id })
      .from(auditEvents)
      .where(eq(auditEvents.chain, chain))
      .orderBy(asc(auditEvents.id))
  ).map((r) => r.id);

describe('agent ingestion', () => {
  test("events are stored under the credential's user, server and instance; admins filter them and export CSV", async () => {
    const carol = await agentFor('carol');
    const dave = await agentFor('dave', 'gpu1');

    const r1 = await carol.post([
      { path: '/data/patients/cohort-a.parquet', op: 'open', at: '2026-11-20T10:00:00Z' },
      {
        path: '/data/patients/cohort-a.parquet',
        op: 'close',
        at: '2026-11-20T10:00:02.5Z',
        bytes: 1048576,
        durationMs: 2500,
      },
    ]);
    assert.equal(r1.status, 202, await r1.clone().text());
    assert.equal((await body(r1)).accepted, 2);
    assert.equal(
      (
        await dave.post([
          { path: '/data/public/readme, "notes".txt', op: 'read', at: '2026-11-21T09:00:00Z' },
        ])
      ).status,
      202,
    );

    const carolUser = h.token({ name: 'carol' });
    assert.equal((await h.request('/api/v1/admin/audit', { token: carolUser })).status, 403);

    const all = await body(await h.request('/api/v1/admin/audit', { token: admin }));
    const events = all.events as Array<Record<string, unknown>>;
    const close = events.find((e) => e.user === 'carol' && e.op === 'close');
    assert.ok(close);
    assert.equal(close.path, '/data/patients/cohort-a.parquet');
    assert.equal(close.bytes, 1048576);
    assert.equal(close.instanceId, carol.id);
    assert.equal(close.chain, carol.id);
    assert.match(String(close.hash), /^[0-9a-f]{64}$/);
    assert.ok(events.some((e) => e.user === 'dave' && e.server === 'gpu1'));

    const onlyCarol = await body(
      await h.request('/api/v1/admin/audit?user=carol&path=/data/patients/', { token: admin }),
    );
    assert.deepEqual(
      [...new Set((onlyCarol.events as Array<{ user: string }>).map((e) => e.user))],
      ['carol'],
    );
    const later = await body(
      await h.request('/api/v1/admin/audit?from=2026-11-21T00:00:00Z', { token: admin }),
    );
    assert.deepEqual(
      (later.events as Array<{ user: string }>).map((e) => e.user),
      ['dave'],
    );

    const csv = await h.request('/api/v1/admin/audit?format=csv', { token: admin });
    assert.match(String(csv.headers.get('content-type')), /text\/csv/);
    const lines = (await csv.text()).trim().split('\r\n');
    assert.equal(lines[0], 'id,at,user,server,instanceId,path,op,bytes,durationMs,receivedAt,hash');
    assert.ok(
      lines.some(
        (l) =>
          l.includes(`,carol,default,${carol.id},`) &&
          l.includes('/data/patients/cohort-a.parquet,close,1048576,2500,'),
      ),
    );
    assert.ok(lines.some((l) => l.includes('"/data/public/readme, ""notes"".txt"')));
  });

  test('a user or server token cannot write audit events, on the agent route or the old one', async () => {
    const erin = h.token({ name: 'erin' });
    const events = [{ path: '/data/x', op: 'read', at: '2026-11-20T10:00:00Z' }];
    const agentRoute = await h.request('/api/v1/agent/audit', {
      token: erin,
      method: 'POST',
      body: JSON.stringify({ events }),
    });
    assert.equal(agentRoute.status, 403);
    const old = await h.request('/api/v1/audit/events', {
      token: erin,
      method: 'POST',
      body: JSON.stringify({ events }),
    });
    assert.equal(old.status, 404, 'the user-token route is gone');
    const none = await h.request('/api/v1/agent/audit', {
      method: 'POST',
      body: JSON.stringify({ events }),
    });
    assert.equal(none.status, 401);
    const list = await body(await h.request('/api/v1/admin/audit?user=erin', { token: admin }));
    assert.deepEqual(list.events, []);
  });

  test('an agent cannot report for another instance or server; a revoked credential is refused', async () => {
    const frank = await agentFor('frank');
    const other = await agentFor('grace');
    const ev = [{ path: '/data/x', op: 'read', at: '2026-11-20T10:00:00Z' }];
    assert.equal((await frank.post(ev, { instanceId: other.id })).status, 403);
    assert.equal((await frank.post(ev, { server: 'gpu9' })).status, 403);
    assert.equal((await frank.post(ev, { instanceId: frank.id, server: 'default' })).status, 202);
    await h.services.agents.revoke(frank.id);
    assert.equal((await frank.post(ev)).status, 401);
  });

  test('bad batches: relative paths, empty batches, bad times, unknown fields', async () => {
    const a = await agentFor('hank');
    for (const bad of [
      [{ path: 'relative/file', op: 'open', at: '2026-11-20T10:00:00Z' }],
      [],
      [{ path: '/x', op: 'open', at: 'yesterday' }],
      [{ path: '/x', op: 'open', at: '2026-11-20T10:00:00Z', user: 'someone-else' }],
      [{ path: '/x', op: 'write', at: '2026-11-20T10:00:00Z' }],
    ]) {
      const res = await a.post(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal((await body(res)).code, 'validation_failed');
    }
  });
});

describe('hash chain', () => {
  test('an untouched audit verifies; each chain starts from the empty hash', async () => {
    const a = await agentFor('ida');
    await a.post(reads(['/data/a', '/data/b']));
    await a.post(reads(['/data/c']));
    const v = await verify(a.id);
    assert.equal(v.intact, true, JSON.stringify(v.breaks));
    assert.equal(v.events, 9);
    const all = await verify();
    assert.equal(all.intact, true, JSON.stringify(all.breaks));
  });

  test('a row edited with SQL is named, with the expected and stored hash', async () => {
    const a = await agentFor('jack');
    await a.post(reads(['/data/a', '/data/b', '/data/c']));
    const ids = await eventIds(a.id);
    const target = ids[4]!;
    await h.database.db.execute(
      sql`update audit_events set path = '/data/innocent' where id = ${target}`,
    );
    const v = await verify(a.id);
    assert.equal(v.intact, false);
    assert.equal(v.breaks.length, 1);
    assert.equal(v.breaks[0]!.eventId, target);
    assert.equal(v.breaks[0]!.reason, 'changed');
    assert.notEqual(v.breaks[0]!.expected, v.breaks[0]!.stored);
    // the whole-audit check names it too, and other chains stay intact
    const all = await verify();
    assert.deepEqual(
      all.breaks.map((b) => b.eventId),
      [target],
    );
    // a changed byte count (a number, not a string) is caught as well
    const b = await agentFor('jack2');
    await b.post(reads(['/data/a']));
    const closeId = (await eventIds(b.id))[2]!;
    await h.database.db.execute(sql`update audit_events set bytes = 1 where id = ${closeId}`);
    assert.equal((await verify(b.id)).breaks[0]!.eventId, closeId);
  });

  test('a deleted row: the event after it is named as no longer following its predecessor', async () => {
    const a = await agentFor('kate');
    await a.post(reads(['/data/a', '/data/b']));
    const ids = await eventIds(a.id);
    await h.database.db.execute(sql`delete from audit_events where id = ${ids[2]!}`);
    const v = await verify(a.id);
    assert.equal(v.breaks[0]!.reason, 'link');
    assert.equal(v.breaks[0]!.eventId, ids[3]);
  });

  test('two rows swapped: the first moved position is named', async () => {
    const a = await agentFor('liam');
    await a.post(reads(['/data/a', '/data/b']));
    const ids = await eventIds(a.id);
    const [x, y] = [ids[1]!, ids[4]!];
    await h.database.db.execute(sql`update audit_events set id = ${-x} where id = ${x}`);
    await h.database.db.execute(sql`update audit_events set id = ${x} where id = ${y}`);
    await h.database.db.execute(sql`update audit_events set id = ${y} where id = ${-x}`);
    const v = await verify(a.id);
    assert.equal(v.breaks[0]!.reason, 'link');
    assert.equal(v.breaks[0]!.eventId, x);
  });

  test('the newest rows deleted: the chain is truncated against its head', async () => {
    const a = await agentFor('mia');
    await a.post(reads(['/data/a', '/data/b']));
    const ids = await eventIds(a.id);
    await h.database.db.execute(sql`delete from audit_events where id >= ${ids[3]!}`);
    const v = await verify(a.id);
    assert.equal(v.breaks[0]!.reason, 'truncated');
    assert.equal(v.breaks[0]!.eventId, null);
  });
});

describe('exfiltration monitors', () => {
  test('a honeypot read is a critical security event at once, and stops the server when asked', async () => {
    const nobody = h.token({ name: 'nina' });
    const refused = await h.request('/api/v1/admin/audit/rules', {
      token: nobody,
      method: 'POST',
      body: JSON.stringify({ kind: 'honeypot', path: '/data/canary.csv' }),
    });
    assert.equal(refused.status, 403);
    const created = await h.request('/api/v1/admin/audit/rules', {
      token: admin,
      method: 'POST',
      body: JSON.stringify({
        kind: 'honeypot',
        path: '/data/patients/zz-canary.csv',
        stopServer: true,
        note: 'no study uses this file',
      }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const rule = await body(created);
    assert.equal(rule.createdBy, 'root');

    const m = await agentFor('mallory');
    // an ordinary read raises nothing
    await m.post(reads(['/data/patients/cohort-a.parquet']));
    let list = await body(
      await h.request('/api/v1/admin/security-events?kind=honeypot_read', { token: admin }),
    );
    assert.equal((list.events as unknown[]).length, 0);
    assert.ok(!h.hubCalls.includes('DELETE /users/mallory/server'));

    await m.post(reads(['/data/patients/zz-canary.csv'], '2026-11-20T11:30:00Z'));
    list = await body(
      await h.request('/api/v1/admin/security-events?kind=honeypot_read', { token: admin }),
    );
    const events = list.events as Array<Record<string, unknown>>;
    assert.equal(events.length, 1, 'one alert for the open and read of one file');
    const e = events[0]!;
    assert.equal(e.severity, 'critical');
    assert.equal(e.user, 'mallory');
    assert.equal(e.server, 'default');
    assert.equal(e.instanceId, m.id);
    assert.equal(e.path, '/data/patients/zz-canary.csv');
    assert.match(String(e.message), /2026-11-20T11:30:00.000Z/);
    assert.ok(h.hubCalls.includes('DELETE /users/mallory/server'), 'the server was stopped');

    const del = await h.request(`/api/v1/admin/audit/rules/${String(rule.id)}`, {
      token: admin,
      method: 'DELETE',
    });
    assert.equal(del.status, 204);
    const again = await h.request(`/api/v1/admin/audit/rules/${String(rule.id)}`, {
      token: admin,
      method: 'DELETE',
    });
    assert.equal(again.status, 404);
  });

  test('a threshold of files and bytes per user warns once per window', async () => {
    const at = new Date().toISOString();
    const res = await h.request('/api/v1/admin/audit/rules', {
      token: admin,
      method: 'POST',
      body: JSON.stringify({
        kind: 'threshold',
        path: '/bulk/',
        windowSeconds: 3600,
        maxFiles: 3,
      }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const ruleId = (await body(res)).id;
    const o = await agentFor('oscar');
    await o.post(reads(['/bulk/1', '/bulk/2', '/bulk/3', '/elsewhere/4'], at));
    const count = async () =>
      (
        (
          await body(
            await h.request('/api/v1/admin/security-events?kind=read_threshold', { token: admin }),
          )
        ).events as Array<Record<string, unknown>>
      ).filter((e) => e.user === 'oscar');
    assert.equal((await count()).length, 0, 'three files under /bulk/ is at the limit, not over');
    await o.post(reads(['/bulk/4'], at));
    const warned = await count();
    assert.equal(warned.length, 1);
    assert.equal(warned[0]!.severity, 'warning');
    assert.match(String(warned[0]!.message), /4 files \(limit 3\)/);
    await o.post(reads(['/bulk/5', '/bulk/6'], at));
    assert.equal((await count()).length, 1, 'once per window');
    await h.request(`/api/v1/admin/audit/rules/${String(ruleId)}`, {
      token: admin,
      method: 'DELETE',
    });

    const bytesRule = await body(
      await h.request('/api/v1/admin/audit/rules', {
        token: admin,
        method: 'POST',
        body: JSON.stringify({ kind: 'threshold', windowSeconds: 600, maxBytes: 2500 }),
      }),
    );
    const p = await agentFor('pia');
    await p.post(reads(['/d/1', '/d/2'], at));
    await p.post(reads(['/d/3'], at));
    const pia = (
      (
        await body(
          await h.request('/api/v1/admin/security-events?kind=read_threshold', { token: admin }),
        )
      ).events as Array<Record<string, unknown>>
    ).filter((e) => e.user === 'pia');
    assert.equal(pia.length, 1);
    assert.match(String(pia[0]!.message), /3000 bytes \(limit 2500\)/);
    await h.request(`/api/v1/admin/audit/rules/${String(bytesRule.id)}`, {
      token: admin,
      method: 'DELETE',
    });
  });

  test('rules are validated', async () => {
    const post = (b: unknown) =>
      h.request('/api/v1/admin/audit/rules', {
        token: admin,
        method: 'POST',
        body: JSON.stringify(b),
      });
    for (const bad of [
      { kind: 'honeypot', path: 'relative' },
      { kind: 'honeypot' },
      { kind: 'threshold', windowSeconds: 3600 },
      { kind: 'threshold', windowSeconds: 1, maxFiles: 3 },
      { kind: 'other', path: '/x' },
    ]) {
      const res = await post(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
    }
    const rules = await body(await h.request('/api/v1/admin/audit/rules', { token: admin }));
    assert.ok(Array.isArray(rules.rules));
  });
});

describe('the audit sink', () => {
  test('audit and security events are shipped as ECS JSON lines with their hashes', async () => {
    const q = await agentFor('quinn');
    await q.post([
      { path: '/data/ship/a.csv', op: 'open', at: '2026-11-22T08:00:00Z' },
      {
        path: '/data/ship/a.csv',
        op: 'close',
        at: '2026-11-22T08:00:01.5Z',
        durationMs: 1500,
        bytes: 77,
      },
    ]);
    await h.services.auditSink.flush();
    const lines = readFileSync(sinkFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, any>);
    const close = lines.find(
      (l) => l.file?.path === '/data/ship/a.csv' && l.event?.action === 'file-close',
    );
    assert.ok(close, 'the close is in the sink');
    assert.equal(close['@timestamp'], '2026-11-22T08:00:01.500Z');
    assert.equal(close.user.name, 'quinn');
    assert.equal(close.event.duration, 1_500_000_000, 'ECS durations are nanoseconds');
    assert.equal(close.file.size, 77);
    assert.equal(close.host.id, q.id);
    assert.equal(close.labels.server, 'default');
    const stored = await body(await h.request('/api/v1/admin/audit?user=quinn', { token: admin }));
    assert.equal(
      close.ngsci.hash,
      (stored.events as Array<{ op: string; hash: string }>).find((e) => e.op === 'close')!.hash,
    );
    assert.ok(
      lines.some((l) => l.event?.kind === 'alert' && l.event?.action === 'honeypot_read'),
      'security events go to the same sink',
    );
  });

  test('an unreachable HTTP sink keeps its lines and delivers them later', async () => {
    const { createAuditSink } = await import('./sink.js');
    const got: string[] = [];
    let up = false;
    const sink = createAuditSink('https://logs.example.test/ingest', {
      logger: createLogger('silent'),
      fetch: (async (_url: unknown, init?: RequestInit) => {
        if (!up) throw new Error('connection refused');
        got.push(String(init?.body));
        return new Response(null, { status: 200 });
      }) as typeof fetch,
    });
    const rows = await h.database.db.select().from(auditEvents).limit(2);
    assert.equal(rows.length, 2);
    sink.events(rows);
    await sink.flush();
    assert.equal(got.length, 0);
    up = true;
    await sink.flush();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.trim().split('\n').length, 2);
  });
});

describe('retention', () => {
  test('old events are archived with their hashes, then deleted; the chain still verifies', async () => {
    const r = await agentFor('rita');
    await r.post(reads(['/data/old-1', '/data/old-2']));
    await r.post(reads(['/data/new-1']));
    const ids = await eventIds(r.id);
    // the first batch arrived 40 days ago
    await h.database.db.execute(
      sql`update audit_events set received_at = now() - interval '40 days' where chain = ${r.id} and id <= ${ids[5]!}`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'ngsci-audit-archive-'));
    const deps = {
      db: h.database.db,
      config: { NGSCI_AUDIT_RETENTION: 30 * 86_400, NGSCI_AUDIT_ARCHIVE_DIR: dir },
      security: h.services.security,
      logger: createLogger('silent'),
    };

    // an archive that cannot be written means nothing is deleted
    await assert.rejects(
      pruneAudit(
        { ...deps, config: { ...deps.config, NGSCI_AUDIT_ARCHIVE_DIR: join(dir, 'missing') } },
        new Date(),
      ),
    );
    await assert.rejects(
      pruneAudit(
        { ...deps, config: { ...deps.config, NGSCI_AUDIT_ARCHIVE_DIR: undefined } },
        new Date(),
      ),
      /never deleted without an archive/,
    );
    assert.equal((await eventIds(r.id)).length, 9);

    const result = await pruneAudit(deps, new Date());
    assert.ok(result);
    assert.equal(result.deleted, 6);
    assert.deepEqual(await eventIds(r.id), ids.slice(6));
    const archived = readFileSync(result.archive!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; hash: string; prevHash: string; chain: string });
    const mine = archived.filter((a) => a.chain === r.id);
    assert.deepEqual(
      mine.map((a) => a.id),
      ids.slice(0, 6),
    );
    assert.equal(mine[0]!.prevHash, '');
    assert.match(mine[5]!.hash, /^[0-9a-f]{64}$/);

    const v = await verifyChains(h.database.db, { chain: r.id });
    assert.equal(v.intact, true, JSON.stringify(v.breaks));
    assert.equal(v.events, 3);

    const pruned = await body(
      await h.request('/api/v1/admin/security-events?kind=audit_pruned', { token: admin }),
    );
    const ev = (pruned.events as Array<{ details: Record<string, unknown> }>)[0]!;
    assert.equal(ev.details.archive, result.archive);
    assert.equal(ev.details.deleted, result.deleted);

    // a second pass finds nothing and leaves no empty archive behind
    const again = await pruneAudit(deps, new Date());
    assert.equal(again?.deleted, 0);
    assert.equal(readdirSync(dir).length, 1);
    assert.ok(existsSync(result.archive!));
  });

  test('retention is off by default', async () => {
    assert.equal(
      await pruneAudit(
        {
          db: h.database.db,
          config: { NGSCI_AUDIT_RETENTION: 0, NGSCI_AUDIT_ARCHIVE_DIR: undefined },
          security: h.services.security,
          logger: createLogger('silent'),
        },
        new Date(),
      ),
      null,
    );
  });
});

describe('agent reports', () => {
  test('GPU samples are readable by their owner; no report yet means no GPUs', async () => {
    const token = h.token({ name: 'gina' });
    const none = await body(await h.request('/api/v1/instances/default/gpu', { token }));
    assert.deepEqual(none, { server: 'default', instanceId: null, reportedAt: null, gpus: [] });
    const gina = await agentFor('gina');
    const gpus = [
      {
        index: 0,
        name: 'NVIDIA A100-SXM4-40GB',
        utilizationPercent: 87,
        memoryUsedMiB: 30000,
        memoryTotalMiB: 40960,
      },
    ];
    const post = (t: string, g: unknown) =>
      h.request('/api/v1/agent/gpu', {
        token: t,
        method: 'POST',
        body: JSON.stringify({ gpus: g }),
      });
    assert.equal((await post(token, gpus)).status, 403, 'a user token cannot report GPU use');
    assert.equal((await post(gina.token, gpus)).status, 202);
    const got = await body(await h.request('/api/v1/instances/default/gpu', { token }));
    assert.deepEqual(got.gpus, gpus);
    assert.equal(got.instanceId, gina.id);
    const other = h.token({ name: 'harry' });
    assert.equal(
      (await h.request('/api/v1/instances/default/gpu?user=gina', { token: other })).status,
      403,
    );
    assert.equal((await post(gina.token, [{ ...gpus[0], utilizationPercent: 140 }])).status, 400);
  });

  test('a spot notice becomes one warning notification, however often the agent repeats it', async () => {
    const token = h.token({ name: 'ivy' });
    const ivy = await agentFor('ivy');
    const notice = { cloud: 'aws', action: 'terminate', at: '2026-11-20T10:02:00Z' };
    for (let i = 0; i < 3; i++) {
      const res = await h.request('/api/v1/agent/spot', {
        token: ivy.token,
        method: 'POST',
        body: JSON.stringify(notice),
      });
      assert.equal(res.status, 202);
    }
    const list = await body(await h.request('/api/v1/notifications', { token }));
    const items = list.notifications as Array<{
      kind: string;
      level: string;
      title: string;
      body: string;
    }>;
    assert.equal(items.length, 1);
    assert.equal(items[0]!.kind, 'spot');
    assert.equal(items[0]!.level, 'warning');
    assert.match(items[0]!.title, /AWS is reclaiming your machine/);
    assert.match(items[0]!.body, /10:02:00 UTC/);
  });
});
