/**
 * Wiring of metering, billing, budgets and culling: the parts services.ts builds before the
 * lifecycle (prices, ledger, quotas — the lifecycle's quota guard) and the meter loop after it.
 */
import { ACTIVE_STATES, type Catalog } from '@ngsci/contract';
import type { Config } from '../config.js';
import type { Database, Db } from '../db/client.js';
import type { HubClient } from '../hub.js';
import type { Logger } from '../logger.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceStore } from '../instances/store.js';
import type { Notifier } from '../notify/types.js';
import type { Orphans } from '../reconcile/orphans.js';
import { BudgetAlertStore } from './budget-alerts.js';
import { BudgetEnforcer } from './budget-enforcer.js';
import { Culler, type KernelActivity } from './culler.js';
import { IdleStateStore } from './idle-state.js';
import { GpuWaste } from './gpu-waste.js';
import { CreditCover } from './credit-cover.js';
import { InstanceSnapshot } from './instance-snapshot.js';
import { Ledger } from './ledger.js';
import { advisoryLock, Meter, type MeterDeps, type MeterSettings } from './meter.js';
import { PlanTable } from './plans.js';
import { PriceBook } from './prices.js';
import { Quotas } from './quotas.js';

export interface Metering {
  ledger: Ledger;
  prices: PriceBook;
  quotas: Quotas;
  /** the catalog with admins' price overrides applied */
  catalog: () => Catalog;
  /** set by startMeter; null until then (and in tests that drive cycles themselves) */
  meter: Meter | null;
  settings: MeterSettings;
  /** the clock every figure the endpoints answer is taken on (tests set their own) */
  now: () => Date;
}

export function meterSettings(config: Config): MeterSettings {
  return {
    intervalSeconds: config.NGSCI_METER_INTERVAL,
    accrueEverySeconds: config.NGSCI_METER_ACCRUE_EVERY,
    budgetGraceSeconds: config.NGSCI_BUDGET_GRACE,
    activeWindowSeconds: config.NGSCI_ACTIVITY_WINDOW,
    homeGb: config.NGSCI_HOME_GB,
    homeGbMonthMicros: config.NGSCI_HOME_GB_MONTH_MICROS,
    storageEverySeconds: config.NGSCI_HOME_ACCRUE_EVERY,
    defaultPlan: config.NGSCI_DEFAULT_PLAN,
    cull: {
      enabled: config.NGSCI_CULL_ENABLED,
      everySeconds: config.NGSCI_CULL_EVERY,
      warningSeconds: config.NGSCI_CULL_WARNING,
      idleTimeoutCpuSeconds: config.NGSCI_CULL_TIMEOUT,
      idleTimeoutGpuSeconds: config.NGSCI_CULL_TIMEOUT_GPU,
      maxAgeSeconds: config.NGSCI_CULL_MAX_AGE,
    },
    gpuIdle: {
      idlePercent: config.NGSCI_GPU_IDLE_PERCENT,
      sampleSpanSeconds: config.NGSCI_GPU_SAMPLE_SPAN,
    },
  };
}

export function createMetering(opts: {
  config: Config;
  database: Database;
  hub: HubClient;
  baseCatalog: () => Catalog;
}): Metering {
  const db = opts.database.db;
  // credits that also lower researchers' charges are decided as rows are written (credit-cover.ts)
  const ledger = new Ledger(db, new CreditCover(db));
  const prices = new PriceBook(db, opts.baseCatalog);
  const settings = meterSettings(opts.config);
  const catalog = () => prices.catalog();
  const quotas = new Quotas({
    db,
    ledger,
    hub: opts.hub,
    catalog,
    defaults: settings.cull,
    settings,
  });
  return { ledger, prices, quotas, catalog, meter: null, settings, now: () => new Date() };
}

/** What a meter is built from, besides the metering parts (tests and the benchmark build their own). */
export interface MeterParts {
  db: Db;
  hub: Pick<HubClient, 'listActiveUsers'>;
  logger: Logger;
  store: InstanceStore;
  lifecycle: Pick<Lifecycle, 'stop'>;
  notifier: Notifier;
  /** servers on one side only, shared with the reconciler (reconcile/orphans.ts) */
  orphans: Pick<Orphans, 'fromListing'>;
  kernels: KernelActivity;
  gpuBusy?: (instanceId: string) => Promise<boolean | null>;
  /** credit grants running out or expiring unused, told to admins (credits.ts) */
  creditAlerts?: MeterDeps['creditAlerts'];
  /** the metering settings by default */
  settings?: MeterSettings;
  lock?: MeterDeps['lock'];
  now?: () => Date;
}

/** The meter loop with its phases: accrual, budgets (alerts, hard stops), culling. */
export function buildMeter(
  m: Pick<Metering, 'ledger' | 'prices' | 'catalog' | 'quotas' | 'settings'>,
  p: MeterParts,
): Meter {
  const settings = p.settings ?? m.settings;
  const idle = new IdleStateStore(p.db);
  return new Meter({
    hub: p.hub,
    logger: p.logger,
    store: p.store,
    activeInstances: new InstanceSnapshot(p.db, ACTIVE_STATES),
    ledger: m.ledger,
    prices: m.prices,
    catalog: m.catalog,
    plans: () => PlanTable.load(p.db, settings.defaultPlan),
    quotaRows: () => m.quotas.rows(),
    idleChoices: () => m.quotas.idleChoices.all(),
    budgets: new BudgetEnforcer({
      live: { db: p.db, ledger: m.ledger, settings },
      alerts: new BudgetAlertStore(p.db),
      notifier: p.notifier,
      store: p.store,
      lifecycle: p.lifecycle,
      logger: p.logger,
      graceSeconds: settings.budgetGraceSeconds,
    }),
    culler: new Culler({
      idle,
      kernels: p.kernels,
      ...(p.gpuBusy ? { gpuBusy: p.gpuBusy } : {}),
      notifier: p.notifier,
      store: p.store,
      lifecycle: p.lifecycle,
      logger: p.logger,
      warningSeconds: settings.cull.warningSeconds,
    }),
    idle,
    orphans: p.orphans,
    gpuWaste: new GpuWaste(p.db, {
      ...settings.gpuIdle,
      everySeconds: settings.accrueEverySeconds,
    }),
    ...(p.creditAlerts ? { creditAlerts: p.creditAlerts } : {}),
    settings,
    ...(p.lock ? { lock: p.lock } : {}),
    ...(p.now ? { now: p.now } : {}),
  });
}

/** Builds the service's meter loop (not started: `meter.start()` begins it). */
export function createMeter(
  m: Metering,
  opts: Omit<MeterParts, 'db' | 'settings' | 'lock'> & {
    config: Config;
    database: Database;
  },
): Meter {
  const { config, database, ...parts } = opts;
  m.meter = buildMeter(m, {
    ...parts,
    db: database.db,
    logger: opts.logger.child({ part: 'meter' }),
    ...(database.kind === 'postgres' && config.DATABASE_URL
      ? { lock: advisoryLock(config.DATABASE_URL) }
      : {}),
  });
  return m.meter;
}
