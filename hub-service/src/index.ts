#!/usr/bin/env node
/**
 * The service's entry point, and the only module with side effects: reads config, opens and
 * migrates the database, starts the worker, listens, and shuts down cleanly on SIGTERM/SIGINT.
 */
import type { Server as HttpServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { accessScopes, ConfigError, deprecations, loadConfig, withSecretsFile } from './config.js';
import { createApp } from './app.js';
import { Authenticator } from './auth.js';
import { openDatabase, seed } from './db/client.js';
import { HubClient } from './hub.js';
import { createLogger } from './logger.js';
import { LocalProvisioner } from './provisioners/local.js';
import { prepareUsersIsolation, SystemAccounts } from './provisioners/local-policy.js';
import type { Provisioner } from './provisioners/types.js';
import { AgentWatch } from './security/agent-watch.js';
import { pruneAudit } from './audit/retention.js';
import { createServices, jobTagFor, type Services } from './services.js';
import {
  TerraformProvisioner,
  terraformSettings,
  type TerraformSettings,
} from './provisioners/terraform/index.js';
import { Reconciler } from './reconcile/reconciler.js';
import { machineTable } from './catalog-file.js';
import { instrument } from './timing.js';
import { ReadCache } from './routes/read-cache.js';
import { PlanCache } from './metering/plan-cache.js';

const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** Variables of the service's own environment that local instances inherit. */
/** how long an idle keep-alive connection to the service stays open (tornado's default, 1 h) */
const KEEP_ALIVE_MS = 3_600_000;

const INHERITED = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'VIRTUAL_ENV', 'PYTHONPATH', 'TMPDIR'];

async function main(): Promise<void> {
  let config;
  // the environment plus the secrets the hub hands over in a file (NGSCI_SECRETS_FILE)
  let env: Record<string, string | undefined> = process.env;
  try {
    env = withSecretsFile(process.env);
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ngsci hub-service: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // every cloud setting is checked before anything else (the database, the listener): a problem
  // found at a user's launch, or at a machine's boot, costs them the wait and the organisation a VM
  let cloudSettings: TerraformSettings | null = null;
  if (config.NGSCI_PROVISIONER === 'terraform') {
    try {
      cloudSettings = terraformSettings(config as Parameters<typeof terraformSettings>[0], {
        env,
        dataDir: config.NGSCI_DATA_DIR,
        databaseUrl: config.DATABASE_URL,
        servicePrefix: config.JUPYTERHUB_SERVICE_PREFIX,
        // a cloud whose identity proofs cannot be checked would refuse every machine at boot
        checkIdentity: true,
      });
    } catch (err) {
      process.stderr.write(
        `ngsci hub-service: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      process.exit(2);
    }
  }
  const logger = createLogger(config.NGSCI_LOG_LEVEL);
  for (const line of deprecations(config)) logger.warn(line);
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.NGSCI_DATA_DIR });
  await database.migrate();
  await seed(database.db);
  logger.info({ database: database.kind }, 'database ready');

  const hub = new HubClient({
    apiUrl: config.JUPYTERHUB_API_URL,
    token: config.JUPYTERHUB_API_TOKEN,
  });
  const provisioners = new Map<string, Provisioner>();
  const homesDir = config.NGSCI_LOCAL_HOMES ?? join(config.NGSCI_DATA_DIR, 'homes');
  const runDir = join(config.NGSCI_DATA_DIR, 'run');
  if (config.NGSCI_LOCAL_ISOLATION === 'users') {
    // before any instance starts: the accounts must not reach the service's files
    try {
      prepareUsersIsolation({
        dataDir: config.NGSCI_DATA_DIR,
        homesDir,
        runDir,
        command: config.NGSCI_LOCAL_COMMAND,
        agentCommand: config.NGSCI_AGENT_COMMAND,
        datasetPath: config.NGSCI_LOCAL_DATASET_PATH,
        path: process.env.PATH ?? '',
      });
    } catch (err) {
      process.stderr.write(`ngsci hub-service: ${(err as Error).message}\n`);
      process.exit(2);
    }
  }
  const local = new LocalProvisioner({
    command: config.NGSCI_LOCAL_COMMAND,
    args: config.NGSCI_LOCAL_ARGS.split(' ').filter(Boolean),
    homesDir,
    runDir,
    logger,
    baseEnv: Object.fromEntries(
      INHERITED.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
    ),
    readyTimeoutSeconds: config.NGSCI_READY_TIMEOUT,
    agentCommand: config.NGSCI_AGENT_COMMAND,
    agentEnv: {
      ...(config.NGSCI_AGENT_NVIDIA_SMI ? { NGSCI_NVIDIA_SMI: config.NGSCI_AGENT_NVIDIA_SMI } : {}),
      ...(config.NGSCI_AGENT_GPU_INTERVAL
        ? { NGSCI_GPU_INTERVAL: `${config.NGSCI_AGENT_GPU_INTERVAL}s` }
        : {}),
    },
    datasetPath: config.NGSCI_LOCAL_DATASET_PATH,
    ...(config.NGSCI_LOCAL_ISOLATION === 'users'
      ? { accounts: new SystemAccounts({ prefix: config.NGSCI_LOCAL_USER_PREFIX, logger }) }
      : {}),
  });
  provisioners.set('local', local);
  logger.info(
    { isolation: config.NGSCI_LOCAL_ISOLATION, sharedDemo: config.NGSCI_LOCAL_SHARED_DEMO },
    'local instances isolation',
  );
  // cloud machines: one terraform provisioner serves the three cloud job tags
  let services: Services | null = null;
  if (cloudSettings) {
    const settings = cloudSettings;
    const terraform = new TerraformProvisioner({
      settings,
      issueBootstrapToken: (instanceId, env, opts) => {
        if (!services) throw new Error('the service is still starting');
        return services.bootstrap.issue(instanceId, env, opts);
      },
      recordCloudInstance: async (instanceId, cloudInstanceId) =>
        services?.bootstrap.recordCloudInstance(instanceId, cloudInstanceId),
      // ready means the machine itself reached the hub (and saw its GPU), not only that it answers
      bootStatus: async (instanceId) =>
        services ? services.bootReports.status(instanceId) : { state: 'pending' },
      // the built-in machine types plus those of the operator's catalog file
      machineTypes: machineTable(config.NGSCI_CATALOG_FILE?.catalog),
      watchIntervalMs: config.NGSCI_RUNNING_POLL_INTERVAL * 1000,
      log: (e) => logger[e.level]({ instance: e.instanceId }, `terraform: ${e.message}`),
    });
    for (const cloud of ['aws', 'gcp', 'azure'] as const)
      provisioners.set(`cloud=${cloud}`, terraform);
    for (const n of settings.notices) logger[n.level](n.message);
    logger.info(
      {
        binary: settings.binary,
        state: settings.backend,
        clouds: Object.keys(settings.placement),
        vmHubUrl: settings.vmHubOrigin,
        vmServiceUrl: settings.serviceUrl,
        // a pip spec may name a private index with its password: only its kind is logged
        images: [settings.image, settings.gpuImage].map((i) =>
          i.kind === 'docker' ? i.ref : 'pip requirements',
        ),
        lockTimeoutSeconds: settings.lockTimeoutSeconds,
        egress: settings.egressAllowCidrs ?? 'unrestricted',
      },
      'terraform provisioner ready',
    );
  }

  if (config.NGSCI_SERVER_TIMING) {
    // each answer says where its time went (timing.ts): the database's queries and the hub's
    // calls (every call to the hub's API goes through HubClient's one `request`)
    instrument(hub, ['request']);
    logger.info('NGSCI_SERVER_TIMING: answers carry a Server-Timing header');
  }
  services = createServices({ config, database, hub, logger, provisioners });
  const auth = new Authenticator({
    hub,
    accessScopes: accessScopes(config),
    adminScope: config.NGSCI_ADMIN_SCOPE,
    cacheSeconds: config.NGSCI_AUTH_CACHE_SECONDS,
    negativeCacheSeconds: config.NGSCI_AUTH_NEGATIVE_CACHE_SECONDS,
    cacheEntries: config.NGSCI_AUTH_CACHE_ENTRIES,
    // refused on user routes without a hub lookup: the hub has no use for it
    bridgeSecret: config.NGSCI_BRIDGE_SECRET,
  });
  // the plans in memory for GET /me, dropped on every replica when an admin changes them
  const plans = new PlanCache(
    database.db,
    config.NGSCI_DEFAULT_PLAN,
    config.NGSCI_METER_INTERVAL * 1000,
  );
  const stopFollowingPlans = await plans.follow({ database, logger });
  // the read routes' settled figures in memory, while a LISTEN hears every write to them
  const readCache = new ReadCache({ enabled: config.NGSCI_READ_CACHE === 'on' });
  const stopFollowingReads = await readCache.follow({ database, logger });
  const app = createApp({
    ...services,
    plans,
    readCache,
    auth,
    bridgeSecret: config.NGSCI_BRIDGE_SECRET,
    prefix: config.JUPYTERHUB_SERVICE_PREFIX,
    version,
    limits: config,
  });
  await services.worker.start();
  const reconciler = new Reconciler({
    store: services.store,
    queue: services.queue,
    hub,
    lifecycle: services.lifecycle,
    logger,
    provisioners,
    jobTag: jobTagFor,
    bootstrap: services.bootstrap,
    graceSeconds: config.NGSCI_RECONCILE_GRACE,
    orphans: services.orphans,
    intervalSeconds: config.NGSCI_RECONCILE_INTERVAL,
    kick: () => services?.worker.kick(),
  });
  await reconciler.start();
  await services.metering.prices.refresh();
  // every replica, leader or not: an admin's price change on another replica reaches launches here
  const stopFollowingPrices = await services.metering.prices.follow({
    database,
    intervalSeconds: config.NGSCI_METER_INTERVAL,
    logger,
  });
  if (config.NGSCI_METER_ENABLED) services.metering.meter?.start();
  services.health.start();
  const agentWatch = new AgentWatch({
    db: database.db,
    logger,
    store: services.store,
    security: services.security,
    stopServer: (user, server) => services!.lifecycle.stop(user, server),
    expectsAgent: (cloud) => cloud !== 'local' || Boolean(config.NGSCI_AGENT_COMMAND),
    silentAfterSeconds: config.NGSCI_AGENT_SILENT_AFTER,
    stopSilent: config.NGSCI_AGENT_SILENT_STOP,
    retentionSeconds: config.NGSCI_AGENT_RETENTION,
    intervalSeconds: Math.min(30, Math.max(1, config.NGSCI_AGENT_SILENT_AFTER / 4)),
    // audit events past NGSCI_AUDIT_RETENTION: archived first, then deleted (audit/retention.ts)
    housekeeping: async (now) => {
      await pruneAudit({ db: database.db, config, security: services!.security, logger }, now);
    },
  });
  agentWatch.start();

  const url = new URL(config.JUPYTERHUB_SERVICE_URL);
  const server = serve(
    { fetch: app.fetch, hostname: url.hostname, port: Number(url.port || 80) },
    (info) =>
      logger.info(
        { address: info.address, port: info.port, prefix: config.JUPYTERHUB_SERVICE_PREFIX },
        'listening',
      ),
  );

  // the hub's proxy keeps its connections to the service open and reuses them with no idle limit
  // of its own; Node's default (close after 5 s idle) races that reuse, and the request that
  // lands on a socket being closed is answered 503 by the proxy (seen under bench/api). Idle
  // connections stay open as long as the hub's own server (tornado) keeps them.
  (server as HttpServer).keepAliveTimeout = KEEP_ALIVE_MS;

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    server.close();
    services.health.stop();
    await agentWatch.close();
    await services.metering.meter?.close();
    await stopFollowingPrices();
    await stopFollowingPlans();
    await stopFollowingReads();
    await reconciler.close();
    await services.worker.close();
    // deliveries already under way (email, webhook) finish before the process ends
    await services.notifications.idle();
    services.notifications.close();
    // `npm start` restarting the hub (SIGUSR2) leaves this marker: instances outlive that restart
    const hubRestart = existsSync(join(config.NGSCI_DATA_DIR, 'run', 'keep-instances'));
    if (config.NGSCI_LOCAL_STOP_ON_SHUTDOWN && !hubRestart) {
      // a one-machine run (npm start): leave no process behind, and close each instance's billing now
      for (const id of local.instanceIds()) {
        await local.stop(id, {});
        await services.store.transition(id, 'stopped', 100, 'stopped: the service shut down', {
          stoppedAt: new Date(),
        });
      }
    }
    for (const p of provisioners.values()) await p.close({ stopInstances: false });
    await database.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `ngsci hub-service failed to start: ${err instanceof Error ? err.stack : String(err)}\n`,
  );
  process.exit(1);
});
