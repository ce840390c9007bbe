/**
 * What users and the spawner-bridge ask of instances. User requests (launch, stop, resize) are
 * checked here and then handed to JupyterHub, which calls the bridge, which calls back into the
 * bridge half of this class: the hub stays in charge of its servers, the service of machines
 * and money. A resize is accepted here and carried on by the resize workflow (resize.ts).
 */
import {
  ACTIVE_STATES,
  DEFAULT_SERVER,
  ServerName,
  chosenSizeId,
  toApiServerName,
  toHubServerName,
  type BridgeStartRequest,
  type Catalog,
  type Cloud,
  type LaunchRequest,
  type OnPreemption,
  type ResizeRequest,
} from '@ngsci/contract';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { ApiError } from '../errors.js';
import { findSize, resolveOffer } from '../catalog.js';
import type { HubClient } from '../hub.js';
import type { Logger } from '../logger.js';
import { rowContext, type SecretBox } from '../secrets.js';
import type { Db } from '../db/client.js';
import { instances, instanceSecrets } from '../db/schema.js';
import type { JobQueue } from './jobs.js';
import { InstanceStore, type InstanceRow, type ResizeTarget } from './store.js';
import { asksForTarget, type Resizes } from './resize.js';
import { onPreemptionFor } from './preemption.js';
import { PreemptionChoiceStore } from './preemption-choice.js';
import { Credits, placementToAct } from '../metering/credits.js';

export interface LifecycleDeps {
  db: Db;
  store: InstanceStore;
  queue: JobQueue;
  hub: Pick<HubClient, 'startServer' | 'stopServer' | 'groupsOf'>;
  box: SecretBox;
  logger: Logger;
  catalog: () => Catalog;
  /** the job tag a cloud's provisioning jobs carry */
  jobTag: (cloud: Cloud) => string;
  /** wakes the local worker so a new job starts at once */
  kick: () => void;
  sleep?: (ms: number) => Promise<void>;
  /** quotas and budgets (metering/quotas.ts): throws a 403 naming the limit before anything starts */
  quotaGuard?: QuotaGuard;
  /** local isolation (provisioners/local-policy.ts): a 403 for a second user on a shared uid */
  localGate?: { check(user: string, cloud: string): Promise<void> };
  /** the resize workflow, given up here when the hub will not stop or the bridge cannot start */
  resizes: Pick<Resizes, 'abandon'>;
  /** what a spot instance does when the cloud takes it back, when its launch did not say */
  preemptionDefault?: OnPreemption;
  /** where a start that names no cloud goes (metering/credits.ts; default: by credits, then price) */
  placement?: (req: { size: string; spot?: boolean | undefined }) => Promise<{
    cloud: Cloud;
    region: string;
    reason: string;
    options: readonly unknown[];
  } | null>;
}

export interface QuotaGuard {
  check(
    user: string,
    groups: readonly string[] | undefined,
    req: { size: string; replacing?: string },
  ): Promise<void>;
  limitsFor(user: string, groups: readonly string[]): Promise<{ maxConcurrent: number | null }>;
}

/**
 * The advisory lock space of "one user's instance rows": a new row is counted against the user's
 * concurrency limit and inserted while the lock is held, on every replica (a transaction lock,
 * released by the commit that makes the row visible).
 */
const USER_INSTANCES_LOCK = 0x6e677175;

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** How often (every 500 ms) a launch the hub failed looks for the stop that overtook it. */
const OVERTAKEN_POLLS = 10;

export class Lifecycle {
  private readonly sleep: (ms: number) => Promise<void>;

  private readonly place: NonNullable<LifecycleDeps['placement']>;

  constructor(private readonly d: LifecycleDeps) {
    this.sleep = d.sleep ?? defaultSleep;
    const credits = new Credits(d.db);
    this.place = d.placement ?? ((req) => credits.placement(d.catalog(), req, new Date()));
  }

  /**
   * A placement worth acting on (credits.ts placementToAct): one among several clouds, or the
   * only cloud offering the size when that is not the default; else the default cloud decides.
   */
  private choice<T extends { cloud: string; options: readonly unknown[] }>(p: T | null): T | null {
    return placementToAct(this.d.catalog(), p);
  }

  // ---- user requests, checked here and carried out through the hub

  async launch(
    user: string,
    req: Required<Pick<LaunchRequest, 'server' | 'size' | 'spot'>> & LaunchRequest,
  ): Promise<InstanceRow & { placement?: string }> {
    const server = req.server ?? DEFAULT_SERVER;
    // no cloud named: the one where the size costs the organisation least after credits
    const placed = req.cloud ? null : this.choice(await this.place(req));
    if (placed) req = { ...req, cloud: placed.cloud, region: placed.region };
    const { offer: launchOffer } = resolveOffer(this.d.catalog(), req);
    await this.d.localGate?.check(user, launchOffer.cloud);
    const current = await this.d.store.active(user, server);
    if (current) {
      throw new ApiError(
        409,
        'instance_busy',
        `server '${server}' is already ${current.state}; stop it first or resize it`,
      );
    }
    await this.checkQuota(user, { size: req.size });
    const options = spawnOptions(req);
    const before = await this.d.store.latest(user, server);
    try {
      await this.d.hub.startServer(user, toHubServerName(server), options);
    } catch (err) {
      throw (await this.overtakenByStop(user, server, before, err)) ?? err;
    }
    const row = await this.waitForRow(user, server);
    return placed ? { ...row, placement: placed.reason } : row;
  }

  /**
   * A stop that comes while the hub still waits on the spawn makes the hub cancel it and answer
   * the launch with a bare 500, and only then stop the server through the bridge: that is a
   * launch overtaken by a stop (409), not a hub fault, when the instance this launch made turns
   * stopping within a few seconds (found by API fuzzing).
   */
  private async overtakenByStop(
    user: string,
    server: string,
    before: InstanceRow | null,
    err: unknown,
  ): Promise<ApiError | null> {
    if (!(err instanceof ApiError) || err.code !== 'hub_refused' || err.status !== 502) return null;
    let stopped = false;
    for (let i = 0; i < OVERTAKEN_POLLS && !stopped; i++) {
      if (i) await this.sleep(500);
      const now = await this.d.store.latest(user, server);
      // no instance of this launch: the hub failed before it asked the bridge
      if (!now || now.id === before?.id) return null;
      stopped = ['stopping', 'stopped'].includes(now.state);
    }
    if (!stopped) return null;
    return new ApiError(
      409,
      'instance_busy',
      `server '${server}' was stopped while it was starting (a stop from another page or an admin)`,
    );
  }

  async stop(user: string, server: string): Promise<InstanceRow> {
    const current = await this.d.store.active(user, server);
    if (!current)
      throw new ApiError(404, 'not_found', `server '${server}' has no running instance`);
    clearTimeout(this.announcedStops.get(current.id));
    this.announcedStops.delete(current.id);
    await this.d.hub.stopServer(user, toHubServerName(server));
    return (await this.d.store.get(current.id)) ?? current;
  }

  /**
   * A stop announced before it happens (`%%ngsci stop_after`): an event on the instance says who
   * asked and when it stops; open JupyterLab pages save their documents and confirm with a plain
   * stop, and without one the stop happens when the grace is over. The timer is this replica's
   * (a restart within the grace loses it; the kernel that asked has its answer by then).
   */
  async stopAfterGrace(
    user: string,
    server: string,
    req: { reason: 'stop_after'; cell: 'finished' | 'failed'; graceSeconds: number },
  ): Promise<InstanceRow> {
    const current = await this.d.store.active(user, server);
    if (!current)
      throw new ApiError(404, 'not_found', `server '${server}' has no running instance`);
    if (current.state !== 'running') return this.stop(user, server);
    const at = new Date(Date.now() + req.graceSeconds * 1000);
    await this.d.store.note(
      current.id,
      100,
      `stop requested by %%ngsci ${req.reason} after the cell ${req.cell}: stops at ` +
        `${at.toISOString()} unless an open page saves its documents and stops it first`,
    );
    const key = current.id;
    clearTimeout(this.announcedStops.get(key));
    const timer = setTimeout(() => {
      this.announcedStops.delete(key);
      // only the instance that asked: a server started again within the grace keeps running
      this.d.store
        .active(user, server)
        .then((now) => (now?.id === key ? this.stop(user, server) : undefined))
        .catch((err: unknown) => {
          // stopped already (the page confirmed) is the usual case
          if (!(err instanceof ApiError && err.code === 'not_found'))
            this.d.logger.warn({ err, instance: key }, 'the announced stop failed');
        });
    }, req.graceSeconds * 1000);
    timer.unref?.();
    this.announcedStops.set(key, timer);
    return current;
  }

  private readonly announcedStops = new Map<string, ReturnType<typeof setTimeout>>();

  /**
   * Resize is stop + start with new options; the home volume stays. The target machine is resolved,
   * checked against quotas and recorded on the instance here, once; the stop job's end asks the hub
   * for the new size (resize.ts). It returns once the stop is under way; the events stream of the
   * server follows the rest (the new instance is a new row).
   */
  async resize(user: string, server: string, req: ResizeRequest): Promise<InstanceRow> {
    const current = await this.d.store.active(user, server);
    if (!current)
      throw new ApiError(404, 'not_found', `server '${server}' has no running instance`);
    if (current.state !== 'running') {
      throw new ApiError(
        409,
        'instance_busy',
        `server '${server}' is ${current.state}; resize needs a running server`,
      );
    }
    const spot = req.spot ?? current.spot;
    const { size, offer, ratePerHourMicros } = resolveOffer(this.d.catalog(), {
      size: req.size,
      cpu: req.cpu,
      gpu: req.gpu,
      cloud: req.cloud ?? (current.cloud as Cloud),
      region: req.region ?? (req.cloud && req.cloud !== current.cloud ? undefined : current.region),
      spot,
    });
    await this.d.localGate?.check(user, offer.cloud);
    await this.checkQuota(user, { size: size.id, replacing: current.id });
    const target: ResizeTarget = {
      size: size.id,
      cloud: offer.cloud,
      region: offer.region,
      spot,
      ratePerHourMicros,
    };
    const accepted = await this.d.store.acceptResize(
      current.id,
      target,
      `resizing from ${current.sizeId} to ${size.id}`,
    );
    if (!accepted) {
      throw new ApiError(
        409,
        'instance_busy',
        `server '${server}' is already being resized or stopped`,
      );
    }
    try {
      await this.d.hub.stopServer(user, toHubServerName(server));
    } catch (err) {
      // the hub's stop reached this service before the hub failed (it went away mid-request, a
      // restart): the old machine is stopping, and the resize goes on when its stop job ends
      const now = await this.d.store.get(current.id);
      if (now && now.state !== 'running' && now.resizeState === 'stopping') return now;
      // the caller hears why; the old machine keeps running and nothing waits on its stop
      await this.d.resizes.abandon(
        current.id,
        `JupyterHub did not stop the server (${err instanceof Error ? err.message : String(err)})`,
        { notify: false },
      );
      throw err;
    }
    return (await this.d.store.get(current.id)) ?? current;
  }

  /**
   * The quota and budget check before anything starts. The user's groups come from the hub, and
   * a hub that cannot tell them refuses the request (503): skipping them would skip every group
   * budget and quota. Answers the groups for a later check under the lock.
   */
  private async checkQuota(
    user: string,
    req: { size: string; replacing?: string },
  ): Promise<readonly string[]> {
    if (!this.d.quotaGuard) return [];
    const groups = await this.d.hub.groupsOf(user);
    await this.d.quotaGuard.check(user, groups, req);
    return groups;
  }

  /**
   * Inserts a new instance row while holding the user's lock, after counting the user's active
   * instances again under it: two launches at once cannot both pass a concurrency limit, whichever
   * replica serves them. Null when the server already has an active row.
   */
  private async createCounted(
    row: Parameters<InstanceStore['create']>[0],
    message: string,
    maxConcurrent: number | null,
    /** more writes that stand or fall with the row, in its transaction */
    withRow?: (tx: Db, row: InstanceRow) => Promise<void>,
  ): Promise<InstanceRow | null> {
    return this.d.db.transaction(async (tx) => {
      await tx.execute(
        sql`select pg_advisory_xact_lock(${USER_INSTANCES_LOCK}, hashtext(${row.userName}))`,
      );
      if (maxConcurrent !== null) {
        const active = await tx
          .select({ id: instances.id })
          .from(instances)
          .where(
            and(eq(instances.userName, row.userName), inArray(instances.state, [...ACTIVE_STATES])),
          );
        if (active.length >= maxConcurrent)
          throw new ApiError(
            403,
            'quota_exceeded',
            `at most ${maxConcurrent} concurrent instance(s) allowed for ${row.userName}; ${active.length} already active`,
          );
      }
      const created = await new InstanceStore(tx as unknown as Db).create(row, message);
      if (created && withRow) await withRow(tx as unknown as Db, created);
      return created;
    });
  }

  /** The hub creates the row through the bridge within moments of accepting a spawn. */
  private async waitForRow(user: string, server: string): Promise<InstanceRow> {
    for (let i = 0; i < 100; i++) {
      const row = await this.d.store.latest(user, server);
      if (row && Date.now() - row.createdAt.getTime() < 60_000) return row;
      await this.sleep(100);
    }
    throw new ApiError(
      502,
      'hub_unreachable',
      'JupyterHub accepted the launch but never asked for the instance',
    );
  }

  // ---- the spawner-bridge's requests (the hub is already starting or stopping its server)

  async bridgeStart(req: BridgeStartRequest): Promise<InstanceRow> {
    if (req.server === DEFAULT_SERVER) {
      throw new ApiError(
        400,
        'invalid_server_name',
        `'${DEFAULT_SERVER}' names the default server in ngsci; choose another name`,
      );
    }
    const server = toApiServerName(req.server);
    if (!ServerName.safeParse(server).success) {
      throw new ApiError(
        400,
        'invalid_server_name',
        `server name '${req.server}' is not allowed: ${ServerName.description ?? 'use lower-case letters, digits and dashes'}`,
      );
    }
    // the start a resize asked for: its machine was resolved and checked when it was accepted
    const prior = await this.d.store.latest(req.user, server);
    const resizing =
      prior?.resizeState === 'starting' &&
      prior.resizeTarget &&
      asksForTarget(prior.resizeTarget, { ...req.options, size: chosenSizeId(req.options) ?? '' })
        ? { from: prior, target: prior.resizeTarget }
        : null;
    const machine = resizing
      ? {
          sizeId: resizing.target.size,
          label: findSize(this.d.catalog(), resizing.target.size)?.label ?? resizing.target.size,
          cloud: resizing.target.cloud,
          region: resizing.target.region,
          spot: resizing.target.spot,
          rate: resizing.target.ratePerHourMicros,
          // checked with the old instance replaced when the resize was accepted
          maxConcurrent: null,
          placement: null,
        }
      : await this.checkedMachine(req.user, req.options);
    const { spot } = machine;
    const row = await this.createCounted(
      {
        userName: req.user,
        serverName: server,
        sizeId: machine.sizeId,
        cloud: machine.cloud,
        region: machine.region,
        spot,
        state: 'requested',
        listRatePerHourMicros: machine.rate,
        baseUrl: req.baseUrl,
        // a resize or a relaunch after a preemption keeps the choice made at launch
        // otherwise the launch's own choice, else the user's default, else the admin's
        onPreemption: onPreemptionFor(
          spot,
          (resizing ? resizing.from.onPreemption : req.options.onPreemption) ?? undefined,
          (spot && !resizing && !req.options.onPreemption
            ? (await new PreemptionChoiceStore(this.d.db).get(req.user))?.choice
            : undefined) ??
            this.d.preemptionDefault ??
            'spot',
        ),
        // the start may go on demand when spot has no capacity (store.switchToOnDemand); kept in
        // the provider reference, which is empty until the machine runs
        ...(spot && !resizing && req.options.spotFallback
          ? { providerRef: { spotFallback: true } }
          : {}),
      },
      `requested ${machine.label} (${machine.sizeId}) on ${machine.cloud}${spot ? ' spot' : ''}${machine.placement ? ` (${machine.placement})` : ''}`,
      machine.maxConcurrent,
      // the row, its sealed environment and its start job are written together: a write that
      // fails halfway (a full disk, a restart) must not leave an instance no job will ever start
      async (tx, created) => {
        await tx.insert(instanceSecrets).values({
          instanceId: created.id,
          ciphertext: this.d.box.seal(JSON.stringify(req.env), instanceSecretsRow(created.id)),
        });
        await this.d.queue.enqueue(created.id, 'start', this.d.jobTag(machine.cloud as Cloud), tx);
      },
    );
    if (!row) {
      const current = await this.d.store.active(req.user, server);
      if (resizing)
        await this.d.resizes.abandon(
          resizing.from.id,
          `the server was already ${current?.state ?? 'active'} again`,
        );
      throw new ApiError(
        409,
        'instance_busy',
        `server '${server}' is already ${current?.state ?? 'active'}`,
      );
    }
    if (resizing) await this.d.store.endResize(resizing.from.id, 'done');
    this.d.kick();
    this.d.logger.info(
      {
        instance: row.id,
        user: req.user,
        server,
        size: machine.sizeId,
        cloud: machine.cloud,
        ...(resizing ? { resizedFrom: resizing.from.id } : {}),
      },
      'instance requested',
    );
    return row;
  }

  /** A spawn's machine, resolved and checked: a spawn from the hub's own form arrives only here. */
  private async checkedMachine(user: string, asked: BridgeStartRequest['options']) {
    // the spawn form without a cloud: placed by credits, then price; the reason goes in the event
    // a pair (cpu, gpu) is placed as its size id, `m.t4`, like a named size
    const askedSize = chosenSizeId(asked);
    const placed =
      asked.cloud || !askedSize
        ? null
        : this.choice(await this.place({ size: askedSize, spot: asked.spot }));
    const options = placed ? { ...asked, cloud: placed.cloud, region: placed.region } : asked;
    const { offer, size, ratePerHourMicros } = resolveOffer(this.d.catalog(), options);
    const spot = options.spot ?? false;
    await this.d.localGate?.check(user, offer.cloud);
    const groups = await this.checkQuota(user, { size: size.id });
    const limits = await this.d.quotaGuard?.limitsFor(user, groups);
    return {
      sizeId: size.id,
      label: size.label,
      cloud: offer.cloud,
      region: offer.region,
      spot,
      rate: ratePerHourMicros,
      maxConcurrent: limits?.maxConcurrent ?? null,
      placement: placed?.reason ?? null,
    };
  }

  async bridgeStop(user: string, hubServer: string): Promise<InstanceRow | null> {
    const server = toApiServerName(hubServer);
    const current = await this.d.store.active(user, server);
    if (!current) return this.d.store.latest(user, server);
    if (current.state === 'stopping') return current;
    await this.d.queue.cancelStarts(current.id);
    const row = await this.d.store.transition(current.id, 'stopping', 0, 'stopping', {
      stopRequestedAt: new Date(),
    });
    if (!(await this.d.queue.pending(current.id, 'stop'))) {
      await this.d.queue.enqueue(current.id, 'stop', this.d.jobTag(current.cloud as Cloud));
    }
    this.d.kick();
    return row ?? (await this.d.store.get(current.id));
  }

  async bridgeStatus(user: string, hubServer: string): Promise<InstanceRow | null> {
    return this.d.store.latest(user, toApiServerName(hubServer));
  }
}

function spawnOptions(req: {
  size: string;
  cloud?: Cloud | undefined;
  region?: string | undefined;
  spot?: boolean | undefined;
  spotFallback?: boolean | undefined;
  onPreemption?: OnPreemption | undefined;
}) {
  return {
    size: req.size,
    ...(req.cloud ? { cloud: req.cloud } : {}),
    ...(req.region ? { region: req.region } : {}),
    spot: req.spot ?? false,
    ...(req.spot && req.spotFallback ? { spotFallback: true } : {}),
    ...(req.spot && req.onPreemption ? { onPreemption: req.onPreemption } : {}),
  };
}

/** The name an instance's sealed environment is bound to: its instance_secrets row. */
export const instanceSecretsRow = (instanceId: string): string =>
  rowContext('instance_secrets', instanceId);
