/**
 * Kernel variables kept at a spot notice with no browser page open, on the real stack (hub,
 * proxy, service, Postgres, the local provisioner's real single-user server and kernel): the
 * researcher keeps their variables; a notebook's kernel, started through the server's REST API,
 * runs `x = 42`; the cloud's recorded AWS notice goes through the agent path (the agent, once,
 * with the instance's own credential); the agent runs the keep-state save in the kernel itself,
 * through the server's REST API and the kernel's websocket with the server's token (no connection
 * file: the same path a cloud VM's agent takes).
 * The snapshot is on the user's persistent home with mode 0600, the service's notice says x was
 * kept, and a new kernel restores 42 for the same notebook (as the relaunched server's page does).
 * GCP's and Azure's recorded notices go the same way: the agent reports them, the researcher is
 * told, and the server's event stream carries the notice (where an open page hears of it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SPOT_NOTICE_PHRASE } from '@ngsci/contract';
import WebSocket from 'ws';
import { feedSpotNotice, recordedSpotNotice, type SpotMetadata } from './spot-metadata.js';
import { runKernelDriver } from './kernel-driver.js';
import { environOf, startStack, until, type Stack } from './stack.js';

const NOTEBOOK = 'spot.ipynb';

interface Notice {
  kind: string;
  title: string;
  body: string;
}

describe('a spot notice with keep-state and no page open: the agent saves the variables', () => {
  let stack: Stack;
  let token: string;
  let metadata: SpotMetadata;
  let ws: WebSocket | null = null;

  before(async () => {
    stack = await startStack({ database: 'postgres', env: { NGSCI_HOME_GB: '0' } });
    token = await stack.userToken('researcher');
    metadata = await recordedSpotNotice();
  });
  after(async () => {
    ws?.close();
    await metadata?.close();
    await stack?.stop();
  });

  const notices = async () =>
    (
      (await (await stack.api('/notifications', token)).json()) as {
        notifications: Notice[];
      }
    ).notifications;

  /** Runs a cell in the kernel over its websocket (as a notebook does: counted in history). */
  async function execute(kernelId: string, code: string): Promise<void> {
    ws = new WebSocket(
      `${stack.url.replace(/^http/, 'ws')}/user/researcher/api/kernels/${kernelId}/channels`,
      { headers: { authorization: `token ${token}` } },
    );
    await new Promise<void>((resolve, reject) => {
      ws!.once('open', () => resolve());
      ws!.once('error', reject);
    });
    const msgId = randomUUID();
    const reply = new Promise<{ status: string }>((resolve) =>
      ws!.on('message', (data) => {
        const m = JSON.parse(String(data)) as {
          msg_type: string;
          parent_header: { msg_id?: string };
          content: { status: string };
        };
        if (m.msg_type === 'execute_reply' && m.parent_header.msg_id === msgId) resolve(m.content);
      }),
    );
    ws.send(
      JSON.stringify({
        header: {
          msg_id: msgId,
          username: 'researcher',
          session: randomUUID(),
          msg_type: 'execute_request',
          version: '5.3',
          date: new Date().toISOString(),
        },
        parent_header: {},
        metadata: {},
        content: {
          code,
          silent: false,
          store_history: true,
          user_expressions: {},
          allow_stdin: false,
          stop_on_error: true,
        },
        channel: 'shell',
        buffers: [],
      }),
    );
    assert.equal((await reply).status, 'ok');
    ws.close();
    ws = null;
  }

  test('the snapshot is on the home (0600), the notice says x was kept, a new kernel gets 42 back', async () => {
    const t0 = Date.now();
    const put = await stack.api('/me/preemption', token, {
      method: 'PUT',
      body: JSON.stringify({ keepState: true }),
    });
    assert.equal(put.status, 200, await put.clone().text());
    const launched = await stack.api('/instances', token, {
      method: 'POST',
      body: JSON.stringify({ size: 'cpu-small', spot: true }),
    });
    assert.equal(launched.status, 202, await launched.clone().text());
    const inst = await until(
      async () => {
        const i = (await (await stack.api('/instances/default', token)).json()) as {
          id: string;
          state: string;
        };
        if (i.state === 'failed') throw new Error(`the instance failed: ${JSON.stringify(i)}`);
        return i.state === 'running' ? i : null;
      },
      'the spot server running',
      90,
      stack,
    );

    // a notebook's kernel, through the server's REST API (no page): a session for spot.ipynb
    const session = await until(
      async () => {
        const r = await fetch(`${stack.url}/user/researcher/api/sessions`, {
          method: 'POST',
          headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            path: NOTEBOOK,
            name: NOTEBOOK,
            type: 'notebook',
            kernel: { name: 'python3' },
          }),
        });
        return r.status === 201 ? ((await r.json()) as { kernel: { id: string } }) : null;
      },
      'a notebook session',
      60,
      stack,
    );
    await execute(session.kernel.id, 'x = 42');

    // the cloud's notice, through the agent (once, with the instance's own credential)
    const log = await feedSpotNotice(inst.id, metadata.url);
    assert.match(log, /kernel variables saved: 1 in 1 of 1 notebooks, 0 not kept/, log);

    // on the persistent home, only the user's
    const home = environOf(stack.pidOf(inst.id)!).HOME!;
    const name = `${createHash('sha256').update(NOTEBOOK).digest('hex').slice(0, 32)}.pkl`;
    const snapshot = statSync(join(home, '.ngsci', 'state', name));
    assert.equal(snapshot.mode & 0o777, 0o600);
    assert.equal(statSync(join(home, '.ngsci', 'state')).mode & 0o777, 0o700);

    // the researcher is told what was kept
    const told = await until(
      async () => (await notices()).find((n) => /variables were saved/.test(n.title)),
      "the agent's notice of what was kept",
      20,
      stack,
    );
    assert.equal(told.kind, 'spot');
    assert.match(told.body, /Kept: spot\.ipynb: x\./);
    const warned = (await notices()).find((n) => /reclaiming/.test(n.title));
    assert.match(warned?.body ?? '', /variables are being saved on the machine/);

    // the relaunched server's notebook: a new kernel (another instance) restores it
    const restored = await runKernelDriver({
      env: { ...environOf(stack.pidOf(inst.id)!), NGSCI_INSTANCE_ID: 'i-relaunched' },
      cwd: home,
      cells: [
        'from ngsci_magic import keep_state as ks\n' +
          `r = ks.restore(${JSON.stringify(NOTEBOOK)})\n` +
          'print(r["found"], [v["name"] for v in r["restored"]], x)',
      ],
    });
    assert.equal(restored.status, 0, restored.stderr);
    const [cell] = restored.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { stdout: string; error: unknown });
    assert.equal(cell?.error, null, restored.stdout);
    assert.equal(cell?.stdout.trim(), "True ['x'] 42");
    process.stderr.write(`spot-agent-save: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  });

  test("GCP's and Azure's recorded notices reach the researcher the same way", async () => {
    for (const [cloud, name] of [
      ['gcp', 'Google Cloud'],
      ['azure', 'Azure'],
    ] as const) {
      const launched = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small', spot: true, server: cloud }),
      });
      assert.equal(launched.status, 202, await launched.clone().text());
      const inst = await until(
        async () => {
          const i = (await (await stack.api(`/instances/${cloud}`, token)).json()) as {
            id: string;
            state: string;
          };
          if (i.state === 'failed') throw new Error(`the instance failed: ${JSON.stringify(i)}`);
          return i.state === 'running' ? i : null;
        },
        `the ${cloud} spot server running`,
        90,
        stack,
      );
      const log = await feedSpotNotice(inst.id, metadata.url, cloud);
      // no notebook runs on this server: the agent still asks, and says there was none
      assert.match(log, /kernel variables saved: 0 in 0 of 0 notebooks/, log);
      const warned = await until(
        async () =>
          (await notices()).find(
            (n) =>
              n.title === `${name} is reclaiming your machine` && n.body.includes(`'${cloud}'`),
          ),
        `the ${cloud} spot notice`,
        20,
        stack,
      );
      assert.equal(warned.kind, 'spot');
      // the server's event stream carries it too: an open page hears of it from there at once
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), 15_000);
      const res = await stack.api(`/instances/${cloud}/events`, token, { signal: ctl.signal });
      let seen = '';
      try {
        for await (const chunk of res.body!) {
          seen += Buffer.from(chunk).toString();
          if (seen.includes(`${name} ${SPOT_NOTICE_PHRASE}`)) break;
        }
      } catch (err) {
        if (!ctl.signal.aborted) throw err;
      } finally {
        clearTimeout(timer);
        ctl.abort();
      }
      assert.ok(seen.includes(`${name} ${SPOT_NOTICE_PHRASE}`), seen);
    }
  });
});
