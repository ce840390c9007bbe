/**
 * Bootstrap tokens through the real app (PGlite): a cloud machine trades its single-use token for
 * its environment once; reuse and expiry are refused and recorded as security events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { eq } from 'drizzle-orm';
import { bootstrapTokens } from '../db/schema.js';
import { createLogger } from '../logger.js';
import { SecretBox } from '../secrets.js';
import { harness, type Harness } from '../testing/harness.js';
import { BootstrapTokens } from './tokens.js';

let h: Harness;
const HUB_TOKEN = 'server-hub-token-FAKE-55aa';
const logLines: string[] = [];
let clock = Date.parse('2026-01-01T00:00:00Z');
let tokens: BootstrapTokens;

before(async () => {
  h = await harness();
  const sink = new Writable({
    write: (chunk: Buffer, _e, cb) => (logLines.push(chunk.toString()), cb()),
  });
  tokens = new BootstrapTokens({
    db: h.database.db,
    box: new SecretBox('test-secret-key-0123456789'),
    logger: createLogger('info', sink),
    ttlSeconds: 900,
    now: () => new Date(clock),
  });
});
after(async () => h.close());

let n = 0;
async function instance(): Promise<string> {
  n += 1;
  const row = await h.services.store.create(
    {
      userName: `boot${n}`,
      serverName: 'default',
      sizeId: 'gpu-t4',
      cloud: 'aws',
      region: 'us-east-1',
      spot: false,
      state: 'provisioning',
      listRatePerHourMicros: 526_000,
      baseUrl: `/user/boot${n}/`,
    },
    'requested',
  );
  assert.ok(row);
  return row.id;
}

const redeem = (token: string, body?: object) =>
  h.request('/api/v1/bootstrap', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: body ? JSON.stringify(body) : undefined,
  });

const messages = async (id: string) => (await h.services.store.events(id)).map((e) => e.message);

describe('POST /api/v1/bootstrap', () => {
  test('a machine trades its token once for its environment, without any hub token', async () => {
    const id = await instance();
    const env = { JUPYTERHUB_API_TOKEN: HUB_TOKEN, JUPYTERHUB_USER: 'boot' };
    const token = await h.services.bootstrap.issue(id, env);
    const res = await redeem(token, { instanceId: id });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { env });

    const again = await redeem(token, { instanceId: id });
    assert.equal(again.status, 401);
    assert.equal(((await again.json()) as { code: string }).code, 'unauthenticated');
    assert.ok(
      (await messages(id)).includes('bootstrap token reused'),
      'the reuse is in the instance history',
    );
  });

  test('the database holds only the token hash, and forgets the environment once it is spent', async () => {
    const id = await instance();
    const token = await h.services.bootstrap.issue(id, { JUPYTERHUB_API_TOKEN: HUB_TOKEN });
    const [row] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, id));
    assert.ok(row);
    const stored = JSON.stringify(row);
    assert.ok(
      !stored.includes(token) && !stored.includes(HUB_TOKEN),
      'neither the token nor the hub token in clear',
    );
    assert.equal((await redeem(token)).status, 200);
    const [spent] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, id));
    assert.equal(spent?.sealedEnv, null);
    assert.ok(spent?.usedAt);
  });

  test('a token for another instance, a malformed header and an unknown token all answer 401', async () => {
    const id = await instance();
    const other = await instance();
    const token = await h.services.bootstrap.issue(id, { A: 'b' });
    assert.equal((await redeem(token, { instanceId: other })).status, 401);
    assert.equal(
      (await redeem(token, { instanceId: id })).status,
      401,
      'a token shown by the wrong machine is burnt',
    );
    const bad = await h.request('/api/v1/bootstrap', {
      method: 'POST',
      headers: { authorization: 'token nope' },
    });
    assert.equal(bad.status, 401);
    assert.equal((await redeem('ngb_not-a-real-token-at-all')).status, 401);
    const invalid = await redeem('ngb_not-a-real-token-at-all', { instanceId: 'not-a-uuid' });
    assert.equal(invalid.status, 400);
    assert.equal(((await invalid.json()) as { code: string }).code, 'validation_failed');
  });
});

describe('security events', () => {
  test('an expired token is refused, its environment wiped, and a warning names the instance but never the token', async () => {
    const id = await instance();
    const token = await tokens.issue(id, { JUPYTERHUB_API_TOKEN: HUB_TOKEN });
    clock += 901_000;
    await assert.rejects(
      tokens.redeem(token),
      (e: Error & { status?: number; code?: string }) =>
        e.status === 401 && e.code === 'unauthenticated',
    );
    assert.ok((await messages(id)).includes('bootstrap token expired'));
    const [row] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, id));
    assert.equal(row?.sealedEnv, null);
    const warning = logLines
      .map((l) => JSON.parse(l) as { level: number; instance?: string; securityEvent?: string })
      .find((l) => l.securityEvent === 'bootstrap_token_expired');
    assert.equal(warning?.instance, id);
    assert.equal(warning?.level, 40, 'logged at warn');
    assert.ok(!logLines.join('').includes(token) && !logLines.join('').includes(HUB_TOKEN));
  });

  test('unspent tokens past their expiry lose their sealed environment when purged', async () => {
    const id = await instance();
    await tokens.issue(id, { JUPYTERHUB_API_TOKEN: HUB_TOKEN });
    assert.equal(await tokens.purgeExpired(), 0);
    clock += 901_000;
    assert.ok((await tokens.purgeExpired()) >= 1);
    const [row] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, id));
    assert.equal(row?.sealedEnv, null);
  });
});
