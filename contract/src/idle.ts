/**
 * A researcher's own idle timeout (issue 15, part 4): admins set per size class (cpu, gpu) the
 * bounds a researcher may choose within (quota fields `idleTimeout{Cpu,Gpu}{Min,Max}Seconds`), and
 * the researcher picks a value inside them (GET/PUT /api/v1/me/idle-timeout). The culler uses the
 * effective value: the researcher's choice, clamped into the bounds that apply now (an admin may
 * narrow them later), or the admin's timeout when the researcher chose nothing.
 *
 * Seconds throughout; 0 means "never": as a timeout, the server is never idle-culled; as a
 * maximum, there is no upper bound (and "never" may be chosen).
 */
import { z } from 'zod';

/** The longest idle timeout anyone can set or choose (31 days), 0 aside. */
export const IDLE_TIMEOUT_MAX_SECONDS = 31 * 86400;
/** The lowest a researcher may choose when no admin set a minimum. */
export const IDLE_TIMEOUT_FLOOR_SECONDS = 60;

const Seconds = z.number().int().min(0).max(IDLE_TIMEOUT_MAX_SECONDS);

export const IdleTimeoutInput = z
  .object({
    cpuSeconds: Seconds.nullable().optional().meta({
      description:
        'idle timeout for CPU sizes, in seconds; 0: never (only where the maximum allows it); null: back to the admin-set timeout',
    }),
    gpuSeconds: Seconds.nullable().optional().meta({
      description: 'the same for GPU sizes',
    }),
  })
  .strict()
  .refine((b) => b.cpuSeconds !== undefined || b.gpuSeconds !== undefined, {
    message: 'name cpuSeconds, gpuSeconds or both',
  })
  .meta({ id: 'IdleTimeoutInput' });
export type IdleTimeoutInput = z.input<typeof IdleTimeoutInput>;

export const IdleClassTimeout = z
  .object({
    chosenSeconds: z
      .number()
      .int()
      .nullable()
      .meta({ description: 'what the researcher chose; null: the admin-set timeout applies' }),
    effectiveSeconds: z
      .number()
      .int()
      .meta({ description: 'what the culler uses now (0: never idle-culled)' }),
    defaultSeconds: z
      .number()
      .int()
      .meta({ description: 'the admin-set timeout, used when the researcher chose nothing' }),
    minSeconds: z.number().int().meta({ description: 'the lowest value that may be chosen' }),
    maxSeconds: z
      .number()
      .int()
      .meta({ description: 'the highest value that may be chosen; 0: no upper bound' }),
    boundsFromAdmin: z.boolean().meta({
      description:
        'an admin set a minimum or maximum; otherwise the minimum is 60 s and the maximum the admin-set timeout',
    }),
    clamped: z.boolean().meta({
      description:
        'the choice lies outside the bounds that apply now (an admin narrowed them): the nearest bound applies',
    }),
  })
  .meta({ id: 'IdleClassTimeout' });
export type IdleClassTimeout = z.infer<typeof IdleClassTimeout>;

export const IdleTimeout = z
  .object({
    user: z.string(),
    cpu: IdleClassTimeout,
    gpu: IdleClassTimeout,
    updatedAt: z.iso.datetime().nullable(),
  })
  .meta({ id: 'IdleTimeout' });
export type IdleTimeout = z.infer<typeof IdleTimeout>;

/** `never`, `45 s`, `45 min`, `1 h 30 min`, `2 d 4 h`: an idle timeout for people. */
export function formatIdleTimeout(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds === 0) return 'never';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  const sec = s % 60;
  if (min < 60) return sec ? `${min} min ${sec} s` : `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** `10 min to 2 h`, `10 min or more (or never)`: the bounds of one class, for messages. */
export function formatIdleBounds(t: Pick<IdleClassTimeout, 'minSeconds' | 'maxSeconds'>): string {
  return t.maxSeconds === 0
    ? `${formatIdleTimeout(t.minSeconds)} or more, or never`
    : `${formatIdleTimeout(t.minSeconds)} to ${formatIdleTimeout(t.maxSeconds)}`;
}
