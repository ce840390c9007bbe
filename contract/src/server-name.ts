/**
 * The one server-name rule of ngsci. Every TypeScript caller imports it from here; the Python
 * packages (spawner-bridge, magic) keep one copy each, and their tests and this module's test read
 * the same examples from `contract/server-names.json`, so the languages cannot drift apart.
 */
import { z } from 'zod';

/**
 * The pattern's source, without flags, the same text in every language. Names must stand in a URL
 * path and in cloud resource names, hence lower-case, digits and inner dashes, at most 40.
 */
export const SERVER_NAME_PATTERN = '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$';
const SERVER_NAME_RE = new RegExp(SERVER_NAME_PATTERN);

/** What the rule is, in words, for error messages. */
export const SERVER_NAME_RULE =
  'lower-case letters, digits and inner dashes, at most 40 characters';

/**
 * JupyterHub's default server (name '') is called `default` in this API, so every instance has a
 * name that can stand in a URL path; a named hub server may therefore not be called `default`.
 */
export const DEFAULT_SERVER = 'default';

/** The rule as a plain function: no zod needed at the call, for the CLI and the extension. */
export function isServerName(name: string): boolean {
  return SERVER_NAME_RE.test(name);
}

/** A server name as ngsci accepts it (the API's names, `default` included). */
export const ServerName = z
  .string()
  .regex(SERVER_NAME_RE, SERVER_NAME_RULE)
  .meta({ id: 'ServerName', example: DEFAULT_SERVER });

/** Hub server name ('' for the default server) to the API's name, and back. */
export const toApiServerName = (hubName: string): string => hubName || DEFAULT_SERVER;
export const toHubServerName = (apiName: string): string =>
  apiName === DEFAULT_SERVER ? '' : apiName;
