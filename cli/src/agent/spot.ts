/**
 * Spot and preemption notices from the cloud's instance metadata endpoint:
 * - AWS: `GET /latest/meta-data/spot/instance-action` with an IMDSv2 token (404 = nothing planned);
 * - GCP: `GET /computeMetadata/v1/instance/preempted` with `Metadata-Flavor: Google` ("TRUE"/"FALSE");
 * - Azure: `GET /metadata/scheduledevents` with `Metadata: true` (events of type Preempt).
 * The base URL is configurable, so tests point it at a local server with recorded answers.
 */
export type SpotCloud = 'aws' | 'gcp' | 'azure';

export interface SpotEvent {
  cloud: SpotCloud;
  action: string;
  /** when the cloud will act, ISO 8601, if it says */
  at: string | null;
}

export const DEFAULT_METADATA_URL: Record<SpotCloud, string> = {
  aws: 'http://169.254.169.254',
  gcp: 'http://metadata.google.internal',
  azure: 'http://169.254.169.254',
};

export function parseAwsInstanceAction(status: number, body: string): SpotEvent | null {
  if (status === 404) return null;
  if (status !== 200) throw new Error(`AWS metadata answered HTTP ${status}`);
  const j = JSON.parse(body) as { action?: string; time?: string };
  if (!j.action) return null;
  return { cloud: 'aws', action: j.action, at: j.time ? new Date(j.time).toISOString() : null };
}

export function parseGcpPreempted(status: number, body: string): SpotEvent | null {
  if (status !== 200) throw new Error(`GCP metadata answered HTTP ${status}`);
  return body.trim().toUpperCase() === 'TRUE'
    ? { cloud: 'gcp', action: 'preempt', at: null }
    : null;
}

interface AzureEvent {
  EventId?: string;
  EventType?: string;
  EventStatus?: string;
  NotBefore?: string;
}

/** Azure lists every scheduled event; Preempt (spot eviction) and Terminate are the ones that end the machine. */
export function parseAzureScheduledEvents(status: number, body: string): SpotEvent | null {
  if (status !== 200) throw new Error(`Azure metadata answered HTTP ${status}`);
  const j = JSON.parse(body) as { Events?: AzureEvent[] };
  const e = (j.Events ?? []).find((x) => x.EventType === 'Preempt' || x.EventType === 'Terminate');
  if (!e) return null;
  const at = e.NotBefore ? new Date(e.NotBefore) : null;
  return {
    cloud: 'azure',
    action: e.EventType!,
    at: at && !Number.isNaN(at.getTime()) ? at.toISOString() : null,
  };
}

/** Asks the metadata endpoint once. */
export async function checkSpot(
  cloud: SpotCloud,
  baseUrl: string,
  fetchImpl: typeof fetch = fetch,
): Promise<SpotEvent | null> {
  const base = baseUrl.replace(/\/+$/, '');
  const get = async (path: string, headers: Record<string, string>) => {
    const res = await fetchImpl(`${base}${path}`, { headers, signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: await res.text() };
  };
  if (cloud === 'aws') {
    const t = await fetchImpl(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '300' },
      signal: AbortSignal.timeout(3000),
    });
    if (!t.ok) throw new Error(`AWS metadata refused an IMDSv2 token (HTTP ${t.status})`);
    const token = await t.text();
    const r = await get('/latest/meta-data/spot/instance-action', {
      'X-aws-ec2-metadata-token': token,
    });
    return parseAwsInstanceAction(r.status, r.body);
  }
  if (cloud === 'gcp') {
    const r = await get('/computeMetadata/v1/instance/preempted', { 'Metadata-Flavor': 'Google' });
    return parseGcpPreempted(r.status, r.body);
  }
  const r = await get('/metadata/scheduledevents?api-version=2020-07-01', { Metadata: 'true' });
  return parseAzureScheduledEvents(r.status, r.body);
}
