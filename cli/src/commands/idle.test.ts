/**
 * `ngsci idle` and the admin's `--idle-*-min/max` bounds: what is sent for each form of the
 * argument, what is shown, and that a refusal is one line with the service's code and bounds.
 * A fake fetch stands in for the service; tests/src/idle-choice.test.ts runs the real one.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { fakeService } from '../testing.js';

const klass = (
  chosen: number | null,
  effective: number,
  min: number,
  max: number,
  clamped = false,
) => ({
  chosenSeconds: chosen,
  effectiveSeconds: effective,
  defaultSeconds: 3600,
  minSeconds: min,
  maxSeconds: max,
  boundsFromAdmin: true,
  clamped,
});
const ANSWER = {
  user: 'ada',
  cpu: klass(2700, 2700, 600, 14_400),
  gpu: klass(null, 1800, 300, 0),
  updatedAt: null,
};

const io = (answer: (method: string) => Response = () => Response.json(ANSWER)) =>
  fakeService((_url, init) => answer(init?.method ?? 'GET'), 't');

describe('ngsci idle', () => {
  test('alone: the value that applies, the choice and the bounds per class', async () => {
    const t = io();
    assert.equal(await run(['idle'], t.io), 0, t.err());
    assert.equal(t.calls[0]!.method, 'GET');
    assert.match(t.calls[0]!.path, /\/me\/idle-timeout$/);
    assert.match(t.out(), /CPU\s+45 min\s+45 min\s+10 min to 4 h/);
    assert.match(t.out(), /GPU\s+30 min\s+admin's \(1 h\)\s+5 min or more, or never/);
  });

  test('with a value: both classes, or the one named; never and default', async () => {
    for (const [argv, body] of [
      [['idle', '45m'], { cpuSeconds: 2700, gpuSeconds: 2700 }],
      [['idle', '1h30m', '--gpu'], { gpuSeconds: 5400 }],
      [['idle', '20', '--cpu'], { cpuSeconds: 1200 }],
      [['idle', 'never', '--gpu'], { gpuSeconds: 0 }],
      [['idle', 'default'], { cpuSeconds: null, gpuSeconds: null }],
    ] as const) {
      const t = io();
      assert.equal(await run([...argv], t.io), 0, t.err());
      assert.equal(t.calls.length, 1);
      assert.equal(t.calls[0]!.method, 'PUT');
      assert.deepEqual(t.calls[0]!.body, body, argv.join(' '));
    }
  });

  test('a refusal is one line with the code and the bounds, exit 1', async () => {
    const message = 'an idle timeout of 2 h is outside the bounds for GPU sizes: 5 min to 1 h';
    const t = io(() =>
      Response.json(
        { code: 'idle_timeout_out_of_bounds', message, requestId: 'r' },
        { status: 422 },
      ),
    );
    assert.equal(await run(['idle', '2h', '--gpu'], t.io), 1);
    assert.equal(t.err(), `ngsci: [idle_timeout_out_of_bounds] ${message}\n`);
  });

  test('a clamped choice is said', async () => {
    const t = io(() => Response.json({ ...ANSWER, cpu: klass(10_800, 7200, 600, 7200, true) }));
    assert.equal(await run(['idle'], t.io), 0);
    assert.match(t.out(), /3 h \(outside the bounds now: the nearest bound applies\)/);
    assert.match(t.out(), /An admin narrowed the bounds since you chose/);
  });

  test('bad arguments exit 2 and send nothing', async () => {
    for (const argv of [
      ['idle', 'soon'],
      ['idle', '--gpu'],
      ['idle', '5m', '6m'],
    ]) {
      const t = io();
      assert.equal(await run(argv, t.io), 2, argv.join(' '));
      assert.equal(t.calls.length, 0);
    }
  });
});

describe('ngsci admin quota set: idle bounds', () => {
  test('--idle-*-min/max become the quota fields; never is 0 for a maximum, none unsets', async () => {
    const t = io((method) =>
      method === 'GET'
        ? Response.json({ quotas: [] })
        : Response.json(
            { id: 3, subjectKind: 'default', subjectName: '', updatedAt: '2026-11-30T00:00:00Z' },
            { status: 201 },
          ),
    );
    const code = await run(
      [
        'admin',
        'quota',
        'set',
        '--default',
        '--idle-cpu-min',
        '10m',
        '--idle-cpu-max',
        '4h',
        '--idle-gpu-min',
        'none',
        '--idle-gpu-max',
        'never',
      ],
      t.io,
    );
    assert.equal(code, 0, t.err());
    assert.deepEqual(t.calls[1]!.body, {
      subjectKind: 'default',
      subjectName: '',
      idleTimeoutCpuMinSeconds: 600,
      idleTimeoutCpuMaxSeconds: 14_400,
      idleTimeoutGpuMinSeconds: null,
      idleTimeoutGpuMaxSeconds: 0,
    });
  });
});
