/**
 * Orphans without a database: the meter's hub listing and the reconciler's rounds share one
 * clock per instance and one grace (NGSCI_RECONCILE_GRACE, the old NGSCI_METER_ORPHAN_GRACE read
 * in its place), a server the hub still lists is never stopped, and unknown hub servers are
 * reported, not billed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deprecations, loadConfig } from '../config.js';
import type { HubUserModel } from '../hub.js';
import type { InstanceRow } from '../instances/store.js';
import { createLogger } from '../logger.js';
import { Orphans } from './orphans.js';

const row = (id: string, user: string, state = 'running'): InstanceRow =>
  ({ id, userName: user, serverName: 'default', state }) as InstanceRow;
const listing = (...users: Array<[string, string[]]>): HubUserModel[] =>
  users.map(([name, servers]) => ({
    name,
    admin: false,
    servers: Object.fromEntries(servers.map((s) => [s, { name: s }])),
  })) as unknown as HubUserModel[];

function orphans(graceSeconds: number) {
  const stops: string[] = [];
  const notes: string[] = [];
  const o = new Orphans({
    store: { note: async (_id, _p, m) => void notes.push(m) },
    lifecycle: {
      bridgeStop: async (user, server) => {
        stops.push(`${user}/${server}`);
        return null;
      },
    },
    logger: createLogger('silent'),
    graceSeconds,
  });
  return { o, stops, notes };
}

describe('orphans', () => {
  test('the meter and the reconciler share one clock: stopped once, one grace after first seen missing', async () => {
    const { o, stops, notes } = orphans(120);
    const kept = row('k', 'kept');
    const gone = row('g', 'gone');
    const t = (s: number) => new Date(Date.UTC(2026, 4, 1) + s * 1000);
    // the meter's listing first sees it missing at 0 s
    let r = await o.fromListing(
      listing(['kept', ['']], ['gone', []]),
      [kept, gone],
      [kept, gone],
      t(0),
    );
    assert.deepEqual(r.orphansClosed, []);
    // a reconciler round at 100 s does not restart the clock
    const present = (x: InstanceRow) => x.id === 'k';
    assert.deepEqual(await o.observe([kept, gone], present, t(100).getTime()), []);
    r = await o.fromListing(listing(['kept', ['']]), [kept, gone], [kept, gone], t(119));
    assert.deepEqual(r.orphansClosed, [], 'not within the grace');
    r = await o.fromListing(listing(['kept', ['']]), [kept, gone], [kept, gone], t(120));
    assert.deepEqual(r.orphansClosed, ['g']);
    assert.deepEqual(stops, ['gone/'], 'the default server, by its hub name');
    assert.match(notes[0]!, /JupyterHub has no server 'default' for gone any more/);
    // the reconciler, a moment later, does not stop it again
    assert.deepEqual(await o.observe([gone], () => false, t(121).getTime()), []);
  });

  test('a server back in the listing resets its clock; a hub server nobody knows is reported', async () => {
    const { o, stops } = orphans(60);
    const flaky = row('f', 'flaky');
    const t = (s: number) => new Date(Date.UTC(2026, 4, 1) + s * 1000);
    await o.fromListing(listing(), [flaky], [flaky], t(0));
    await o.fromListing(listing(['flaky', ['']]), [flaky], [flaky], t(50));
    const r = await o.fromListing(listing(['stranger', ['x']]), [flaky], [flaky], t(70));
    assert.deepEqual(r.orphansClosed, [], 'missing since 70 s only');
    assert.deepEqual(r.unknownServers, ['stranger/x']);
    assert.deepEqual(stops, []);
  });
});

describe('the orphan grace setting', () => {
  const base = {
    JUPYTERHUB_API_TOKEN: 'service-token-0123456789',
    NGSCI_BRIDGE_SECRET: 'b'.repeat(32),
    NGSCI_SECRET_KEY: 'secret-key-for-tests-0123456789abcdef',
  };
  test('NGSCI_RECONCILE_GRACE; the old NGSCI_METER_ORPHAN_GRACE is read in its place, with a deprecation', () => {
    const plain = loadConfig(base);
    assert.equal(plain.NGSCI_RECONCILE_GRACE, 120);
    assert.deepEqual(deprecations(plain), []);
    const old = loadConfig({ ...base, NGSCI_METER_ORPHAN_GRACE: '45' });
    assert.equal(old.NGSCI_RECONCILE_GRACE, 45);
    assert.match(
      deprecations(old)[0]!,
      /NGSCI_METER_ORPHAN_GRACE is deprecated: use NGSCI_RECONCILE_GRACE/,
    );
    const both = loadConfig({
      ...base,
      NGSCI_METER_ORPHAN_GRACE: '45',
      NGSCI_RECONCILE_GRACE: '300',
    });
    assert.equal(both.NGSCI_RECONCILE_GRACE, 300, 'the new name wins');
  });
});
