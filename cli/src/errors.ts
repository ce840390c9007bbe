/**
 * What can go wrong in the CLI, each with its exit code, so scripts can branch on `$?`:
 * 1 the service refused (its code is printed), 2 bad arguments, 3 not configured or the service
 * is unreachable, 4 an instance failed while we waited for it.
 */
export const EXIT = {
  ok: 0,
  service: 1,
  usage: 2,
  unreachable: 3,
  failed: 4,
  interrupted: 130,
} as const;

export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad arguments: exit 2, with a hint to the command's help. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(EXIT.usage, 'usage', message);
  }
}

/** The service answered an error body `{code, message}`. */
export class ServiceError extends CliError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(EXIT.service, code, message);
  }
}
