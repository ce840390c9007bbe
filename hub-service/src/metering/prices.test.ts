/**
 * Price overrides reach every replica: two PriceBooks on one database stand for two replicas. A
 * change made through one is seen by the other through the notification, without waiting for its
 * interval; and a replica that hears nothing (a lost notification) still catches up by its interval.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../db/client.js';
import { openMemoryDatabase, seed } from '../db/client.js';
import { buildCatalog } from '../catalog.js';
import { createLogger } from '../logger.js';
import { PriceOverrideStore } from './admin-store.js';
import { PriceBook } from './prices.js';

const base = buildCatalog({ clouds: ['local'], defaultCloud: 'local' });
const logger = createLogger('silent');

const priceOf = (book: PriceBook, size: string) =>
  book
    .catalog()
    .sizes.find((s) => s.id === size)!
    .offers.find((o) => o.cloud === 'local')!.onDemandMicrosPerHour;

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let database: Database;
before(async () => {
  database = await openMemoryDatabase();
  await database.migrate();
  await seed(database.db);
});
after(async () => database.close());

test("an admin's change on one replica is quoted by the other before its next interval", async () => {
  const one = new PriceBook(database.db, () => base);
  const two = new PriceBook(database.db, () => base);
  await Promise.all([one.refresh(), two.refresh()]);
  const size = base.sizes[0]!.id;
  const listPrice = priceOf(two, size);
  // an interval far longer than the test: only the notification can bring the change
  const stop = await two.follow({ database, intervalSeconds: 3600, logger });
  try {
    await new PriceOverrideStore(database.db).put({
      sizeId: size,
      cloud: 'local',
      onDemandMicrosPerHour: listPrice + 123_456,
      spotMicrosPerHour: null,
      note: null,
      updatedAt: new Date(),
    });
    await one.changed();
    assert.equal(priceOf(one, size), listPrice + 123_456, 'the replica that made the change');
    await until('the other replica to hear of the change', () => priceOf(two, size) !== listPrice);
    assert.equal(priceOf(two, size), listPrice + 123_456);
  } finally {
    await stop();
  }
});

test('a replica that missed the notification catches up within one interval', async () => {
  const size = base.sizes[1]!.id;
  const deaf = new PriceBook(database.db, () => base);
  // a database whose LISTEN never hears anything: the notification is lost
  const silent: Pick<Database, 'listen'> = { listen: async () => async () => {} };
  await deaf.refresh();
  const stop = await deaf.follow({ database: silent, intervalSeconds: 0.2, logger });
  try {
    const listPrice = priceOf(deaf, size);
    // written straight to the table, announced to nobody
    await new PriceOverrideStore(database.db).put({
      sizeId: size,
      cloud: 'local',
      onDemandMicrosPerHour: listPrice * 2,
      spotMicrosPerHour: null,
      note: null,
      updatedAt: new Date(),
    });
    await until('the interval reload', () => priceOf(deaf, size) === listPrice * 2);
  } finally {
    await stop();
  }
  // after stop, nothing reloads any more
  await new PriceOverrideStore(database.db).delete(size, 'local');
  await new Promise((r) => setTimeout(r, 500));
  assert.notEqual(priceOf(deaf, size), priceOf(new PriceBook(database.db, () => base), size));
});
