/**
 * A researcher's own idle timeout within the admin's bounds (contract idle.ts, issue 15 part 4).
 *
 * Bounds, per size class, combine across quota rows as every limit does (quotas.ts): the user's
 * own row if it sets the field, else the most generous of the user's groups' rows (the lowest
 * minimum; the highest maximum, 0 "no upper bound" above all), else the default row. Without an
 * admin's minimum a researcher may go down to 60 s; without an admin's maximum, up to the admin's
 * timeout (so by default a researcher can shorten their timeout, never lengthen it).
 *
 * The effective timeout (what the culler uses): the researcher's choice clamped into the bounds
 * that apply now, so an admin who narrows the bounds later takes effect at the next meter cycle;
 * without a choice, the admin's timeout (clamped only into bounds an admin set).
 */
import { eq } from 'drizzle-orm';
import {
  IDLE_TIMEOUT_FLOOR_SECONDS,
  formatIdleBounds,
  formatIdleTimeout,
  type IdleClassTimeout,
} from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { idleChoices } from '../db/schema.js';
import { ApiError } from '../errors.js';
import type { QuotaRow } from './quotas.js';

export type IdleClass = 'cpu' | 'gpu';

/** What a researcher chose (null: the admin's timeout), as stored. */
export interface IdleChoice {
  cpuSeconds: number | null;
  gpuSeconds: number | null;
  updatedAt?: Date;
}

export type IdleResolution = Record<IdleClass, IdleClassTimeout>;

type BoundField =
  | 'idleTimeoutCpuMinSeconds'
  | 'idleTimeoutCpuMaxSeconds'
  | 'idleTimeoutGpuMinSeconds'
  | 'idleTimeoutGpuMaxSeconds';

/** One bound field across the rows that apply to a user; null when no row sets it. */
function bound(
  rows: readonly QuotaRow[],
  user: string,
  groups: readonly string[],
  f: BoundField,
  kind: 'min' | 'max',
): number | null {
  const own = rows.find((r) => r.subjectKind === 'user' && r.subjectName === user);
  if (own && own[f] != null) return own[f];
  const set = rows
    .filter((r) => r.subjectKind === 'group' && groups.includes(r.subjectName))
    .map((r) => r[f])
    .filter((v): v is number => v != null);
  if (set.length) {
    if (kind === 'min') return Math.min(...set);
    return set.includes(0) ? 0 : Math.max(...set);
  }
  return rows.find((r) => r.subjectKind === 'default')?.[f] ?? null;
}

/** `v` moved into [min, max] (max 0: no upper bound; v 0: never, allowed only without one). */
export function clampIdle(v: number, min: number, max: number): number {
  if (v === 0) return max === 0 ? 0 : max;
  if (max > 0 && v > max) return max;
  return v < min ? min : v;
}

/** Whether `v` may be chosen within [min, max] as they are. */
export function withinIdleBounds(v: number, min: number, max: number): boolean {
  if (v === 0) return max === 0;
  return v >= min && (max === 0 || v <= max);
}

/** The bounds, the choice and the effective timeout of one class. Pure. */
export function resolveIdleClass(
  adminSeconds: number,
  explicitMin: number | null,
  explicitMax: number | null,
  chosen: number | null,
): IdleClassTimeout {
  let maxSeconds = explicitMax ?? adminSeconds;
  // an admin's minimum above the admin timeout, with no admin maximum: the minimum wins
  if (explicitMax === null && explicitMin !== null && maxSeconds > 0 && explicitMin > maxSeconds)
    maxSeconds = explicitMin;
  let minSeconds = explicitMin ?? IDLE_TIMEOUT_FLOOR_SECONDS;
  if (maxSeconds > 0 && minSeconds > maxSeconds) minSeconds = maxSeconds;
  let effective: number;
  if (chosen !== null) effective = clampIdle(chosen, minSeconds, maxSeconds);
  else {
    // the admin's own timeout: only bounds an admin set move it
    effective = adminSeconds;
    if (explicitMax !== null) effective = clampIdle(effective, 1, explicitMax);
    if (explicitMin !== null && effective !== 0 && effective < minSeconds) effective = minSeconds;
  }
  return {
    chosenSeconds: chosen,
    effectiveSeconds: effective,
    defaultSeconds: adminSeconds,
    minSeconds,
    maxSeconds,
    boundsFromAdmin: explicitMin !== null || explicitMax !== null,
    clamped: chosen !== null && effective !== chosen,
  };
}

/**
 * Both classes for one user. `admin` holds the admin's timeouts as quotas.ts combined them (the
 * quota rows, else the service's settings).
 */
export function resolveIdle(
  rows: readonly QuotaRow[],
  user: string,
  groups: readonly string[],
  admin: { cpu: number; gpu: number },
  choice: IdleChoice | null | undefined,
): IdleResolution {
  const b = (f: BoundField, kind: 'min' | 'max') => bound(rows, user, groups, f, kind);
  return {
    cpu: resolveIdleClass(
      admin.cpu,
      b('idleTimeoutCpuMinSeconds', 'min'),
      b('idleTimeoutCpuMaxSeconds', 'max'),
      choice?.cpuSeconds ?? null,
    ),
    gpu: resolveIdleClass(
      admin.gpu,
      b('idleTimeoutGpuMinSeconds', 'min'),
      b('idleTimeoutGpuMaxSeconds', 'max'),
      choice?.gpuSeconds ?? null,
    ),
  };
}

const CLASS_LABEL: Record<IdleClass, string> = { cpu: 'CPU sizes', gpu: 'GPU sizes' };

/**
 * Throws 422 idle_timeout_out_of_bounds, naming the bounds, for a requested value (null clears
 * the choice and is always allowed).
 */
export function checkIdleRequest(
  resolved: IdleResolution,
  req: { cpuSeconds?: number | null | undefined; gpuSeconds?: number | null | undefined },
): void {
  for (const cls of ['cpu', 'gpu'] as const) {
    const v = cls === 'cpu' ? req.cpuSeconds : req.gpuSeconds;
    if (v === undefined || v === null) continue;
    const r = resolved[cls];
    if (withinIdleBounds(v, r.minSeconds, r.maxSeconds)) continue;
    const what = v === 0 ? '"never"' : formatIdleTimeout(v);
    throw new ApiError(
      422,
      'idle_timeout_out_of_bounds',
      `an idle timeout of ${what} is outside the bounds for ${CLASS_LABEL[cls]}: ${formatIdleBounds(r)}` +
        (r.boundsFromAdmin
          ? ' (set by your admin)'
          : ` (without bounds from an admin you may only shorten the timeout of ${formatIdleTimeout(r.defaultSeconds)})`),
      { class: cls, minSeconds: r.minSeconds, maxSeconds: r.maxSeconds },
    );
  }
}

/** The stored choices. */
export class IdleChoiceStore {
  constructor(private readonly db: Db) {}

  async get(user: string): Promise<IdleChoice | null> {
    const [row] = await this.db.select().from(idleChoices).where(eq(idleChoices.userName, user));
    return row ?? null;
  }

  /** Every user's choice: one read per meter cycle. */
  async all(): Promise<Map<string, IdleChoice>> {
    const rows = await this.db.select().from(idleChoices);
    return new Map(rows.map((r) => [r.userName, r]));
  }

  /** Sets the named classes (undefined keeps a class as it is; null clears it). */
  async set(
    user: string,
    req: { cpuSeconds?: number | null | undefined; gpuSeconds?: number | null | undefined },
    at = new Date(),
  ): Promise<IdleChoice> {
    const current = await this.get(user);
    const next = {
      cpuSeconds: req.cpuSeconds === undefined ? (current?.cpuSeconds ?? null) : req.cpuSeconds,
      gpuSeconds: req.gpuSeconds === undefined ? (current?.gpuSeconds ?? null) : req.gpuSeconds,
      updatedAt: at,
    };
    const [row] = await this.db
      .insert(idleChoices)
      .values({ userName: user, ...next })
      .onConflictDoUpdate({ target: idleChoices.userName, set: next })
      .returning();
    return row!;
  }
}
