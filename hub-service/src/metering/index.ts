/**
 * Wiring of metering, billing, budgets and culling: the parts services.ts builds before the
 * lifecycle (prices, ledger, quotas — the lifecycle's quota guard) and the meter loop after it.
 */
import type { Catalog } from '@ngsci/contract';
import type { Config } from '../config.js';
import type { Database } from '../db/client.js';
import type { HubClient } from '../hub.js';
import type { Logger } from '../logger.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceStore } from '../instances/store.js';
import type { Notifier } from '../notify/types.js';
import type { KernelActivity } from './culler.js';
import { Ledger } from './ledger.js';
import { advisoryLock, Meter, type MeterSettings } from './meter.js';
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
}

export function meterSettings(config: Config): MeterSettings {
  return {
    intervalSeconds: config.NGSCI_METER_INTERVAL,
    accrueEverySeconds: config.NGSCI_METER_ACCRUE_EVERY,
    orphanGraceSeconds: config.NGSCI_METER_ORPHAN_GRACE,
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
  };
}

export function createMetering(opts: {
  config: Config;
  database: Database;
  hub: HubClient;
  baseCatalog: () => Catalog;
}): Metering {
  const db = opts.database.db;
  const ledger = new Ledger(db);
  const prices = new PriceBook(db, opts.baseCatalog);
  const settings = meterSettings(opts.config);
  const catalog = () => prices.catalog();
  const quotas = new Quotas({ db, ledger, hub: opts.hub, catalog, defaults: settings.cull });
  return { ledger, prices, quotas, catalog, meter: null, settings };
}

/** Builds the meter loop (not started: `meter.start()` begins it). */
export function createMeter(
  m: Metering,
  opts: {
    config: Config;
    database: Database;
    hub: HubClient;
    logger: Logger;
    store: InstanceStore;
    lifecycle: Lifecycle;
    notifier: Notifier;
    kernels: KernelActivity;
    gpuBusy?: (instanceId: string) => Promise<boolean | null>;
    now?: () => Date;
  },
): Meter {
  const { config } = opts;
  m.meter = new Meter({
    db: opts.database.db,
    hub: opts.hub,
    logger: opts.logger.child({ part: 'meter' }),
    store: opts.store,
    lifecycle: opts.lifecycle,
    notifier: opts.notifier,
    ledger: m.ledger,
    prices: m.prices,
    catalog: m.catalog,
    kernels: opts.kernels,
    ...(opts.gpuBusy ? { gpuBusy: opts.gpuBusy } : {}),
    settings: m.settings,
    quotas: m.quotas,
    ...(opts.database.kind === 'postgres' && config.DATABASE_URL
      ? { lock: advisoryLock(config.DATABASE_URL) }
      : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  return m.meter;
}
