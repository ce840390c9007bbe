/** Argument parsing on node:util's parseArgs, with errors that say what to type instead. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

export const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(
  command: string,
  args: string[],
  options: Options,
  positionals: { min: number; max: number; names: string },
): Parsed {
  let result;
  try {
    result = parseArgs({
      args,
      options: { ...GLOBAL_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const msg = (err as Error).message
      .replace(/\. To specify a positional argument.*$/s, '')
      .replace(/^Unknown option/, 'unknown option');
    throw new UsageError(`${command}: ${msg} (see: ngsci ${command} --help)`);
  }
  const values = result.values as Parsed['values'];
  if (!values.help) {
    const n = result.positionals.length;
    if (n < positionals.min)
      throw new UsageError(
        `${command}: missing ${positionals.names} (see: ngsci ${command} --help)`,
      );
    if (n > positionals.max) {
      throw new UsageError(
        `${command}: unexpected argument '${result.positionals[positionals.max]}' (see: ngsci ${command} --help)`,
      );
    }
  }
  return { values, positionals: result.positionals };
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
