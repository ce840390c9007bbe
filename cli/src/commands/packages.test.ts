/** `ngsci launch --cpu M --gpu t4` and `ngsci resize --cpu … --gpu …`: checked before anything is sent, then sent as a pair. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../main.js';
import { fakeService } from '../testing.js';

function io(answer: () => Response) {
  const t = fakeService(answer, 'tok-secret-123');
  return { ...t, bodies: () => t.calls.map((c) => c.body) };
}

const instance = {
  id: 'i-1',
  user: 'ana',
  server: 'default',
  size: 'm.t4',
  cloud: 'gcp',
  region: 'us-central1',
  spot: false,
  state: 'requested',
  errorCode: null,
  errorMessage: null,
  exitCode: null,
  url: null,
  ratePerHourMicros: 553_832,
  createdAt: '2026-11-30T00:00:00.000Z',
  readyAt: null,
  stoppedAt: null,
};

describe('ngsci launch/resize with packages', () => {
  test('bad or conflicting package arguments exit 2 and send nothing', async () => {
    for (const [argv, pattern] of [
      [['launch', '--cpu', 'xxl'], /--cpu must be a CPU package \(s, m, l, xl\), not 'xxl'/],
      [['launch', '--cpu', 'm', '--gpu', 'k80'], /--gpu must be a GPU package \(none, t4/],
      [['launch', '--gpu', 't4'], /--gpu needs --cpu/],
      [['launch', 'gpu-t4', '--cpu', 'm'], /either SIZE or --cpu/],
      [['launch'], /^ngsci: \[usage\] launch: missing SIZE \(see: ngsci launch --help\)\n$/],
      [['resize', '--gpu', 'a100'], /--gpu needs --cpu/],
    ] as const) {
      const t = io(() => Response.json({}));
      assert.equal(await run([...argv], t.io), 2, argv.join(' '));
      assert.match(t.err(), pattern);
      assert.equal(t.bodies().length, 0);
    }
  });

  test('launch --cpu M --gpu t4 sends the pair; resize --cpu L sends l with no GPU', async () => {
    const t = io(() => Response.json(instance, { status: 202 }));
    assert.equal(await run(['launch', '--cpu', 'M', '--gpu', 'T4', '--no-wait'], t.io), 0);
    assert.deepEqual(t.bodies()[0], { server: 'default', cpu: 'm', gpu: 't4', spot: false });
    assert.match(t.out(), /launching m\.t4 as server 'default'/);
    assert.equal(await run(['resize', '--cpu', 'l', '--no-wait'], t.io), 0);
    assert.deepEqual(t.bodies()[1], { cpu: 'l', gpu: 'none' });
    assert.match(t.calls[1]?.path ?? '', /\/instances\/default\/resize$/);
    assert.match(t.out(), /resizing server 'default' from m\.t4 to l\.none/);
  });

  test('catalog --pairs lists each pair on the cloud: machine, price, beyond the ask or why not', async () => {
    const offer = (o: object) => ({ region: 'r', spotMicrosPerHour: null, ...o });
    const t = io(() =>
      Response.json({
        asOf: '2025-07-01',
        currency: 'USD',
        defaultCloud: 'aws',
        clouds: ['aws'],
        sizes: [],
        pairs: [
          {
            id: 's.t4',
            label: 'S + T4',
            class: 'gpu',
            vcpu: 2,
            memoryGiB: 8,
            gpu: { model: 'T4', count: 1, memoryGiB: 16 },
            package: { cpu: 's', gpu: 't4' },
            offers: [
              offer({
                cloud: 'aws',
                instanceType: 'g4dn.xlarge',
                available: true,
                onDemandMicrosPerHour: 526_000,
                fit: {
                  vcpu: 4,
                  memoryGiB: 16,
                  gpuMemoryGiB: 16,
                  beyondAsk: 'you get 4 vCPU and 16 GiB; you asked for 2 vCPU and 8 GiB',
                },
              }),
            ],
          },
          {
            id: 'm.a100',
            label: 'M + A100',
            class: 'gpu',
            vcpu: 4,
            memoryGiB: 16,
            gpu: { model: 'A100', count: 1, memoryGiB: 40 },
            package: { cpu: 'm', gpu: 'a100' },
            offers: [
              offer({
                cloud: 'aws',
                instanceType: '',
                available: false,
                onDemandMicrosPerHour: 0,
                note: 'aws has no machine with 1× NVIDIA A100',
              }),
            ],
          },
        ],
      }),
    );
    assert.equal(await run(['catalog', '--pairs'], t.io), 0);
    const text = t.out();
    assert.match(
      text,
      /s\.t4 .*g4dn\.xlarge .*\$0\.526.*you get 4 vCPU and 16 GiB; you asked for 2 vCPU and 8 GiB/,
    );
    assert.match(text, /m\.a100 .*unavailable .*aws has no machine with 1× NVIDIA A100/);
  });
});
