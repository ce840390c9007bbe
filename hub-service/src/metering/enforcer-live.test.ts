/**
 * The meter's budget alerts and hard stops act on the same figure GET /budget shows at the same
 * instant (live.ts, figures.ts): ledger totals plus every open stream's unwritten part, the home
 * volume's too, not only what the cycle itself priced.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness } from '../testing/harness.js';
import type { HubClient, HubUserModel } from '../hub.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { Notice } from '../notify/types.js';
import { Orphans } from '../reconcile/orphans.js';
import { quotas } from '../db/schema.js';
import { buildMeter } from './index.js';
import { budgetFor } from './budgets.js';

let h: Harness;
before(async () => {
  // a home volume of $10 an hour (100 GB at $73 a GB-month): its unwritten part matters
  h = await harness({
    env: { NGSCI_HOME_GB: '100', NGSCI_HOME_GB_MONTH_MICROS: '73000000' },
  });
});
after(async () => h.close());

test('alerts fire at the percent GET /budget answers at that second, home volume included', async () => {
  const real = new Date();
  const B = new Date(
    Math.max(real.getTime() - 3 * 3600_000, Date.UTC(real.getUTCFullYear(), real.getUTCMonth(), 1)),
  );
  const at = (s: number) => new Date(B.getTime() + s * 1000);
  let now = at(0);
  const notices: Notice[] = [];
  const hubUser = (): HubUserModel =>
    ({
      name: 'live-u',
      admin: false,
      groups: ['lab'],
      servers: {
        '': {
          name: '',
          ready: true,
          pending: null,
          url: '/user/live-u/',
          last_activity: now.toISOString(),
        },
      },
    }) as unknown as HubUserModel;
  const lifecycle = {
    stop: async () => null,
    bridgeStop: async () => null,
  } as unknown as Lifecycle;
  const meter = buildMeter(h.services.metering, {
    db: h.database.db,
    hub: { listActiveUsers: async () => [hubUser()] } as unknown as HubClient,
    logger: h.services.logger,
    store: h.services.store,
    lifecycle,
    notifier: { send: async (n) => void notices.push(n) },
    orphans: new Orphans({
      store: h.services.store,
      lifecycle,
      logger: h.services.logger,
      graceSeconds: 60,
    }),
    kernels: async () => 'busy',
    settings: {
      ...h.services.metering.settings,
      // compute written every cycle; the home volume once a day, so most of it is unwritten
      accrueEverySeconds: 0,
      storageEverySeconds: 86_400,
      cull: { ...h.services.metering.settings.cull, enabled: false },
    },
    now: () => now,
  });
  await h.runningInstance('live-u', { rate: 960_000, readyAt: B });
  now = at(600);
  await meter.cycle(); // writes compute and the home volume up to here
  now = at(4200);
  const live = await budgetFor(
    h.services.metering,
    h.database.db,
    'live-u',
    ['lab'],
    'private',
    now,
  );
  const written = await h.services.metering.ledger.userSpend(
    'live-u',
    new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
  );
  assert.ok(live.spentMicros > written * 2, 'most of the spend is not written yet (home volume)');
  // the user's budget is spent exactly at this second; the group's is half spent
  await h.database.db.insert(quotas).values([
    { subjectKind: 'user', subjectName: 'live-u', monthlyBudgetMicros: live.spentMicros },
    { subjectKind: 'group', subjectName: 'lab', monthlyBudgetMicros: live.spentMicros * 2 },
  ]);
  const report = await meter.cycle();
  const shown = await budgetFor(
    h.services.metering,
    h.database.db,
    'live-u',
    ['lab'],
    'private',
    now,
  );
  assert.deepEqual(
    shown.budgets.map((b) => [b.kind, b.percent]),
    [
      ['user', 100],
      ['group', 50],
    ],
    'what the budget bar shows at that second',
  );
  assert.deepEqual(report.alerts.sort(), ['group:lab:50', 'user:live-u:100']);
  assert.deepEqual(
    notices
      .filter((n) => n.kind === 'budget')
      .map((n) => n.title)
      .sort(),
    ['100 % of your monthly budget is spent', "50 % of group lab's monthly budget is spent"],
  );
});
