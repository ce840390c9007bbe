/** `ngsci launch --spot --on-preemption …`: checked before anything is sent, then sent as given. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { fakeService } from '../testing.js';

function io(answer: () => Response) {
  const t = fakeService(answer, 'tok-secret-123');
  return { ...t, bodies: () => t.calls.map((c) => c.body) };
}

describe('ngsci launch --on-preemption', () => {
  test('a bad choice, or one without --spot, exits 2 and sends nothing', async () => {
    for (const [argv, pattern] of [
      [['launch', 'gpu-t4', '--spot', '--on-preemption', 'later'], /on-demand, spot or stop/],
      [['launch', 'gpu-t4', '--on-preemption', 'stop'], /add --spot/],
    ] as const) {
      const t = io(() => Response.json({}));
      assert.equal(await run([...argv], t.io), 2, argv.join(' '));
      assert.match(t.err(), pattern);
      assert.equal(t.bodies().length, 0);
    }
  });

  test('the choice goes with the launch', async () => {
    const t = io(() =>
      Response.json({ code: 'quota_exceeded', message: 'no', requestId: 'r' }, { status: 403 }),
    );
    await run(['launch', 'gpu-t4', '--spot', '--on-preemption', 'on-demand', '--no-wait'], t.io);
    assert.deepEqual(t.bodies()[0], {
      server: 'default',
      size: 'gpu-t4',
      spot: true,
      onPreemption: 'on-demand',
    });
  });
});
