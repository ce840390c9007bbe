/**
 * A database of its own for one test file, on the Postgres server at NGSCI_TEST_PG_URL (default
 * the local one, trust auth): created with the schema migrated, opened as many times as the file
 * needs (each `open()` is a pool of its own, as a second service replica would have), and dropped
 * with every pool closed by `drop()`.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase, type Database } from '../db/client.js';

const ADMIN_URL = process.env.NGSCI_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface FreshPostgres {
  /** the database's connection URL */
  url: string;
  /** a new pool on the database (the first one migrated it) */
  open(): Promise<Database>;
  /** closes every pool `open()` gave out, then drops the database */
  drop(): Promise<void>;
}

async function asAdmin(statement: string): Promise<void> {
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

/** Creates `<prefix>_<random>` and migrates it. */
export async function freshPostgres(prefix: string): Promise<FreshPostgres> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await asAdmin(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const pools: Database[] = [];
  const open = async (): Promise<Database> => {
    const db = await openDatabase({ url: url.toString(), dataDir: '' });
    pools.push(db);
    return db;
  };
  await (await open()).migrate();
  return {
    url: url.toString(),
    open,
    drop: async () => {
      for (const db of pools.splice(0)) await db.close();
      await asAdmin(`drop database if exists ${name} with (force)`);
    },
  };
}
