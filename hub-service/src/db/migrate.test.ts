/**
 * Replicas that start together on one new Postgres database: each migrates, and every one of them
 * must come up (one applies the migrations under an advisory lock; the others find them applied).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase } from './client.js';

const ADMIN_URL = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

test('three replicas migrating one new database at once all start', async () => {
  const name = `ngsci_migrate_${randomBytes(4).toString('hex')}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const replicas = await Promise.all(
    [1, 2, 3].map(() => openDatabase({ url: url.toString(), dataDir: '' })),
  );
  try {
    const results = await Promise.allSettled(replicas.map((d) => d.migrate()));
    assert.deepEqual(
      results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')),
      ['ok', 'ok', 'ok'],
    );
    const check = postgres(url.toString(), { max: 1, onnotice: () => {} });
    const [{ n }] = await check<[{ n: number }]>`
      select count(*)::int as n from drizzle.__drizzle_migrations`;
    const [{ distinct }] = await check<[{ distinct: number }]>`
      select count(distinct hash)::int as distinct from drizzle.__drizzle_migrations`;
    await check.end();
    assert.equal(n, distinct, 'each migration recorded once');
  } finally {
    await Promise.all(replicas.map((d) => d.close()));
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
});
