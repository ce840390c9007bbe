/**
 * The foundation, end to end: a real JupyterHub with the project's own config, the service as a
 * managed service, real jupyterhub-singleuser processes, once on PGlite and once on Postgres.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hubServerReady, isAlive, startStack, until, type Stack } from './stack.js';

interface Inst {
  id: string;
  state: string;
  size: string;
  url: string | null;
  errorCode: string | null;
  exitCode: number | null;
}

for (const database of ['pglite', 'postgres'] as const) {
  describe(`foundation on ${database}`, () => {
    let stack: Stack;
    let token: string;
    const user = 'researcher';

    before(async () => {
      stack = await startStack({
        database,
        env: {
          NGSCI_HUB_EXTRA_CONFIG: JSON.stringify({
            'Spawner.poll_interval': 2,
            'JupyterHub.named_server_limit_per_user': 1,
          }),
        },
      });
      token = await stack.userToken(user);
    });
    after(async () => stack?.stop());

    const get = async (path: string) => (await (await stack.api(path, token)).json()) as Inst;
    const waitFor = (pred: (i: Inst) => boolean, what: string, seconds = 90) =>
      until(
        async () => {
          const i = await get('/instances/default');
          return pred(i) ? i : null;
        },
        what,
        seconds,
        stack,
      );

    test('a token reaches /me; no token is 401; a token without the access scope is 403', async () => {
      const me = await stack.api('/me', token);
      assert.equal(me.status, 200);
      const body = (await me.json()) as { name: string; admin: boolean; plan: { id: string } };
      assert.equal(body.name, user);
      assert.equal(body.admin, false);
      assert.equal(body.plan.id, 'private');

      const none = await stack.api('/me', null);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as { code: string }).code, 'unauthenticated');

      const narrow = await stack.userToken(user, ['read:users:name!user=researcher']);
      const denied = await stack.api('/me', narrow);
      assert.equal(denied.status, 403);
      assert.equal(((await denied.json()) as { code: string }).code, 'forbidden');

      const adminToken = await stack.userToken('admin');
      const adminMe = (await (await stack.api('/me', adminToken)).json()) as { admin: boolean };
      assert.equal(adminMe.admin, true, 'hub admins hold custom:ngsci:admin');
    });

    test('a launched instance comes up ready and proxied: /user/<name>/lab answers 200', async () => {
      const res = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const running = await waitFor(
        (i) => i.state === 'running' || i.state === 'failed',
        'the instance to run',
      );
      assert.equal(running.state, 'running', JSON.stringify(running));
      assert.equal(running.url, `/user/${user}/`);

      const server = await hubServerReady(stack, user);
      assert.equal(server.user_options.size, 'cpu-small');

      const lab = await until(
        async () => {
          const r = await fetch(`${stack.url}/user/${user}/lab`, {
            headers: { authorization: `token ${token}` },
            redirect: 'manual',
          });
          return r.status === 200 ? r : null;
        },
        'JupyterLab through the proxy',
        30,
        stack,
      );
      assert.match(await lab.text(), /jupyter-config-data/);

      const twice = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.equal(twice.status, 409);
    });

    test("resizing shows the new size in the hub's user_options and in the process's environment", async () => {
      const before = await get('/instances/default');
      const res = await stack.api('/instances/default/resize', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-large' }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const resized = await waitFor(
        (i) => i.id !== before.id && (i.state === 'running' || i.state === 'failed'),
        'the new size to run',
        120,
      );
      assert.equal(resized.state, 'running', JSON.stringify(resized));
      assert.equal(resized.size, 'cpu-large');

      const hubUser = (await (await stack.hub(`/users/${user}`)).json()) as {
        servers: Record<string, { user_options: { size: string } }>;
      };
      assert.equal(hubUser.servers['']?.user_options.size, 'cpu-large');

      const pid = stack.pidOf(resized.id);
      assert.ok(pid, 'the new process has a pid file');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes(`MEM_LIMIT=${32 * 1024 ** 3}`), 'MEM_LIMIT is the new size');
      assert.ok(environ.includes('CPU_LIMIT=8'));
      assert.equal(stack.pidOf(before.id), null, 'the old process is gone');
    });

    test('stopping: the process is gone and the hub shows no server', async () => {
      const running = await get('/instances/default');
      const pid = stack.pidOf(running.id);
      assert.ok(pid && isAlive(pid));
      const res = await stack.api('/instances/default/stop', token, { method: 'POST' });
      assert.equal(res.status, 202);
      await waitFor((i) => i.state === 'stopped', 'stopped');
      assert.equal(isAlive(pid), false);
      await until(
        async () => {
          const u = (await (await stack.hub(`/users/${user}`)).json()) as {
            servers: Record<string, unknown>;
          };
          return !u.servers[''];
        },
        'the hub to show no server',
        30,
        stack,
      );
      const again = await stack.api('/instances/default/stop', token, { method: 'POST' });
      assert.equal(again.status, 404);
    });

    test('a crashed server is recorded as failed with its exit code, and the hub drops it', async () => {
      await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small', server: 'crashy' }),
      });
      const running = await until(
        async () => {
          const i = (await (await stack.api('/instances/crashy', token)).json()) as Inst;
          return i.state === 'running' ? i : null;
        },
        'crashy to run',
        90,
        stack,
      );
      // a crash of a server the hub has taken in (its route added, its end listened for); a
      // server that dies while the hub still checks it is dropped when that check gives up
      // (the spawner's http_timeout)
      await hubServerReady(stack, user, 'crashy');
      const pid = stack.pidOf(running.id);
      assert.ok(pid);
      process.kill(pid, 'SIGKILL');
      const failed = await until(
        async () => {
          const i = (await (await stack.api('/instances/crashy', token)).json()) as Inst;
          return i.state === 'failed' ? i : null;
        },
        'the crash to be recorded',
        30,
        stack,
      );
      assert.equal(failed.errorCode, 'process_exited');
      assert.equal(failed.exitCode, 137);
      await until(
        async () => {
          const u = (await (await stack.hub(`/users/${user}`)).json()) as {
            servers: Record<string, unknown>;
          };
          return !u.servers.crashy;
        },
        // the hub polls every 2 s (Spawner.poll_interval above); a loaded machine slows each
        // poll's round trip through the spawner and the service
        'the hub to notice the crash',
        60,
        stack,
      );
    });

    test('bad input: unknown size, a name the hub refuses, a stranger', async () => {
      const unknown = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'gpu-x1', server: 'e2' }),
      });
      assert.equal(unknown.status, 400);
      assert.equal(((await unknown.json()) as { code: string }).code, 'unknown_size');
      // 'crashy' is this user's one named server: the hub refuses a second (named_server_limit_per_user = 1)
      const refused = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small', server: 'e3' }),
      });
      assert.equal(refused.status, 400, await refused.clone().text());
      const body = (await refused.json()) as { code: string; message: string };
      assert.equal(body.code, 'hub_refused');
      assert.match(body.message, /maximum/);
      assert.equal(
        (await stack.api('/instances/e3', token)).status,
        404,
        'nothing was made for the refused server',
      );
      const other = await stack.api('/instances/default/stop?user=admin', token, {
        method: 'POST',
      });
      assert.equal(other.status, 403);
      const list = (await (await stack.api('/instances?all=true', token)).json()) as {
        instances: Inst[];
      };
      assert.ok(list.instances.every((i) => i.state === 'stopped' || i.state === 'failed'));
    });
  });
}
