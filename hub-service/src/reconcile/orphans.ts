/**
 * Servers on one side only, in one place: an instance ngsci runs whose hub server is gone is
 * stopped (and its billing closed) once it has been missing for NGSCI_RECONCILE_GRACE; a server
 * the hub runs that ngsci does not know is reported, never billed. Two observers feed it: the
 * reconciler's rounds (every replica, the hub asked user by user) and the meter's per-cycle hub
 * listing (the leader, every few seconds), so an orphan is closed about one grace after it went
 * missing. They share one clock per instance, counted from when this replica first saw it missing.
 * The hub not answering is never "gone": callers only observe what the hub did answer.
 */
import { toApiServerName, toHubServerName } from '@ngsci/contract';
import type { HubUserModel } from '../hub.js';
import type { Lifecycle } from '../instances/lifecycle.js';
import type { InstanceRow, InstanceStore } from '../instances/store.js';
import type { Logger } from '../logger.js';

export interface OrphansDeps {
  store: Pick<InstanceStore, 'note'>;
  lifecycle: Pick<Lifecycle, 'bridgeStop'>;
  logger: Logger;
  /** seconds an instance may be missing from the hub before it is stopped */
  graceSeconds: number;
}

const keyOf = (user: string, server: string) => `${user}/${server}`;

export class Orphans {
  /** instance id → when this process first saw its hub server gone */
  private readonly missingSince = new Map<string, number>();
  private readonly reportedUnknown = new Set<string>();

  constructor(private readonly d: OrphansDeps) {}

  /**
   * One observation of `rows` against the hub: `present(row)` says whether the hub has its
   * server. Those missing for the grace are stopped through the hub (the bridge's stop path);
   * answers their ids.
   */
  async observe(
    rows: InstanceRow[],
    present: (row: InstanceRow) => boolean,
    now: number,
  ): Promise<string[]> {
    const stopped: string[] = [];
    for (const row of rows) {
      if (present(row)) {
        this.missingSince.delete(row.id);
        continue;
      }
      const since = this.missingSince.get(row.id) ?? now;
      this.missingSince.set(row.id, since);
      if (now - since < this.d.graceSeconds * 1000) continue;
      this.missingSince.delete(row.id);
      this.d.logger.warn(
        { instance: row.id, user: row.userName, server: row.serverName },
        'JupyterHub no longer runs this server; stopping the instance',
      );
      await this.d.store.note(
        row.id,
        row.state === 'running' ? 100 : 0,
        `JupyterHub has no server '${row.serverName}' for ${row.userName} any more: stopping it and closing its billing`,
      );
      await this.d.lifecycle.bridgeStop(row.userName, toHubServerName(row.serverName));
      stopped.push(row.id);
    }
    return stopped;
  }

  /** Forgets the clocks of instances not in `ids` (they stopped, or are stopping anyway). */
  keepOnly(ids: Set<string>): void {
    for (const id of this.missingSince.keys()) if (!ids.has(id)) this.missingSince.delete(id);
  }

  /**
   * The meter's per-cycle listing of the hub's active servers, against the service's active
   * instances: `running` instances the hub does not list are observed as missing; hub servers
   * no active instance backs are answered (and logged once each).
   */
  async fromListing(
    listing: HubUserModel[],
    active: InstanceRow[],
    running: InstanceRow[],
    now: Date,
  ): Promise<{ unknownServers: string[]; orphansClosed: string[] }> {
    const listed = new Set<string>();
    for (const u of listing)
      for (const hubName of Object.keys(u.servers ?? {}))
        listed.add(keyOf(u.name, toApiServerName(hubName)));
    const known = new Set(active.map((r) => keyOf(r.userName, r.serverName)));
    const unknownServers: string[] = [];
    for (const key of listed) {
      if (known.has(key)) continue;
      unknownServers.push(key);
      if (!this.reportedUnknown.has(key)) {
        this.reportedUnknown.add(key);
        const [user, server] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
        this.d.logger.warn(
          { user, server: toHubServerName(server) },
          'the hub runs a server ngsci does not know (started by another spawner?); it is not billed',
        );
      }
    }
    const orphansClosed = await this.observe(
      running,
      (r) => listed.has(keyOf(r.userName, r.serverName)),
      now.getTime(),
    );
    return { unknownServers, orphansClosed };
  }
}
