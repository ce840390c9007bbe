/**
 * The hub restarted while its user's local instance runs, and the instance's server killed with
 * it (as `docker compose restart hub` does: the instances live in the hub's container). The new
 * hub checks the server before its managed service is up; it must learn from the service that the
 * instance ended and give the user the spawn form back, not "Your server is starting up… 0%"
 * (docs/deploy-docker.md). Then a new launch works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hubServerReady, isAlive, startStack, until } from './stack.js';

interface Inst {
  id: string;
  state: string;
}
interface HubUser {
  servers: Record<string, { pending: string | null; ready: boolean }>;
}

test('a server killed across a hub restart is reported stopped, and the user can launch again', async (t) => {
  const stack = await startStack({ database: 'pglite' });
  try {
    const token = await stack.userToken('researcher');
    const launch = async (): Promise<Inst> => {
      const res = await stack.api('/instances', token, {
        method: 'POST',
        body: JSON.stringify({ size: 'cpu-small' }),
      });
      assert.ok(res.status < 300, `launch answered ${res.status}: ${await res.text()}`);
      const running = await until(
        async () => {
          const i = (await (await stack.api('/instances/default', token)).json()) as Inst;
          return i.state === 'running' ? i : null;
        },
        'the instance to run',
        120,
        stack,
      );
      await hubServerReady(stack, 'researcher');
      return running;
    };
    const first = await launch();
    const pid = stack.pidOf(first.id);
    assert.ok(pid, 'the instance has a server process');

    process.kill(stack.pid, 'SIGUSR2');
    await until(
      async () =>
        !(await fetch(`${stack.url}/hub/api/`).then(
          (r) => r.ok,
          () => false,
        )),
      'the hub to go down',
      60,
      stack,
    );
    // the container restart takes the server with it
    process.kill(pid!, 'SIGKILL');
    await until(async () => !isAlive(pid!), 'the server process to be gone', 20);
    await until(
      async () => (await fetch(`${stack.url}/hub/api/`)).ok,
      'the hub to come back',
      120,
      stack,
    );

    // the hub drops the dead server instead of waiting on it ("starting up… 0%")
    const user = await until(
      async () => {
        const u = (await (await stack.hub('/users/researcher')).json()) as HubUser;
        return u.servers[''] === undefined ? u : null;
      },
      "the hub to drop the researcher's dead server",
      90,
      stack,
    );
    assert.deepEqual(user.servers, {});
    const log = stack.logTail(2000);
    assert.doesNotMatch(log, /does not appear to be running at/);
    assert.match(log, /appears to have stopped while the Hub was down/);
    const old = (await (await stack.api('/instances/default', token)).json()) as Inst;
    assert.equal(old.id, first.id);
    t.diagnostic(`the service records the killed instance ${old.state}`);
    assert.ok(['stopped', 'failed'].includes(old.state), JSON.stringify(old));

    // and a new launch works, through the hub's spawn
    const second = await launch();
    assert.notEqual(second.id, first.id);
  } finally {
    await stack.stop();
  }
});
