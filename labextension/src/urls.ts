/**
 * Where the ngsci service is, seen from a JupyterLab page that JupyterHub serves. The service sits
 * behind the hub's proxy at `<hub base>services/ngsci/`, beside `/hub/` and `/user/...`, so it
 * stays reachable while the user's own server restarts (a resize).
 */

export interface HubPage {
  /** PageConfig `hubPrefix`, e.g. `/hub/` or `/jupyter/hub/` */
  hubPrefix: string;
  /** PageConfig `hubHost`, '' when the hub is on the page's origin */
  hubHost: string;
  /** PageConfig `hubServerName` ('' for the default server) */
  hubServerName: string;
  /** PageConfig `hubUser` */
  hubUser: string;
}

/** The hub's base URL path: `hubPrefix` without its trailing `hub/`. */
export function hubBase(page: Pick<HubPage, 'hubPrefix'>): string {
  const prefix = page.hubPrefix.endsWith('/') ? page.hubPrefix : `${page.hubPrefix}/`;
  return prefix.replace(/hub\/$/, '') || '/';
}

/** `https://host/base/services/ngsci/api/v1` (no trailing slash). */
export function serviceUrl(
  page: Pick<HubPage, 'hubPrefix' | 'hubHost'>,
  service = 'ngsci',
): string {
  return `${page.hubHost}${hubBase(page)}services/${service}/api/v1`;
}

/** This page's server as the API names it: '' → `default`. */
export function apiServerName(page: Pick<HubPage, 'hubServerName'>): string {
  return page.hubServerName || 'default';
}

/** JupyterLab of a user's server: `/base/user/<user>/<server>/lab`. */
export function labUrl(
  page: Pick<HubPage, 'hubPrefix' | 'hubHost'>,
  user: string,
  apiServer: string,
): string {
  const server = apiServer === 'default' ? '' : `${encodeURIComponent(apiServer)}/`;
  return `${page.hubHost}${hubBase(page)}user/${encodeURIComponent(user)}/${server}lab`;
}

/** The hub's home page, where a user lands after stopping the page's own server. */
export function hubHomeUrl(page: Pick<HubPage, 'hubPrefix' | 'hubHost'>): string {
  return `${page.hubHost}${hubBase(page)}hub/home`;
}

/**
 * A server's `/api` (Jupyter Server answers it without auth): 200 with JSON through the proxy
 * means the proxy routes to the new server; while it is down the hub answers instead.
 */
export function serverApiUrl(
  page: Pick<HubPage, 'hubPrefix' | 'hubHost'>,
  user: string,
  apiServer: string,
): string {
  return labUrl(page, user, apiServer).replace(/lab$/, 'api');
}
