/**
 * Spot preemption. A spot instance carries what its user wants when the cloud takes the machine
 * back (`on_preemption`: start it again on demand, on spot, or leave it stopped). The instance's
 * agent reports the cloud's notice (routes/agent.ts records `spot_notice_at`; open JupyterLab pages
 * save their documents when they see the notice). When the provisioner then reports the machine
 * gone (the process killed, the VM no longer answering), the instance ends `stopped` with
 * `error_code = preempted` at that moment, which closes its billing exactly there, and a relaunch
 * is recorded as a resize to the same size on the chosen capacity: the resize workflow
 * (resize.ts) asks the hub for the server again and the bridge's start makes the new instance at
 * its own rate. A spot machine that ends without a notice is a crash like any other.
 */
import type { Catalog, Cloud, OnPreemption } from '@ngsci/contract';
import { resolveOffer } from '../catalog.js';
import type { ExitReport } from '../provisioners/types.js';
import type { InstanceRow, ResizeTarget } from './store.js';

export const ON_PREEMPTION = ['on-demand', 'spot', 'stop'] as const;

/** What a new instance records: only spot instances can be preempted. */
export function onPreemptionFor(
  spot: boolean,
  asked: OnPreemption | undefined,
  serviceDefault: OnPreemption,
): OnPreemption | null {
  return spot ? (asked ?? serviceDefault) : null;
}

export type PreemptionPlan =
  { preempted: false } | { preempted: true; relaunch: 'on-demand' | 'spot' | null };

/**
 * Whether a machine that ended on its own was taken back by the cloud, and what follows. Only a
 * running spot instance whose agent reported the cloud's notice counts; anything else is a crash.
 */
export function preemptionPlan(
  row: Pick<InstanceRow, 'spot' | 'state' | 'spotNoticeAt' | 'onPreemption'>,
  _report?: Pick<ExitReport, 'errorCode'>,
): PreemptionPlan {
  if (!row.spot || row.state !== 'running' || !row.spotNoticeAt) return { preempted: false };
  const choice = row.onPreemption ?? 'stop';
  return { preempted: true, relaunch: choice === 'stop' ? null : choice };
}

/** The machine a relaunch starts on: the same size, cloud and region, on the chosen capacity. */
export function relaunchTarget(
  catalog: Catalog,
  row: Pick<InstanceRow, 'sizeId' | 'cloud' | 'region'>,
  relaunch: 'on-demand' | 'spot',
): ResizeTarget {
  const spot = relaunch === 'spot';
  const { size, offer, ratePerHourMicros } = resolveOffer(catalog, {
    size: row.sizeId,
    cloud: row.cloud as Cloud,
    region: row.region,
    spot,
  });
  return {
    size: size.id,
    cloud: offer.cloud,
    region: offer.region,
    spot,
    ratePerHourMicros,
    preempted: true,
  };
}

/** The words the instance's history, the page and the notice use. */
export function preemptionMessage(
  relaunch: 'on-demand' | 'spot' | null,
  serverName: string,
): { event: string; title: string; body: string } {
  const took = `The cloud took back the spot machine of server '${serverName}'.`;
  if (!relaunch)
    return {
      event:
        'the cloud took this spot machine back; stopped, as chosen at launch (on preemption: stop)',
      title: `Server '${serverName}' was stopped: the cloud took its spot machine back`,
      body: `${took} It stays stopped, as you chose at launch (on preemption: stop); start it again when you are ready. Your home folder is kept.`,
    };
  const where = relaunch === 'on-demand' ? 'on demand (billed at the on-demand price)' : 'on spot';
  return {
    event: `the cloud took this spot machine back; starting the server again ${where}`,
    title: `Server '${serverName}' is starting again ${relaunch === 'on-demand' ? 'on demand' : 'on spot'}`,
    body: `${took} ngsci is starting the same server again ${where}; open pages reconnect when it is ready. Your home folder is kept.`,
  };
}
