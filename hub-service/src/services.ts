/**
 * Wires the service's parts together from config and the outside world (database, hub,
 * provisioners). No listening and no timers here: `start()` begins background work.
 */
import type { Catalog, Cloud } from '@ngsci/contract';
import { buildCatalog } from './catalog.js';
import { catalogOptions, type Config } from './config.js';
import type { Database } from './db/client.js';
import type { HubClient } from './hub.js';
import type { Logger } from './logger.js';
import { secretBoxFromConfig } from './secrets.js';
import { JobQueue } from './instances/jobs.js';
import { Lifecycle } from './instances/lifecycle.js';
import { InstanceStore } from './instances/store.js';
import { EventFeed, SseSettingsSchema } from './instances/event-feed.js';
import { Worker } from './instances/worker.js';
import { Resizes } from './instances/resize.js';
import { HealthWatch } from './instances/health.js';
import { GpuStore } from './agent/gpu.js';
import { AgentCredentials } from './agent/credentials.js';
import { BootReports } from './agent/boot.js';
import { SecurityEvents } from './security/events.js';
import { createAuditSink, type AuditSink } from './audit/sink.js';
import type { Provisioner } from './provisioners/types.js';
import { firstLocalUser, LocalUserGate } from './provisioners/local-policy.js';
import { BootstrapTokens } from './bootstrap/tokens.js';
import { InstanceIdentity } from './bootstrap/identity.js';
import { identityTrust } from './provisioners/terraform/settings.js';
import type { Notifier } from './notify/types.js';
import { ChannelNotifier } from './notify/notifier.js';
import { NotificationStore } from './notify/store.js';
import { createMeter, createMetering, type Metering } from './metering/index.js';
import { CreditAlerter } from './metering/credits.js';
import { Orphans } from './reconcile/orphans.js';

export interface Services {
  config: Config;
  database: Database;
  hub: HubClient;
  logger: Logger;
  store: InstanceStore;
  /** what the SSE event streams follow, one LISTEN per process (instances/event-feed.ts) */
  events: EventFeed;
  queue: JobQueue;
  lifecycle: Lifecycle;
  worker: Worker;
  health: HealthWatch;
  catalog: () => Catalog;
  notifier: Notifier;
  /** usage ledger, prices with overrides, quotas and the meter loop (metering/) */
  metering: Metering;
  /** instances whose hub server is gone, fed by the meter and the reconciler (reconcile/orphans.ts) */
  orphans: Orphans;
  /** single-use tokens cloud machines trade for their environment at boot (bootstrap/tokens.ts) */
  bootstrap: BootstrapTokens;
  /** the notifier itself, with its store and the seal for webhook URLs (routes/notifications.ts) */
  notifications: ChannelNotifier;
  /** per-instance agent credentials and what the agents last reported (agent/credentials.ts) */
  agents: AgentCredentials;
  /**
   * what each cloud machine's checks found before its server started (agent/boot.ts); the
   * terraform provisioner's readiness wait reads `status()`
   */
  bootReports: BootReports;
  /** security events for admins (security/events.ts) */
  security: SecurityEvents;
  /** where audit events and security events are shipped, NGSCI_AUDIT_SINK (audit/sink.ts) */
  auditSink: AuditSink;
}

/** Local instances run on the `local` tag; cloud ones on `cloud=<name>` (a worker per cloud may run). */
export const jobTagFor = (cloud: Cloud): string => (cloud === 'local' ? 'local' : `cloud=${cloud}`);

export function createServices(opts: {
  config: Config;
  database: Database;
  hub: HubClient;
  logger: Logger;
  provisioners: Map<string, Provisioner>;
}): Services {
  const { config, database, hub, logger } = opts;
  const db = database.db;
  const catalog = buildCatalog(catalogOptions(config));
  const metering = createMetering({ config, database, hub, baseCatalog: () => catalog });
  const box = secretBoxFromConfig(config);
  const store = new InstanceStore(db);
  const events = new EventFeed({
    database,
    store,
    logger,
    // NGSCI_SSE_PER_USER from the configuration, its default when the configuration lacks it
    settings: SseSettingsSchema.parse(config),
  });
  const queue = new JobQueue(db);
  const notifications = new ChannelNotifier({
    store: new NotificationStore(db),
    box,
    logger,
    smtpUrl: config.NGSCI_SMTP_URL,
    smtpFrom: config.NGSCI_SMTP_FROM,
    timeoutSeconds: config.NGSCI_NOTIFY_TIMEOUT,
    webhookAllow: config.NGSCI_WEBHOOK_ALLOW,
  });
  const notifier: Notifier = notifications;
  const agents = new AgentCredentials(db, { perMinute: config.NGSCI_AGENT_RATE_PER_MINUTE });
  const resizes = new Resizes({ store, hub, logger, notifier });
  const worker = new Worker({
    resizes,
    agents,
    notifier,
    db,
    store,
    queue,
    box,
    logger,
    catalog: metering.catalog,
    provisioners: opts.provisioners,
    jobTag: jobTagFor,
    heartbeatSeconds: config.NGSCI_JOB_HEARTBEAT,
    staleAfterSeconds: config.NGSCI_JOB_STALE_AFTER,
    // a machine that could not be removed alerts admins (destroy_failed)
    security: { raise: (e) => security.raise(e) },
  });
  const lifecycle = new Lifecycle({
    db,
    store,
    queue,
    hub,
    box,
    logger,
    catalog: metering.catalog,
    jobTag: jobTagFor,
    kick: () => worker.kick(),
    resizes,
    preemptionDefault: config.NGSCI_PREEMPTION_DEFAULT,
    quotaGuard: metering.quotas,
    localGate: new LocalUserGate({
      isolation: config.NGSCI_LOCAL_ISOLATION,
      sharedDemo: config.NGSCI_LOCAL_SHARED_DEMO,
      firstLocalUser: () => firstLocalUser(db),
      logger,
    }),
  });
  const bootstrap = new BootstrapTokens({
    db,
    box,
    logger,
    ttlSeconds: config.NGSCI_BOOTSTRAP_TTL,
    // a token waits at most one terraform step for its machine before its lifetime starts
    applyWindowSeconds: config.NGSCI_TERRAFORM_STEP_TIMEOUT ?? 1800,
    // VMs prove their cloud identity before they get secrets (bootstrap/identity.ts)
    identity: new InstanceIdentity(identityTrust(config)),
    identityRequired: config.NGSCI_IDENTITY_REQUIRED !== false,
    repeatWindowSeconds: config.NGSCI_BOOTSTRAP_REPEAT_WINDOW,
    security: { raise: (e) => security.raise(e) },
  });
  const bootReports = new BootReports({ db, store, queue, logger, notifier, jobTag: jobTagFor });
  const gpus = new GpuStore(db);
  const auditSink = createAuditSink(config.NGSCI_AUDIT_SINK, { logger });
  const security = new SecurityEvents({
    db,
    logger,
    notifier,
    admins: () => hub.listAdmins(),
    onRaised: (row) => auditSink.security(row),
  });
  const orphans = new Orphans({
    store,
    lifecycle,
    logger,
    graceSeconds: config.NGSCI_RECONCILE_GRACE,
  });
  createMeter(metering, {
    config,
    database,
    hub,
    logger,
    store,
    lifecycle,
    notifier,
    orphans,
    // kernels as the agent reports them; a report older than two minutes is no report
    kernels: (id) => agents.kernelActivity(id, 120),
    // a GPU above NGSCI_CULL_GPU_BUSY_PERCENT in the agent's last two minutes of samples is work
    gpuBusy: (id) =>
      gpus.busy(id, { maxAgeSeconds: 120, busyPercent: config.NGSCI_CULL_GPU_BUSY_PERCENT }),
    creditAlerts: new CreditAlerter({ db, notifier, logger, admins: () => hub.listAdmins() }),
  });
  const health = new HealthWatch({
    store,
    queue,
    logger,
    notifier,
    jobTag: jobTagFor,
    intervalSeconds: config.NGSCI_RUNNING_POLL_INTERVAL,
  });
  return {
    config,
    database,
    hub,
    logger,
    store,
    events,
    queue,
    lifecycle,
    worker,
    health,
    catalog: metering.catalog,
    metering,
    orphans,
    bootstrap,
    notifier,
    notifications,
    agents,
    bootReports,
    security,
    auditSink,
  };
}
