/**
 * Resize as a durable workflow. Accepting a resize records the target machine on the instance row
 * (`resize_target`, `resize_state = stopping`) and asks the hub to stop the server; when the stop
 * job has removed the old machine, the worker moves the resize on (`starting`) and asks the hub to
 * start the server with the target's options; the bridge's start consumes the target (`done`).
 * Everything between those steps is in the row, so a restarted service resumes where it stopped,
 * and a stop that fails abandons the resize: never a new machine on top of a running one.
 */
import { toHubServerName } from '@ngsci/contract';
import type { HubClient } from '../hub.js';
import type { Logger } from '../logger.js';
import type { Notifier } from '../notify/types.js';
import type { InstanceRow, InstanceStore, ResizeTarget } from './store.js';

export interface ResizeDeps {
  store: InstanceStore;
  hub: Pick<HubClient, 'getServer' | 'startServer'> & Partial<Pick<HubClient, 'stopServer'>>;
  logger: Logger;
  /** tells users of abandoned resizes */
  notifier?: Notifier;
  /** how often the hub and the row are looked at while the start is asked for */
  pollMs?: number;
  /** after this long since the old machine stopped, a resize that never started is abandoned */
  giveUpSeconds?: number;
}

/** The spawn options the hub is given for a target: what the bridge's start receives back. */
export function targetOptions(t: ResizeTarget): {
  size: string;
  cloud: string;
  region: string;
  spot: boolean;
} {
  return { size: t.size, cloud: t.cloud, region: t.region, spot: t.spot };
}

/** Whether a spawn's options ask for the resize's target (the hub hands back what it was given). */
export function asksForTarget(
  t: ResizeTarget,
  o: { size: string; cloud?: string | undefined; region?: string | undefined; spot?: boolean },
): boolean {
  return (
    o.size === t.size &&
    (o.cloud ?? t.cloud) === t.cloud &&
    (o.region ?? t.region) === t.region &&
    (o.spot ?? false) === t.spot
  );
}

export class Resizes {
  /** resizes this process is following now, so a reaper tick does not follow one twice */
  private readonly following = new Set<string>();
  private closed = false;
  private readonly pollMs: number;
  private readonly giveUpMs: number;

  constructor(private readonly d: ResizeDeps) {
    this.pollMs = d.pollMs ?? 500;
    this.giveUpMs = (d.giveUpSeconds ?? 600) * 1000;
  }

  /**
   * The old instance's stop has finished: ask the hub for the new size and wait until the bridge
   * has made the successor. Safe to call again, from any replica: the row says what is left to do.
   */
  async startSuccessor(oldId: string): Promise<void> {
    if (this.closed || this.following.has(oldId)) return;
    this.following.add(oldId);
    try {
      const row = await this.d.store.resizeStopped(oldId);
      if (!row || row.resizeState !== 'starting' || !row.resizeTarget) return;
      await this.askHub(row, row.resizeTarget);
    } catch (err) {
      // the row still says `starting`: the next reaper tick, or the next process, tries again
      this.d.logger.warn({ err, instance: oldId }, 'resize: could not start the new size yet');
    } finally {
      this.following.delete(oldId);
    }
  }

  private async askHub(row: InstanceRow, target: ResizeTarget): Promise<void> {
    const hubName = toHubServerName(row.serverName);
    const giveUpAt = (row.stoppedAt ?? new Date()).getTime() + this.giveUpMs;
    let asked = false;
    // after a preemption the hub learns of the ended server only at its next poll: told at once
    let toldHub = !target.preempted;
    while (!this.closed) {
      const now = await this.d.store.get(row.id);
      if (now?.resizeState !== 'starting') return; // the bridge made the successor, or it was abandoned
      const latest = await this.d.store.latest(row.userName, row.serverName);
      if (latest && latest.id !== row.id) {
        // a newer instance exists (the bridge's start ended before it could say so, or the user
        // launched meanwhile): the server is the user's again
        await this.d.store.endResize(row.id, 'done');
        return;
      }
      if (Date.now() > giveUpAt) {
        await this.abandon(row.id, 'JupyterHub did not start the new size in time');
        return;
      }
      if (!asked) {
        // the hub's own stop ends moments after ours (its spawner sees `stopped` on its next poll);
        // until then it refuses a start
        const hubServer = await this.d.hub.getServer(row.userName, hubName).catch(() => undefined);
        if (hubServer && !toldHub && this.d.hub.stopServer) {
          toldHub = true;
          await this.d.hub
            .stopServer(row.userName, hubName)
            .catch((err: unknown) =>
              this.d.logger.warn({ err, instance: row.id }, 'preempted: the hub refused the stop'),
            );
        }
        if (hubServer === null) {
          try {
            await this.d.hub.startServer(row.userName, hubName, targetOptions(target));
            asked = true;
            this.d.logger.info(
              { instance: row.id, user: row.userName, server: row.serverName, size: target.size },
              'resize: asked the hub for the new size',
            );
          } catch (err) {
            this.d.logger.warn({ err, instance: row.id }, 'resize: the hub refused the start');
          }
        }
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /**
   * Gives a resize up, with an event on the old instance and, when `notify`, a notice to the user.
   * Nothing is started. Only the first caller for a resize has any effect.
   */
  async abandon(id: string, why: string, opts: { notify?: boolean } = {}): Promise<void> {
    const current = await this.d.store.get(id);
    const size = current?.resizeTarget?.size ?? 'the new size';
    const preempted = current?.resizeTarget?.preempted === true;
    const row = await this.d.store.endResize(
      id,
      'abandoned',
      preempted
        ? `starting again after the preemption abandoned: ${why}`
        : `resize to ${size} abandoned: ${why}`,
    );
    if (!row) return;
    this.d.logger.warn({ instance: id, user: row.userName, why }, 'resize abandoned');
    if (opts.notify === false || !this.d.notifier) return;
    try {
      await this.d.notifier.send({
        user: row.userName,
        kind: 'failure',
        level: 'error',
        title: preempted
          ? `Server '${row.serverName}' was not started again after the cloud took its spot machine`
          : `Server '${row.serverName}' was not resized to ${size}`,
        body: `${why}. Nothing was started on the new size; start the server again when you are ready.`,
        instanceId: row.id,
        server: row.serverName,
        dedupeKey: `resize:${row.id}`,
      });
    } catch (err) {
      // a notice that cannot be delivered must not change what happened to the resize
      this.d.logger.warn({ err, instance: id }, 'could not send the resize notice');
    }
  }

  /**
   * After a restart and on every reaper tick: resizes whose old instance has ended but whose new
   * size was never made. A stopped old instance goes on to its start (`follow` keeps the promise
   * so shutting down waits for it); one that failed instead is given up.
   */
  async resume(follow: (p: Promise<void>) => void): Promise<void> {
    for (const row of await this.d.store.unfinishedResizes()) {
      if (row.state === 'stopped') follow(this.startSuccessor(row.id));
      else await this.abandon(row.id, 'the server failed before the resize could stop it');
    }
  }

  /** Stops following resizes; the rows keep them for the next process. */
  close(): void {
    this.closed = true;
  }
}
