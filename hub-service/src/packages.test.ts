/**
 * Per-resource sizes: the catalog's pairs of a CPU package with a GPU package, each cloud's
 * cheapest covering machine (an exact N1 custom type on GCP where the GPU allows it), the
 * unavailable pairs with their reasons, and a launch and a resize with a pair over the real app
 * (the harness's hub and bridge, a scripted provisioner on `local`), quotas included.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePairSizeId, pairSizeId, type Catalog, type Offer } from '@ngsci/contract';
import { ApiError } from './errors.js';
import { buildCatalog, findSize, resolveOffer } from './catalog.js';
import { parseCatalogFile } from './catalog-file.js';
import { builtInView } from './catalog.js';
import {
  allowedSizesProblem,
  CPU_PACKAGES,
  GPU_PACKAGES,
  beyondAsk,
  cpuPackage,
  gpuPackage,
  sizeAllowed,
} from './packages.js';
import { estimate } from './metering/estimate.js';
import { machineForOffer } from './provisioners/terraform/machine-types.js';
import { ACCESS, eventually, harness, type Harness } from './testing/harness.js';
import { ScriptedProvisioner } from './testing/scripted-provisioner.js';

const ALL = ['local', 'aws', 'gcp', 'azure'] as const;
const catalog = buildCatalog({ clouds: [...ALL], defaultCloud: 'aws', simulateGpus: true });

const offer = (c: Catalog, size: string, cloud: Offer['cloud']): Offer => {
  const o = findSize(c, size)?.offers.find((x) => x.cloud === cloud);
  assert.ok(o, `${size} has no ${cloud} offer`);
  return o;
};

describe('catalog pairs', () => {
  it('lists every CPU package with every GPU package as a size <cpu>.<gpu>, beside the presets', () => {
    assert.equal(catalog.sizes.length, 9, 'the nine named sizes stay as they were');
    assert.equal(catalog.pairs?.length, CPU_PACKAGES.length * GPU_PACKAGES.length);
    assert.deepEqual(
      catalog.packages?.cpu.map((p) => p.id),
      ['s', 'm', 'l', 'xl'],
    );
    const mt4 = findSize(catalog, 'm.t4');
    assert.deepEqual(mt4?.package, { cpu: 'm', gpu: 't4' });
    assert.equal(mt4?.vcpu, 4);
    assert.equal(mt4?.memoryGiB, 16);
    assert.deepEqual(mt4?.gpu, { model: 'T4', count: 1, memoryGiB: 16 });
    assert.equal(mt4?.class, 'gpu');
    assert.equal(findSize(catalog, 'xl.none')?.class, 'cpu');
    assert.deepEqual(parsePairSizeId('m.t4'), { cpu: 'm', gpu: 't4' });
    assert.equal(parsePairSizeId('gpu-t4'), null);
    assert.equal(pairSizeId('xl', 'a100x8'), 'xl.a100x8');
  });

  it('GCP fits a T4 or V100 pair exactly with an N1 custom type, priced per vCPU, GiB and GPU', () => {
    const o = offer(catalog, 'm.t4', 'gcp');
    assert.equal(o.available, true);
    assert.equal(o.instanceType, 'custom-4-16384+nvidia-tesla-t4');
    // 4 × $0.033174 + 16 × $0.004446 + $0.35
    assert.equal(o.onDemandMicrosPerHour, 553_832);
    assert.equal(o.fit?.beyondAsk, null, 'exactly the ask');
    assert.equal(offer(catalog, 'l.v100', 'gcp').instanceType, 'custom-8-32768+nvidia-tesla-v100');
    // the stacks get the same machine: N1 custom with the accelerator attached
    const m = machineForOffer(o, findSize(catalog, 'm.t4')!);
    assert.equal(m?.key, 'custom-4-16384+t4x1');
    assert.equal(m?.info.machineType, 'custom-4-16384');
    assert.deepEqual(m?.info.accelerator, { type: 'nvidia-tesla-t4', count: 1 });
  });

  it('elsewhere the cheapest listed type covering both, saying what it gives beyond the ask', () => {
    const aws = offer(catalog, 's.t4', 'aws');
    assert.equal(aws.instanceType, 'g4dn.xlarge');
    assert.equal(aws.fit?.beyondAsk, 'you get 4 vCPU and 16 GiB; you asked for 2 vCPU and 8 GiB');
    assert.equal(aws.note, aws.fit?.beyondAsk);
    // L4 on GCP is a fixed G2 shape: g2-standard-8 for L (8 vCPU, 32 GiB)
    assert.equal(offer(catalog, 'l.l4', 'gcp').instanceType, 'g2-standard-8');
    // the cheapest that covers: c6i.2xlarge is cheaper than m6i.2xlarge but has 16 GiB only
    assert.equal(offer(catalog, 'l.none', 'aws').instanceType, 'm6i.2xlarge');
    const azure = offer(catalog, 'm.a100', 'azure');
    assert.equal(azure.instanceType, 'Standard_NC24ads_A100_v4');
    assert.match(
      azure.fit?.beyondAsk ?? '',
      /^you get 24 vCPU and 220 GiB; you asked for 4 vCPU and 16 GiB; each GPU has 80 GiB/,
    );
    assert.equal(
      beyondAsk(cpuPackage('m'), gpuPackage('none'), {
        vcpu: 8,
        memoryGiB: 16,
        gpuMemoryGiB: null,
      }),
      'you get 8 vCPU; you asked for 4',
    );
  });

  it('a pair no cloud serves is unavailable everywhere, each with its reason, and refused', () => {
    const gcp = offer(catalog, 'xl.v100', 'gcp');
    assert.equal(gcp.available, false);
    assert.match(gcp.note ?? '', /with 1× V100 an N1 machine takes at most 12 vCPU and 78 GiB/);
    assert.match(
      offer(catalog, 'xl.v100', 'azure').note ?? '',
      /no azure machine with 1× NVIDIA V100/,
    );
    assert.match(
      offer(catalog, 'm.a100', 'aws').note ?? '',
      /aws has no machine with 1× NVIDIA A100/,
    );
    assert.match(offer(catalog, 'm.v100', 'aws').note ?? '', /p3\.2xlarge: .*Turing and newer/);
    assert.throws(
      () => resolveOffer(catalog, { cpu: 'xl', gpu: 'v100', cloud: 'gcp' }),
      (e: unknown) =>
        e instanceof ApiError &&
        e.code === 'size_unavailable' &&
        /xl\.v100' is not available on gcp: an N1 custom machine cannot/.test(e.message),
    );
  });

  it('resolves a pair given as cpu and gpu, or by its id; a pair without gpu is cpu only', () => {
    const a = resolveOffer(catalog, { cpu: 'm', gpu: 't4', cloud: 'gcp' });
    const b = resolveOffer(catalog, { size: 'm.t4', cloud: 'gcp' });
    assert.equal(a.size.id, 'm.t4');
    assert.equal(a.ratePerHourMicros, b.ratePerHourMicros);
    assert.equal(resolveOffer(catalog, { cpu: 'l', cloud: 'aws' }).size.id, 'l.none');
    const spot = resolveOffer(catalog, { cpu: 'm', gpu: 't4', cloud: 'gcp', spot: true });
    assert.ok(spot.ratePerHourMicros < a.ratePerHourMicros);
    assert.throws(
      () => resolveOffer(catalog, { size: 'q.t4' }),
      (e: unknown) =>
        e instanceof ApiError &&
        e.code === 'unknown_size' &&
        /GPU packages none, t4/.test(e.message),
    );
  });

  it('a catalog file with pairs: false lists none; its regions apply to pairs', () => {
    const file = parseCatalogFile(
      { asOf: '2026-11-01', pairs: false, regions: { gcp: 'europe-west4' } },
      'catalog.json',
      builtInView(),
    );
    const off = buildCatalog({ clouds: [...ALL], defaultCloud: 'aws', file });
    assert.equal(off.pairs, undefined);
    assert.throws(() => resolveOffer(off, { cpu: 'm', gpu: 't4' }), /lists no package pairs/);
    const on = buildCatalog({
      clouds: [...ALL],
      defaultCloud: 'aws',
      file: { ...file, pairs: true },
    });
    assert.equal(offer(on, 'm.t4', 'gcp').region, 'europe-west4');
  });

  it('the estimator prices a pair given as cpu and gpu, or by its id', () => {
    const e = estimate(catalog, {
      instanceHours: [
        { cpu: 'm', gpu: 't4', cloud: 'gcp', hoursPerMonth: 100 },
        { size: 'xl.none', cloud: 'aws', hoursPerMonth: 10, spot: true },
      ],
    });
    assert.equal(e.lines[0]?.name, 'm.t4 on gcp us-central1');
    assert.equal(e.lines[0]?.monthlyMicros, 55_383_200);
    assert.equal(e.lines[1]?.name, 'xl.none on aws us-east-1 (spot)');
    assert.equal(e.lines[1]?.unitMicros, offer(catalog, 'xl.none', 'aws').spotMicrosPerHour);
    assert.throws(
      () => estimate(catalog, { instanceHours: [{ gpu: 't4', hoursPerMonth: 1 }] }),
      /gpu needs cpu/,
    );
  });

  it('quotas allow pairs by id or by package wildcard', () => {
    assert.equal(sizeAllowed(null, 'xl.h100x8'), true);
    assert.equal(sizeAllowed(['cpu-small'], 'm.t4'), false, 'a list of presets admits no pair');
    assert.equal(sizeAllowed(['m.t4'], 'm.t4'), true);
    assert.equal(sizeAllowed(['any.t4'], 'xl.t4'), true);
    assert.equal(sizeAllowed(['any.t4'], 'xl.a100'), false);
    assert.equal(sizeAllowed(['s.any'], 's.h100x8'), true);
    assert.equal(sizeAllowed(['s.any'], 'm.none'), false);
    assert.equal(sizeAllowed(['any.t4'], 'gpu-t4'), false, 'presets are allowed by id only');
    assert.equal(allowedSizesProblem(['cpu-small', 'any.t4', 'xl.any', 'm.t4']), null);
    assert.match(allowedSizesProblem(['any.any']) ?? '', /leave allowedSizes unset/);
    assert.match(allowedSizesProblem(['xxl.any']) ?? '', /xxl is not a CPU package/);
  });
});

describe('a pair over the API (scripted provisioner on local)', () => {
  let h: Harness;
  let prov: ScriptedProvisioner;
  before(async () => {
    prov = new ScriptedProvisioner();
    h = await harness({ provisioners: new Map([['local', prov]]) });
  });
  after(async () => {
    await h?.close();
  });
  const json = async (res: Response) => (await res.json()) as Record<string, unknown>;
  const post = (token: string, path: string, body: unknown) =>
    h.request(path, { method: 'POST', token, body: JSON.stringify(body) });

  test('launch {cpu, gpu}, then resize to another pair: the instance and its rate are the pair’s', async () => {
    const token = h.token({ name: 'pia' });
    const cat = (await json(await h.request('/api/v1/catalog', { token }))) as unknown as Catalog;
    const sNone = findSize(cat, 's.none')!.offers.find((o) => o.cloud === 'local')!;
    assert.equal(sNone.available, true);

    const res = await post(token, '/api/v1/instances', { cpu: 's', gpu: 'none' });
    assert.equal(res.status, 202, await res.clone().text());
    assert.equal((await json(res)).size, 's.none');
    const running = await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token }));
      return r.state === 'running' ? r : null;
    }, 'the pair running');
    assert.equal(
      running.ratePerHourMicros,
      sNone.onDemandMicrosPerHour,
      'billed at the pair’s offer',
    );
    assert.equal(prov.started.at(-1)?.size.id, 's.none');

    const lNone = findSize(cat, 'l.none')!.offers.find((o) => o.cloud === 'local')!;
    const rs = await post(token, '/api/v1/instances/default/resize', { cpu: 'l' });
    assert.equal(rs.status, 202, await rs.clone().text());
    const resized = await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token }));
      return r.state === 'running' && r.size === 'l.none' ? r : null;
    }, 'the new pair running');
    assert.equal(resized.ratePerHourMicros, lNone.onDemandMicrosPerHour);
    assert.equal(prov.started.at(-1)?.size.id, 'l.none');
    assert.equal((await post(token, '/api/v1/instances/default/stop', {})).status, 202);
  });

  test('bad pairs get a 4xx with a code', async () => {
    const token = h.token({ name: 'quinn' });
    const cases: Array<[unknown, number, string]> = [
      [{ cpu: 'xxl', gpu: 't4' }, 400, 'validation_failed'],
      [{ cpu: 'm', gpu: 'k80' }, 400, 'validation_failed'],
      [{ gpu: 't4' }, 400, 'validation_failed'],
      [{ size: 'cpu-small', cpu: 'm' }, 400, 'validation_failed'],
      [{}, 400, 'validation_failed'],
      [{ cpu: 'm', gpu: 'none', cloud: 'aws' }, 400, 'size_unavailable'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(token, '/api/v1/instances', body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal((await json(res)).code, code, JSON.stringify(body));
    }
  });

  test('a quota that allows packages admits their pairs and refuses the others', async () => {
    const admin = h.token({ name: 'root', scopes: [ACCESS, 'custom:ngsci:admin'] });
    const put = await post(admin, '/api/v1/admin/quotas', {
      subjectKind: 'user',
      subjectName: 'rui',
      allowedSizes: ['any.none'],
    });
    assert.ok(put.status < 300, await put.clone().text());
    const bad = await post(admin, '/api/v1/admin/quotas', {
      subjectKind: 'user',
      subjectName: 'rui2',
      allowedSizes: ['any.k80'],
    });
    assert.equal(bad.status, 400);
    assert.match(String((await json(bad)).message), /k80 is not a GPU package/);
    const token = h.token({ name: 'rui' });
    const no = await post(token, '/api/v1/instances', { size: 'cpu-small' });
    assert.equal(no.status, 403);
    assert.equal((await json(no)).code, 'quota_exceeded');
    const yes = await post(token, '/api/v1/instances', { cpu: 'm' });
    assert.equal(yes.status, 202, await yes.clone().text());
    await eventually(async () => {
      const r = await json(await h.request('/api/v1/instances/default', { token }));
      return r.state === 'running' ? r : null;
    }, 'the allowed pair running');
    assert.equal((await post(token, '/api/v1/instances/default/stop', {})).status, 202);
  });
});
