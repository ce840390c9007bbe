/**
 * No credential of the service reaches a user's server. The researcher's home carries a
 * `~/.jupyter/jupyter_server_config.py` that records the headers and query of every request its
 * real single-user server receives — exactly what a malicious researcher would install. Then the
 * server lives through what the service does to servers: readiness and health checks, metering,
 * idle-culling warnings, a resize (a new server on the same home) and a cull. Every credential the
 * recorder saw must be the researcher's own, without admin power; the service's hub token and the
 * bridge secret never appear. Also: the agent's credential is not in the server's environment, and
 * a user token cannot post as the agent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, until, type Stack } from './stack.js';

const RECORDER = `
import json, os, time

_record = os.path.join(os.path.expanduser("~"), "seen-headers.jsonl")

def _log_every_request(handler):
    req = handler.request
    with open(_record, "a") as f:
        f.write(json.dumps({"t": time.time(), "method": req.method, "uri": req.uri,
                            "headers": dict(req.headers)}) + "\\n")

c.ServerApp.tornado_settings = {"log_function": _log_every_request}
`;

let stack: Stack;
let token: string;

interface Inst {
  id: string;
  state: string;
  size: string;
}

before(async () => {
  stack = await startStack({
    database: 'pglite',
    env: {
      NGSCI_METER_INTERVAL: '1',
      NGSCI_METER_ACCRUE_EVERY: '1',
      NGSCI_CULL_EVERY: '1',
      NGSCI_CULL_WARNING: '2',
      NGSCI_RUNNING_POLL_INTERVAL: '1',
      NGSCI_HOME_GB: '0',
    },
  });
  token = await stack.userToken('researcher');
  const home = join(stack.dataDir, 'homes', 'researcher');
  mkdirSync(join(home, '.jupyter'), { recursive: true });
  writeFileSync(join(home, '.jupyter', 'jupyter_server_config.py'), RECORDER);
});

after(async () => {
  await stack?.stop();
});

const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;
const instances = async (): Promise<Inst[]> =>
  (await json<{ instances: Inst[] }>(await stack.api('/instances', token))).instances;

async function waitFor(state: string[], what: string, seconds = 120): Promise<Inst> {
  return until(
    async () => {
      const list = await instances();
      const i = list.find((x) => x.size && state.includes(x.state));
      return i ?? null;
    },
    what,
    seconds,
    stack,
  );
}

function serviceEnv(): Record<string, string> {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (!cmd.includes('hub-service/dist/index.js')) continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (!env.some((e) => e === `NGSCI_DATA_DIR=${stack.dataDir}`)) continue;
      return Object.fromEntries(
        env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
      );
    } catch {
      // gone, or not ours
    }
  }
  throw new Error('the service process was not found');
}

test('nothing the service sends to a user server carries its token, the bridge secret or admin power', async () => {
  const launched = await stack.api('/instances', token, {
    method: 'POST',
    body: JSON.stringify({ size: 'cpu-small' }),
  });
  assert.equal(launched.status, 202, await launched.clone().text());
  const first = await waitFor(['running'], 'the first server');

  // the agent's credential went to the agent only: not in the server's environment
  const pid = stack.pidOf(first.id);
  assert.ok(pid, 'the server process');
  const serverEnv = readFileSync(`/proc/${pid}/environ`, 'utf8');
  assert.ok(!serverEnv.includes('NGSCI_AGENT_TOKEN'), 'the server has no agent credential');
  // ... and a user token cannot speak for the agent
  const forged = await stack.api('/agent/kernels', token, {
    method: 'POST',
    body: JSON.stringify({ total: 1, busy: 1 }),
  });
  assert.equal(forged.status, 403);

  // the recorder works: our own request through the proxy is in it
  const viaProxy = await fetch(`${stack.url}/user/researcher/api/status`, {
    headers: { authorization: `token ${token}` },
  });
  assert.equal(viaProxy.status, 200);
  // health checks and meter cycles run every second; give them a few
  await new Promise((r) => setTimeout(r, 5000));

  // a resize: the old server stops, a new one starts on the same home (and the same recorder)
  const resized = await stack.api('/instances/default/resize', token, {
    method: 'POST',
    body: JSON.stringify({ size: 'cpu-large' }),
  });
  assert.equal(resized.status, 202, await resized.clone().text());
  await until(
    async () => {
      const list = await instances();
      return list.find((x) => x.state === 'running' && x.id !== first.id) ?? null;
    },
    'the resized server',
    180,
    stack,
  );

  // a short idle timeout: the culler warns, then stops the server
  const quota = await stack.api('/admin/quotas', await stack.userToken('admin'), {
    method: 'POST',
    body: JSON.stringify({
      subjectKind: 'user',
      subjectName: 'researcher',
      idleTimeoutCpuSeconds: 4,
    }),
  });
  assert.equal(quota.status, 201, await quota.clone().text());
  await until(
    async () => {
      const list = await instances();
      return list.every((x) => !['running', 'starting', 'stopping'].includes(x.state));
    },
    'the idle server to be culled',
    120,
    stack,
  );

  const recordFile = join(stack.dataDir, 'homes', 'researcher', 'seen-headers.jsonl');
  assert.ok(existsSync(recordFile), 'the recorder wrote its file');
  const seen = readFileSync(recordFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { uri: string; headers: Record<string, string> });
  assert.ok(
    seen.some((r) => r.uri.startsWith('/user/researcher/api/status')),
    'the recorder saw our request',
  );

  const env = serviceEnv();
  const serviceToken = env.JUPYTERHUB_API_TOKEN;
  // the service gets the bridge secret in its secrets file, not its environment (configure_hub)
  const bridgeSecret = stack.bridgeSecret;
  assert.ok(serviceToken && serviceToken.length > 8, 'found the service token');
  assert.ok(bridgeSecret && bridgeSecret.length > 8, 'found the bridge secret');
  const credentials = new Set<string>();
  for (const r of seen) {
    const blob = `${r.uri} ${JSON.stringify(r.headers)}`;
    assert.ok(!blob.includes(serviceToken), `the service token reached the server: ${r.uri}`);
    assert.ok(!blob.includes(bridgeSecret), `the bridge secret reached the server: ${r.uri}`);
    const auth = Object.entries(r.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
    const m = auth ? /^(?:token|bearer)\s+(\S+)/i.exec(auth) : null;
    if (m) credentials.add(m[1]!);
    const q = /[?&]token=([^&]+)/.exec(r.uri);
    if (q) credentials.add(decodeURIComponent(q[1]!));
  }
  // every credential that did arrive is the researcher's own, and none carries admin power
  for (const cred of credentials) {
    const who = await fetch(`${stack.url}/hub/api/user`, {
      headers: { authorization: `token ${cred}` },
    });
    if (who.status !== 200) continue; // not a hub token at all
    const model = (await who.json()) as { name: string; kind?: string; scopes: string[] };
    assert.equal(model.kind ?? 'user', 'user', 'a service credential reached the server');
    assert.equal(model.name, 'researcher');
    for (const s of model.scopes)
      assert.ok(
        !/^custom:ngsci:admin|^admin[:-]|^servers$|^access:servers$|^tokens$/.test(s),
        `an admin-scoped token reached the server: ${s}`,
      );
  }
});
