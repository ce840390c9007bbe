/**
 * The SSE event streams' feed: events written on one replica reach streams served by another
 * through Postgres LISTEN/NOTIFY (the real server at 127.0.0.1:5432, a fresh database for this
 * file), open streams cost no queries while nothing happens, PGlite works the same way, and one
 * user holds at most NGSCI_SSE_PER_USER streams.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceEvent } from '@ngsci/contract';
import type { Database } from '../db/client.js';
import { freshPostgres, type FreshPostgres } from '../testing/fresh-postgres.js';
import { createLogger } from '../logger.js';
import { harness, type Harness } from '../testing/harness.js';
import { EventFeed, eventIndex, type EventStream, SseSettingsSchema } from './event-feed.js';
import { InstanceStore, type NewInstanceRow } from './store.js';

const logger = createLogger('silent');
const settings = SseSettingsSchema.parse({});
let pg: FreshPostgres;
let pgA: Database;
let pgB: Database;
let h: Harness;

before(async () => {
  pg = await freshPostgres('ngsci_feed');
  // two pools on one database: two service replicas
  pgA = await pg.open();
  pgB = await pg.open();
  h = await harness();
});

after(async () => {
  await h?.close();
  await pg?.drop();
});

const row = (user: string, server = 'default'): NewInstanceRow => ({
  userName: user,
  serverName: server,
  sizeId: 'cpu-small',
  cloud: 'local',
  region: 'localhost',
  state: 'requested',
  listRatePerHourMicros: 96_000,
  baseUrl: `/user/${user}/`,
});

/** An InstanceStore whose stream reads are counted: the queries the feed costs. */
function countingStore(db: Database) {
  const store = new InstanceStore(db.db);
  const counted = {
    reads: 0,
    serverEvents: (user: string, server: string, after: number) => {
      counted.reads += 1;
      return store.serverEvents(user, server, after);
    },
  };
  return counted;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The next events of a stream that has any, failing after `ms`. */
async function nextEvents(stream: EventStream, ms: number): Promise<InstanceEvent[]> {
  const events = await stream.next(ms);
  assert.ok(events.length, `no event within ${ms} ms`);
  return events;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('on real Postgres, two replicas', () => {
  test('an event written on one replica reaches a stream on the other at once', async () => {
    const writer = new InstanceStore(pgA.db);
    const reader = countingStore(pgB);
    // no safety read in the time of this test: only a notification can deliver the event
    const feed = new EventFeed({
      database: pgB,
      store: reader,
      logger,
      settings,
      safetyReadSeconds: 600,
    });
    try {
      const stream = (await feed.open('ada', 'ada', 'default', 0))!;
      assert.deepEqual(await stream.next(50), [], 'nothing yet');
      const t0 = Date.now();
      const created = await writer.create(row('ada'), 'launch requested');
      const [first] = await nextEvents(stream, 2000);
      assert.equal(first?.instanceId, created?.id);
      assert.equal(first?.state, 'requested');
      assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
      // a transition and a note, the other writers, are announced too
      await writer.transition(created!.id, 'provisioning', 10, 'provisioning');
      assert.equal((await nextEvents(stream, 2000))[0]?.state, 'provisioning');
      await writer.note(created!.id, 20, 'plan: 3 to add');
      assert.equal((await nextEvents(stream, 2000))[0]?.message, 'plan: 3 to add');
      // another server of the same user does not wake this stream
      const before = reader.reads;
      await writer.create(row('ada', 'other'), 'launch requested');
      assert.deepEqual(await stream.next(300), []);
      assert.equal(reader.reads, before, 'no read for an event of another server');
    } finally {
      await feed.close();
    }
  });

  test('50 idle streams cost no queries; each event wakes its own stream (latency p50/p99)', async (t) => {
    const writer = new InstanceStore(pgA.db);
    const reader = countingStore(pgB);
    const feed = new EventFeed({
      database: pgB,
      store: reader,
      logger,
      settings,
      safetyReadSeconds: 600,
    });
    const n = 50;
    const users = Array.from({ length: n }, (_, i) => `crowd${i}`);
    const received = new Map<string, number>();
    try {
      const streams = await Promise.all(users.map((u) => feed.open(u, u, 'default', 0)));
      // each stream follows its server as the route does, noting when its first event arrives
      const loops = streams.map(async (s, i) => {
        while (!s!.isClosed) {
          const events = await s!.next(60_000);
          if (events.length && !received.has(users[i]!)) received.set(users[i]!, Date.now());
        }
      });
      await sleep(200);
      const settled = reader.reads;
      assert.equal(settled, n, 'one read each when they open');
      await sleep(2000);
      assert.equal(reader.reads, settled, 'no query while nothing happens');

      const sentAt = new Map<string, number>();
      for (const u of users) {
        sentAt.set(u, Date.now());
        await writer.create(row(u), 'launch requested');
      }
      const deadline = Date.now() + 5000;
      while (received.size < n && Date.now() < deadline) await sleep(10);
      assert.equal(received.size, n, 'every stream got its event');
      assert.ok(
        reader.reads - settled <= 2 * n,
        `${reader.reads - settled} reads for ${n} events: only the stream of each server reads`,
      );
      const latencies = users.map((u) => received.get(u)! - sentAt.get(u)!).sort((a, b) => a - b);
      t.diagnostic(
        `event latency over ${n} streams, write to stream: p50 ${percentile(latencies, 50)} ms, ` +
          `p99 ${percentile(latencies, 99)} ms`,
      );
      assert.ok(percentile(latencies, 99) < 1000, `p99 ${percentile(latencies, 99)} ms`);
      await feed.close();
      await Promise.all(loops);
    } finally {
      await feed.close();
    }
  });

  test('a LISTEN that comes back makes every stream read what it may have missed', async () => {
    // a stand-in for postgres.js re-establishing its LISTEN connection (it calls onListen again)
    let relisten = () => {};
    const fakeReconnectingDatabase = {
      listen: async (_channel: string, _onNotify: (p: string) => void, onListen?: () => void) => {
        relisten = () => onListen?.();
        onListen?.();
        return async () => {};
      },
    };
    const reader = countingStore(pgB);
    const feed = new EventFeed({
      database: fakeReconnectingDatabase,
      store: reader,
      logger,
      settings,
      safetyReadSeconds: 600,
    });
    try {
      const stream = (await feed.open('bea', 'bea', 'default', 0))!;
      assert.deepEqual(await stream.next(50), []);
      // written while this replica heard nothing
      await new InstanceStore(pgA.db).create(row('bea'), 'launch requested');
      assert.deepEqual(await stream.next(200), [], 'no notification reached the feed');
      relisten();
      assert.equal((await nextEvents(stream, 1000))[0]?.state, 'requested');
    } finally {
      await feed.close();
    }
  });
});

/** Reads an SSE response until `done(text)` holds, failing after `ms`. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  done: (text: string) => boolean,
  ms = 3000,
): Promise<string> {
  let text = '';
  const decoder = new TextDecoder();
  const deadline = Date.now() + ms;
  while (!done(text)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`not seen within ${ms} ms; got: ${text}`);
    const chunk = await Promise.race([reader.read(), sleep(left).then(() => null)]);
    if (chunk?.value) text += decoder.decode(chunk.value, { stream: true });
    if (chunk?.done) throw new Error(`the stream ended; got: ${text}`);
  }
  return text;
}

describe('the safety read, for a notification that was lost', () => {
  test('one query per period for the whole process, and only the stream with news reads', async () => {
    // a LISTEN that hears nothing: only the safety read can deliver the event
    const deaf = {
      db: pgB.db,
      listen: async () => async () => {},
    };
    const index = eventIndex(pgB.db);
    const asked = { newestId: 0, newestSince: 0 };
    const reader = countingStore(pgB);
    const feed = new EventFeed({
      database: deaf,
      store: reader,
      logger,
      settings,
      safetyReadSeconds: 0.2,
      index: {
        newestId: () => (asked.newestId++, index.newestId()),
        newestSince: (after) => (asked.newestSince++, index.newestSince(after)),
      },
    });
    const n = 20;
    const users = Array.from({ length: n }, (_, i) => `deaf${i}`);
    try {
      const streams = (await Promise.all(users.map((u) => feed.open(u, u, 'default', 0))))!;
      for (const s of streams) assert.deepEqual(await s!.next(10), []);
      const settled = reader.reads;
      assert.equal(settled, n, 'one read each when they open');
      assert.equal(asked.newestId, 1, 'the newest event id is asked once, when the LISTEN is up');
      const ticks0 = asked.newestSince;
      await sleep(1100);
      const ticks = asked.newestSince - ticks0;
      assert.ok(ticks >= 2 && ticks <= 7, `${ticks} safety reads in 1.1 s at one per 0.2 s`);
      assert.equal(reader.reads, settled, 'no stream read: nothing new');

      const created = await new InstanceStore(pgA.db).create(row('deaf7'), 'launch requested');
      const [first] = await nextEvents(streams[7]!, 2000);
      assert.equal(first?.instanceId, created?.id, 'the safety read delivered the event');
      await sleep(500);
      assert.equal(reader.reads - settled, 1, 'only the stream of that server read');
      assert.deepEqual(await streams[6]!.next(10), [], 'the others got nothing');
    } finally {
      await feed.close();
    }
  });
});

describe('GET /instances/{server}/events on PGlite', () => {
  test('open streams hear new events at once and query nothing while idle', async () => {
    const store = h.services.store;
    const users = Array.from({ length: 10 }, (_, i) => `idle${i}`);
    const created = [];
    for (const u of users) created.push((await store.create(row(u), 'launch requested'))!);
    let reads = 0;
    const serverEvents = store.serverEvents.bind(store);
    store.serverEvents = (...args) => {
      reads += 1;
      return serverEvents(...args);
    };
    const readers = [];
    try {
      for (const u of users) {
        const res = await h.request('/api/v1/instances/default/events', {
          token: h.token({ name: u }),
        });
        assert.equal(res.status, 200);
        const reader = res.body!.getReader();
        readers.push(reader);
        await readUntil(reader, (t) => t.includes('"state":"requested"'));
      }
      const settled = reads;
      await sleep(2000);
      assert.equal(reads, settled, 'no query while nothing happens');
      await store.transition(created[3]!.id, 'provisioning', 10, 'provisioning');
      await readUntil(readers[3]!, (t) => t.includes('"state":"provisioning"'), 1000);
      assert.ok(reads - settled <= 2, `${reads - settled} reads for one event`);
    } finally {
      store.serverEvents = serverEvents;
      for (const r of readers) await r.cancel();
    }
  });

  test('a user holds at most NGSCI_SSE_PER_USER streams; closing one frees its place', async () => {
    const token = h.token({ name: 'tabs' });
    const open = () => h.request('/api/v1/instances/default/events', { token });
    const held = [];
    try {
      for (let i = 0; i < settings.NGSCI_SSE_PER_USER; i++) {
        const res = await open();
        assert.equal(res.status, 200, `stream ${i + 1}`);
        held.push(res.body!.getReader());
      }
      const refused = await open();
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After is set');
      const body = (await refused.json()) as { code: string; message: string };
      assert.equal(body.code, 'rate_limited');
      assert.match(body.message, /NGSCI_SSE_PER_USER/);
      // another user is not held back
      const other = await h.request('/api/v1/instances/default/events', {
        token: h.token({ name: 'someone-else' }),
      });
      assert.equal(other.status, 200);
      await other.body!.cancel();

      await held.pop()!.cancel();
      const again = await open();
      assert.equal(again.status, 200, 'a closed stream frees its place');
      held.push(again.body!.getReader());
    } finally {
      for (const r of held) await r.cancel();
    }
  });
});
