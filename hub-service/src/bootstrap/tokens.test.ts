/**
 * Bootstrap tokens through the real app (PGlite): a cloud machine proves its identity and trades
 * its single-use token for its environment and its agent's credential; wrong or unproven
 * machines, reuse and expiry are refused and raised as security events. Identity proofs come
 * from TEST DOUBLES of the clouds' signers whose test keys the hub is configured to trust.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { eq } from 'drizzle-orm';
import { bootstrapTokens } from '../db/schema.js';
import { createLogger } from '../logger.js';
import { SecretBox } from '../secrets.js';
import { harness, type Harness } from '../testing/harness.js';
import { azureNonceFor, InstanceIdentity, type IdentityProof } from './identity.js';
import {
  TEST_DOUBLE_aws_identity_signer,
  TEST_DOUBLE_azure_identity_signer,
  TEST_DOUBLE_gcp_identity_signer,
} from './identity-test-double.js';
import { BootstrapTokens } from './tokens.js';

const SERVICE = 'https://hub.example.org/services/ngsci';
const aws = TEST_DOUBLE_aws_identity_signer();
const gcp = TEST_DOUBLE_gcp_identity_signer();
const azure = TEST_DOUBLE_azure_identity_signer();

let h: Harness;
const HUB_TOKEN = 'server-hub-token-FAKE-55aa';
const AGENT_TOKEN = 'ngsa_agent-credential-FAKE-66bb';
const logLines: string[] = [];
let clock = Date.parse('2026-01-01T00:00:00Z');
/** the same store with a clock the tests move, for windows and expiry */
let tokens: BootstrapTokens;

before(async () => {
  h = await harness({
    env: {
      NGSCI_TERRAFORM_SERVICE_URL: SERVICE,
      NGSCI_IDENTITY_AWS_CERT: aws.certificate,
      NGSCI_IDENTITY_GCP_CERTS: gcp.jwks,
      NGSCI_IDENTITY_AZURE_CERT: azure.caCertificate,
    },
  });
  const sink = new Writable({
    write: (chunk: Buffer, _e, cb) => (logLines.push(chunk.toString()), cb()),
  });
  tokens = new BootstrapTokens({
    db: h.database.db,
    box: new SecretBox('test-secret-key-0123456789'),
    logger: createLogger('info', sink),
    ttlSeconds: 900,
    repeatWindowSeconds: 300,
    identity: new InstanceIdentity({
      aws: aws.certificate,
      gcp: gcp.jwks,
      azure: azure.caCertificate,
      audience: SERVICE,
      now: () => new Date(clock),
    }),
    security: h.services.security,
    now: () => new Date(clock),
  });
});
after(async () => h.close());

let n = 0;
async function instance(cloud: 'aws' | 'gcp' | 'azure' = 'aws'): Promise<string> {
  n += 1;
  const row = await h.services.store.create(
    {
      userName: `boot${n}`,
      serverName: 'default',
      sizeId: 'gpu-t4',
      cloud,
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
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
const codeOf = async (res: Response) => ((await res.json()) as { code: string }).code;
const messages = async (id: string) => (await h.services.store.events(id)).map((e) => e.message);
const securityEvents = async (id: string) =>
  (await h.services.security.list({ limit: 500 })).filter((e) => e.instanceId === id);

/** A machine terraform made: an instance, its token, and the cloud id `terraform output` reported. */
async function machine(cloudInstanceId = `i-0${n + 1}fake`, env: Record<string, string> = {}) {
  const id = await instance();
  const token = await h.services.bootstrap.issue(
    id,
    { JUPYTERHUB_API_TOKEN: HUB_TOKEN, ...env },
    { agentToken: AGENT_TOKEN },
  );
  await h.services.bootstrap.recordCloudInstance(id, cloudInstanceId);
  return { id, token, proof: aws.prove(cloudInstanceId) as IdentityProof };
}

describe('POST /api/v1/bootstrap', () => {
  test('a machine that proves it is the one terraform made gets its environment and its agent credential, without any hub token', async () => {
    const m = await machine();
    const res = await redeem(m.token, { instanceId: m.id, identity: m.proof });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), {
      env: { JUPYTERHUB_API_TOKEN: HUB_TOKEN },
      agentToken: AGENT_TOKEN,
    });
    assert.ok(
      (await messages(m.id)).includes('machine fetched its environment (bootstrap token spent)'),
    );
  });

  test('a proof that arrives before terraform reported the machine answers 503 with Retry-After; the retry then succeeds', async () => {
    const id = await instance();
    const token = await h.services.bootstrap.issue(id, { A: 'b' });
    const proof = aws.prove('i-0early');
    const early = await redeem(token, { instanceId: id, identity: proof });
    assert.equal(early.status, 503);
    assert.equal(early.headers.get('retry-after'), '10');
    assert.equal(await codeOf(early), 'identity_pending');
    await h.services.bootstrap.recordCloudInstance(id, 'i-0early');
    const later = await redeem(token, { instanceId: id, identity: proof });
    assert.equal(later.status, 200);
  });

  test('a proof for another machine is refused with identity_refused and a critical security event; the right machine still boots', async () => {
    const m = await machine('i-0right');
    const res = await redeem(m.token, { identity: aws.prove('i-0wrong') });
    assert.equal(res.status, 401);
    assert.equal(await codeOf(res), 'identity_refused');
    const [event] = await securityEvents(m.id);
    assert.equal(event?.kind, 'identity_refused');
    assert.equal(event?.severity, 'critical');
    assert.equal(event?.details?.reason, 'wrong_machine');
    assert.equal(event?.user, `boot${n}`);
    assert.equal((await redeem(m.token, { identity: m.proof })).status, 200);
  });

  test('a forged signature, a missing proof and a proof from another cloud are refused and raised', async () => {
    const m = await machine('i-0forged');
    const forger = TEST_DOUBLE_aws_identity_signer();
    const forged = await redeem(m.token, {
      identity: forger.prove('i-0forged', { embedCertificate: true }),
    });
    assert.equal(forged.status, 401);
    assert.equal(await codeOf(forged), 'identity_refused');
    const none = await redeem(m.token, { instanceId: m.id });
    assert.equal(await codeOf(none), 'identity_refused');
    const otherCloud = await redeem(m.token, { identity: gcp.prove('i-0forged', SERVICE) });
    assert.equal(await codeOf(otherCloud), 'identity_refused');
    const reasons = (await securityEvents(m.id)).map((e) => e.details?.reason).sort();
    assert.deepEqual(reasons, ['bad_signature', 'missing', 'wrong_cloud']);
    const log = logLines.join('');
    assert.ok(!log.includes(m.token));
  });

  test('the database holds only the token hash and the sealed environment, never either secret in clear', async () => {
    const m = await machine('i-0sealed');
    const [row] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, m.id));
    assert.ok(row);
    const stored = JSON.stringify(row);
    for (const secret of [m.token, HUB_TOKEN, AGENT_TOKEN])
      assert.ok(!stored.includes(secret), 'no secret in clear');
    assert.equal(row.cloudInstanceId, 'i-0sealed');
  });

  test('a token for another instance is burnt, and malformed requests answer 400/401', async () => {
    const m = await machine('i-0burn');
    const other = await instance();
    assert.equal((await redeem(m.token, { instanceId: other, identity: m.proof })).status, 401);
    assert.equal(
      (await redeem(m.token, { instanceId: m.id, identity: m.proof })).status,
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
    assert.equal(await codeOf(invalid), 'validation_failed');
    const badProof = await redeem(m.token, {
      identity: { cloud: 'aws', document: '{}', pkcs7: '<script>' },
    });
    assert.equal(badProof.status, 400);
  });
});

describe('repeat window, expiry and the clouds (a store with a test clock)', () => {
  async function issued(cloud: 'aws' | 'gcp' | 'azure', cloudInstanceId: string) {
    const id = await instance(cloud);
    const token = await tokens.issue(
      id,
      { JUPYTERHUB_API_TOKEN: HUB_TOKEN },
      { agentToken: AGENT_TOKEN },
    );
    await tokens.recordCloudInstance(id, cloudInstanceId);
    return { id, token };
  }
  const rejectsWith = (code: string) => (e: Error & { status?: number; code?: string }) =>
    e.status === 401 && e.code === code;

  test('the same proven machine retrying within the window gets the same answer; another machine, or the same after the window, is refused and raised', async () => {
    const { id, token } = await issued('aws', 'i-0retry');
    const first = await tokens.redeem(token, { proof: aws.prove('i-0retry') });
    clock += 60_000;
    const again = await tokens.redeem(token, { proof: aws.prove('i-0retry') });
    assert.deepEqual(again, first, 'a lost response does not brick the boot');
    assert.equal(first.agentToken, AGENT_TOKEN);

    clock += 300_000;
    await assert.rejects(
      tokens.redeem(token, { proof: aws.prove('i-0retry') }),
      rejectsWith('unauthenticated'),
    );
    const [row] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, id));
    assert.equal(row?.sealedEnv, null, 'the environment is wiped once the window ends');
    const events = await securityEvents(id);
    assert.deepEqual(
      events.map((e) => [e.kind, e.severity]),
      [['bootstrap_refused', 'warning']],
    );
    assert.ok((await messages(id)).includes('bootstrap token reused'));
  });

  test('a second use by anyone without the proven identity is refused at once, inside the window', async () => {
    const { id, token } = await issued('aws', 'i-0once');
    await tokens.redeem(token, { proof: aws.prove('i-0once') });
    await assert.rejects(
      tokens.redeem(token, { proof: aws.prove('i-0thief') }),
      rejectsWith('identity_refused'),
    );
    const kinds = (await securityEvents(id)).map((e) => e.kind);
    assert.deepEqual(kinds, ['identity_refused']);
  });

  test('an expired token is refused, its environment wiped, and raised; the log names the instance, never the token', async () => {
    const { id, token } = await issued('aws', 'i-0late');
    clock += 901_000;
    await assert.rejects(
      tokens.redeem(token, { proof: aws.prove('i-0late') }),
      rejectsWith('unauthenticated'),
    );
    assert.ok((await messages(id)).includes('bootstrap token expired'));
    const [row] = await h.database.db
      .select()
      .from(bootstrapTokens)
      .where(eq(bootstrapTokens.instanceId, id));
    assert.equal(row?.sealedEnv, null);
    const [event] = await securityEvents(id);
    assert.equal(event?.kind, 'bootstrap_refused');
    assert.equal(event?.details?.reason, 'expired');
    assert.ok(!logLines.join('').includes(token) && !logLines.join('').includes(HUB_TOKEN));
  });

  test('the lifetime counts from when terraform reports the machine: a 20-minute apply still boots, and the TTL after it is the limit', async () => {
    const slow = await instance('aws');
    const token = await tokens.issue(slow, { JUPYTERHUB_API_TOKEN: HUB_TOKEN });
    clock += 1_200_000; // the apply took longer than the whole 900 s TTL
    await tokens.recordCloudInstance(slow, 'i-0slowapply');
    clock += 800_000; // then the first boot installed packages and pulled the image
    const r = await tokens.redeem(token, { proof: aws.prove('i-0slowapply') });
    assert.equal(r.env.JUPYTERHUB_API_TOKEN, HUB_TOKEN);

    const late = await instance('aws');
    const lateToken = await tokens.issue(late, { A: 'b' });
    clock += 1_200_000;
    await tokens.recordCloudInstance(late, 'i-0lateboot');
    clock += 901_000;
    await assert.rejects(
      tokens.redeem(lateToken, { proof: aws.prove('i-0lateboot') }),
      rejectsWith('unauthenticated'),
    );
    assert.ok((await messages(late)).includes('bootstrap token expired'));
  });

  test('a token whose machine never appeared within the apply window stays dead when the machine shows up after all', async () => {
    const id = await instance('aws');
    const token = await tokens.issue(id, { A: 'b' });
    clock += (1800 + 900 + 1) * 1000; // the default apply window plus the TTL
    await tokens.recordCloudInstance(id, 'i-0tooslow');
    await assert.rejects(
      tokens.redeem(token, { proof: aws.prove('i-0tooslow') }),
      rejectsWith('unauthenticated'),
    );
  });

  test('gcp: a valid identity token redeems; an expired one is refused', async () => {
    const ok = await issued('gcp', '1234567890123');
    const r = await tokens.redeem(ok.token, {
      proof: gcp.prove('1234567890123', SERVICE, { now: clock }),
    });
    assert.equal(r.env.JUPYTERHUB_API_TOKEN, HUB_TOKEN);
    const late = await issued('gcp', '222');
    await assert.rejects(
      tokens.redeem(late.token, {
        proof: gcp.prove('222', SERVICE, { expiresIn: -7200, now: clock }),
      }),
      rejectsWith('identity_refused'),
    );
    assert.equal((await securityEvents(late.id))[0]?.details?.reason, 'expired');
  });

  test("azure: attested data carrying this token's nonce redeems; one fetched for another token does not", async () => {
    const ok = await issued('azure', 'vm-aaaa');
    const r = await tokens.redeem(ok.token, {
      proof: azure.prove('vm-aaaa', azureNonceFor(ok.token)),
    });
    assert.equal(r.agentToken, AGENT_TOKEN);
    const replay = await issued('azure', 'vm-bbbb');
    await assert.rejects(
      tokens.redeem(replay.token, { proof: azure.prove('vm-bbbb', azureNonceFor(ok.token)) }),
      rejectsWith('identity_refused'),
    );
  });

  test('purging wipes unspent expired environments and spent ones past the window', async () => {
    const unspent = await issued('aws', 'i-0p1');
    const spent = await issued('aws', 'i-0p2');
    await tokens.redeem(spent.token, { proof: aws.prove('i-0p2') });
    clock += 1000;
    await tokens.purgeExpired();
    const sealed = async (id: string) =>
      (
        await h.database.db.select().from(bootstrapTokens).where(eq(bootstrapTokens.instanceId, id))
      )[0]?.sealedEnv;
    assert.ok(await sealed(unspent.id));
    assert.ok(await sealed(spent.id), 'kept for a retry within the window');
    clock += 901_000;
    assert.ok((await tokens.purgeExpired()) >= 2);
    assert.equal(await sealed(unspent.id), null);
    assert.equal(await sealed(spent.id), null);
  });

  test('with NGSCI_IDENTITY_REQUIRED=false (test doubles only) a token redeems once without a proof', async () => {
    const lax = new BootstrapTokens({
      db: h.database.db,
      box: new SecretBox('test-secret-key-0123456789'),
      logger: createLogger('silent'),
      ttlSeconds: 900,
      identityRequired: false,
      now: () => new Date(clock),
    });
    const id = await instance();
    const token = await lax.issue(id, { A: 'b' });
    assert.deepEqual((await lax.redeem(token)).env, { A: 'b' });
    await assert.rejects(lax.redeem(token), rejectsWith('unauthenticated'));
  });
});
