/**
 * `ngsci admin gpu-waste` and the idle-GPU line of `ngsci usage` against a fake service: the
 * ranking and the line read as the contract words them; bad input sends nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { BASE, fakeService } from '../testing.js';

function io(answer: (url: URL) => Response) {
  const t = fakeService(answer);
  return { ...t, paths: () => t.calls.map((c) => c.path) };
}

const RANKING = {
  month: '2026-05',
  thresholdPercent: 5,
  users: [
    { name: 'bob', idleSeconds: 900, sampledSeconds: 1800, idleMicros: 512_500 },
    { name: 'ada', idleSeconds: 1200, sampledSeconds: 1800, idleMicros: 175_333 },
  ],
  groups: [{ name: 'lab', idleSeconds: 2100, sampledSeconds: 3600, idleMicros: 687_833 }],
  totalIdleMicros: 687_833,
  asOf: '2026-06-02T10:00:00.000Z',
};

test('admin gpu-waste: users then groups, most first, with hours, share and dollars', async () => {
  const t = io(() => Response.json(RANKING));
  assert.equal(await run(['admin', 'gpu-waste', '--month', '2026-05', '--limit', '10'], t.io), 0);
  assert.deepEqual(t.paths(), [`${BASE}/admin/gpu-waste?month=2026-05&limit=10`]);
  const out = t.out();
  assert.match(
    out,
    /GPU money wasted in 2026-05 \(as of 10:00:00 UTC\): \$0\.688 \(every GPU below 5%\)/,
  );
  assert.match(out, /bob\s+0\.25 h\s+50 %\s+\$0\.513/);
  assert.match(out, /ada\s+0\.33 h\s+67 %\s+\$0\.175/);
  assert.ok(out.indexOf('bob') < out.indexOf('ada'));
  assert.match(out, /lab\s+0\.58 h\s+58 %\s+\$0\.688/);
});

test('admin gpu-waste: a bad month or limit is refused before any request', async () => {
  for (const args of [
    ['--month', '2026-13'],
    ['--limit', '0'],
    ['--limit', 'many'],
  ]) {
    const t = io(() => Response.json(RANKING));
    assert.notEqual(await run(['admin', 'gpu-waste', ...args], t.io), 0);
    assert.deepEqual(t.paths(), []);
    assert.match(t.err(), /--month must be a month|--limit must be/);
  }
});

test('usage prints the idle-GPU line once a GPU was sampled, and not before', async () => {
  const usage = {
    user: 'ada',
    from: '2026-06-01T00:00:00.000Z',
    to: '2026-06-10T00:00:00.000Z',
    granularity: 'day',
    series: [],
    totalMicros: 0,
    gpuIdle: {
      idleSeconds: 11_520,
      sampledSeconds: 36_000,
      idleMicros: 8_400_000,
      thresholdPercent: 5,
    },
  };
  const t = io(() => Response.json(usage));
  assert.equal(await run(['usage'], t.io), 0);
  assert.match(t.out(), /idle GPU: 3\.2 h, \$8\.40 \(every GPU below 5%\)/);
  const none = io(() =>
    Response.json({
      ...usage,
      gpuIdle: { ...usage.gpuIdle, sampledSeconds: 0, idleSeconds: 0, idleMicros: 0 },
    }),
  );
  assert.equal(await run(['usage'], none.io), 0);
  assert.doesNotMatch(none.out(), /idle GPU/);
});
