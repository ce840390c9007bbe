/**
 * Every error the API answers with has this shape and one of these codes, so clients can branch
 * on `code` and show `message` as it is.
 */
import { z } from 'zod';

export const ErrorCode = z
  .enum([
    'bad_request',
    'validation_failed',
    'unauthenticated',
    'forbidden',
    'not_found',
    'unknown_size',
    'size_unavailable',
    'invalid_server_name',
    'instance_busy',
    'instance_not_running',
    'hub_refused',
    'hub_unreachable',
    'quota_exceeded',
    'budget_exhausted',
    'provision_failed',
    'process_exited',
    'process_lost',
    'ready_timeout',
    'cancelled',
    'invalid_webhook_url',
    'invalid_preferences',
    'already_exists',
    'rate_limited',
    'payload_too_large',
    'login_required',
    'csrf_failed',
    'identity_refused',
    'identity_pending',
    'gpu_unavailable',
    'agent_missing',
    'user_privileged',
    'rebooted',
    'local_single_user',
    // a researcher's idle timeout outside the bounds an admin set (idle.ts)
    'idle_timeout_out_of_bounds',
    // the database did not answer (restarting, unreachable) or its disk is full: try again later
    'database_unavailable',
    'storage_full',
    'internal',
  ])
  .meta({ id: 'ErrorCode' });
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorBody = z
  .object({
    code: ErrorCode,
    message: z.string(),
    requestId: z.string(),
    details: z.unknown().optional(),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;
