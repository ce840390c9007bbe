/**
 * `ngsci preemption`: the researcher's own default for spot preemption (GET/PUT
 * /api/v1/me/preemption). What is sent for each form of the argument, what is shown, and that a
 * bad argument exits 2 with nothing sent. A fake fetch stands in for the service;
 * hub-service/src/instances/preemption-choice.test.ts runs the real one.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { fakeService } from '../testing.js';

const answer = (chosen: string | null) => ({
  user: 'ada',
  chosen,
  adminDefault: 'spot',
  effective: chosen ?? 'spot',
  source: chosen ? 'user' : 'admin',
  updatedAt: chosen ? '2026-11-30T06:00:00.000Z' : null,
});

const io = (chosen: string | null = null) => fakeService(() => Response.json(answer(chosen)), 't');

describe('ngsci preemption', () => {
  test('alone: GET, the default that applies and whose it is', async () => {
    const t = io();
    assert.equal(await run(['preemption'], t.io), 0, t.err());
    assert.equal(t.calls.length, 1);
    assert.equal(t.calls[0]!.method, 'GET');
    assert.match(t.calls[0]!.path, /\/me\/preemption$/);
    assert.match(t.out(), /applies:\s+spot: start it again on spot \(the admin's default\)/);
    assert.match(t.out(), /your default:\s+none/);
  });

  test('with a choice: PUT it; --clear: PUT null', async () => {
    for (const [argv, body, chosen] of [
      [['preemption', 'on-demand'], { onPreemption: 'on-demand' }, 'on-demand'],
      [['preemption', 'spot'], { onPreemption: 'spot' }, 'spot'],
      [['preemption', 'STOP'], { onPreemption: 'stop' }, 'stop'],
      [['preemption', '--clear'], { onPreemption: null }, null],
    ] as const) {
      const t = io(chosen);
      assert.equal(await run([...argv], t.io), 0, t.err());
      assert.equal(t.calls.length, 1);
      assert.equal(t.calls[0]!.method, 'PUT');
      assert.deepEqual(t.calls[0]!.body, body, argv.join(' '));
      if (chosen) assert.match(t.out(), /\(your default\)/);
      else assert.match(t.out(), /cleared/);
    }
  });

  test('--keep-state / --no-keep-state: PUT the flag alone or with a choice', async () => {
    for (const [argv, body] of [
      [['preemption', '--keep-state'], { keepState: true }],
      [['preemption', 'spot', '--no-keep-state'], { onPreemption: 'spot', keepState: false }],
    ] as const) {
      const t = fakeService(
        () => Response.json({ ...answer('spot'), keepState: body.keepState }),
        't',
      );
      assert.equal(await run([...argv], t.io), 0, t.err());
      assert.equal(t.calls[0]!.method, 'PUT');
      assert.deepEqual(t.calls[0]!.body, body, argv.join(' '));
      assert.match(t.out(), body.keepState ? /variables:\s+kept at a spot notice/ : /not kept/);
    }
  });

  test('--json prints the answer as it came', async () => {
    const t = io('stop');
    assert.equal(await run(['preemption', '--json'], t.io), 0, t.err());
    assert.deepEqual(JSON.parse(t.out()), answer('stop'));
  });

  test('a bad choice, two choices, or a choice with --clear: exit 2, nothing sent', async () => {
    for (const [argv, pattern] of [
      [['preemption', 'later'], /on-demand, spot or stop, not 'later'/],
      [['preemption', 'spot', '--clear'], /not both/],
      [['preemption', 'spot', 'stop'], /.+/],
      [['preemption', '--keep-state', '--no-keep-state'], /not both/],
    ] as const) {
      const t = io();
      assert.equal(await run([...argv], t.io), 2, argv.join(' '));
      assert.match(t.err(), pattern);
      assert.equal(t.calls.length, 0);
    }
  });

  test('--help and the main help name it', async () => {
    const t = io();
    assert.equal(await run(['preemption', '--help'], t.io), 0);
    assert.match(t.out(), /Usage: ngsci preemption \[on-demand\|spot\|stop\] \[--clear\]/);
    assert.equal(t.calls.length, 0);
    const m = io();
    await run(['help'], m.io);
    assert.match(m.out(), /preemption \[CHOICE\]/);
  });
});
