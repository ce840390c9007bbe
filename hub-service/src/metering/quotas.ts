/**
 * Quotas and budgets: which limits apply to a user, and the check that runs before a launch, a
 * resize or a hub spawn, so a request over a limit is refused before anything is provisioned.
 *
 * How rows combine, per field: the user's own row if it sets the field, else the most generous
 * of the user's groups' rows that set it, else the default row, else the service's setting (idle
 * timeouts) or no limit. Budgets are different: the user's budget (own row, else the default
 * row's, per user) and every group budget (over the group's whole spend) each apply. Forbidden
 * sizes are different again: every row that applies forbids (the user's own, each of their
 * groups', the default), and a forbid wins over any allow.
 */
import { and, eq, inArray, or } from 'drizzle-orm';
import type { Catalog } from '@ngsci/contract';
import { ACTIVE_STATES, monthWindow } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { instances, quotas } from '../db/schema.js';
import { ApiError } from '../errors.js';
import { findSize } from '../catalog.js';
import { forbiddingEntry, sizeAllowed } from '../packages.js';
import type { HubClient } from '../hub.js';
import type { Ledger } from './ledger.js';
import { liveFigures, liveGroupSpend, type LiveParts } from './live.js';
import { dollars, exactDollars, monthStart, nextMonthStart } from './money.js';
import {
  IdleChoiceStore,
  resolveIdle,
  type IdleChoice,
  type IdleResolution,
} from './idle-choice.js';

export type QuotaRow = typeof quotas.$inferSelect;

export interface BudgetRule {
  kind: 'user' | 'group' | 'default';
  name: string;
  budgetMicros: number;
  hardStop: boolean;
}

/** A size entry (id, `any.<gpu>`, `<cpu>.any`) a quota row forbids, and why, in words. */
export interface ForbiddenSize {
  entry: string;
  /** "not allowed for your group 'students'", "not allowed for you", "not allowed on this hub" */
  reason: string;
}

export interface Limits {
  maxConcurrent: number | null;
  allowedSizes: string[] | null;
  /** from every row that applies; a forbid wins over any allow */
  forbiddenSizes: ForbiddenSize[];
  gpuHoursPerMonth: number | null;
  idleTimeoutCpuSeconds: number;
  idleTimeoutGpuSeconds: number;
  /** the researcher's own idle timeouts within the admin's bounds (idle-choice.ts); the two above are its effective values */
  idle: IdleResolution;
  maxAgeSeconds: number | null;
  budgets: BudgetRule[];
}

export interface LimitDefaults {
  idleTimeoutCpuSeconds: number;
  idleTimeoutGpuSeconds: number;
  maxAgeSeconds: number;
}

type NumField =
  | 'maxConcurrent'
  | 'gpuHoursPerMonth'
  | 'idleTimeoutCpuSeconds'
  | 'idleTimeoutGpuSeconds'
  | 'maxAgeSeconds';

/** Combines quota rows (any order) into the limits of one user. Pure. */
export function combine(
  rows: QuotaRow[],
  user: string,
  groups: readonly string[],
  defaults: LimitDefaults,
  idleChoice?: IdleChoice | null,
): Limits {
  const own = rows.find((r) => r.subjectKind === 'user' && r.subjectName === user);
  const grp = rows.filter((r) => r.subjectKind === 'group' && groups.includes(r.subjectName));
  const def = rows.find((r) => r.subjectKind === 'default');
  const num = (f: NumField): number | null => {
    if (own && own[f] !== null) return own[f];
    const set = grp.map((r) => r[f]).filter((v): v is number => v !== null);
    // 0 as a timeout or max age means "never": the most generous of all
    if (set.length)
      return set.some((v) => v === 0) && f !== 'maxConcurrent' && f !== 'gpuHoursPerMonth'
        ? 0
        : Math.max(...set);
    return def ? def[f] : null;
  };
  let allowedSizes: string[] | null;
  if (own?.allowedSizes) allowedSizes = own.allowedSizes;
  else if (grp.some((r) => r.allowedSizes)) {
    allowedSizes = grp.some((r) => !r.allowedSizes)
      ? null
      : [...new Set(grp.flatMap((r) => r.allowedSizes ?? []))];
  } else allowedSizes = def?.allowedSizes ?? null;
  // every row forbids, most specific first: the user's own, their groups', the default
  const forbiddenSizes: ForbiddenSize[] = [];
  const forbid = (row: QuotaRow | undefined, reason: string) => {
    for (const entry of row?.forbiddenSizes ?? [])
      if (!forbiddenSizes.some((f) => f.entry === entry)) forbiddenSizes.push({ entry, reason });
  };
  forbid(own, 'not allowed for you');
  for (const g of [...grp].sort((a, b) => a.subjectName.localeCompare(b.subjectName)))
    forbid(g, `not allowed for your group '${g.subjectName}'`);
  forbid(def, 'not allowed on this hub');

  const budgets: BudgetRule[] = [];
  if (own?.monthlyBudgetMicros != null) {
    budgets.push({
      kind: 'user',
      name: user,
      budgetMicros: own.monthlyBudgetMicros,
      hardStop: own.hardStop,
    });
  } else if (def?.monthlyBudgetMicros != null) {
    budgets.push({
      kind: 'default',
      name: user,
      budgetMicros: def.monthlyBudgetMicros,
      hardStop: def.hardStop,
    });
  }
  for (const g of grp) {
    if (g.monthlyBudgetMicros != null)
      budgets.push({
        kind: 'group',
        name: g.subjectName,
        budgetMicros: g.monthlyBudgetMicros,
        hardStop: g.hardStop,
      });
  }
  const maxAge = num('maxAgeSeconds') ?? defaults.maxAgeSeconds;
  const idle = resolveIdle(
    rows,
    user,
    groups,
    {
      cpu: num('idleTimeoutCpuSeconds') ?? defaults.idleTimeoutCpuSeconds,
      gpu: num('idleTimeoutGpuSeconds') ?? defaults.idleTimeoutGpuSeconds,
    },
    idleChoice,
  );
  return {
    maxConcurrent: num('maxConcurrent'),
    allowedSizes,
    forbiddenSizes,
    gpuHoursPerMonth: num('gpuHoursPerMonth'),
    idleTimeoutCpuSeconds: idle.cpu.effectiveSeconds,
    idleTimeoutGpuSeconds: idle.gpu.effectiveSeconds,
    idle,
    maxAgeSeconds: maxAge > 0 ? maxAge : null,
    budgets,
  };
}

export interface QuotaRequest {
  size: string;
  /** the instance a resize replaces: it does not count against the concurrency limit */
  replacing?: string;
}

export class Quotas {
  constructor(
    private readonly d: {
      db: Db;
      ledger: Ledger;
      hub: HubClient;
      catalog: () => Catalog;
      defaults: LimitDefaults;
      /** what the live figures need besides db and ledger (live.ts) */
      settings: LiveParts['settings'];
      now?: () => Date;
    },
  ) {}

  private now(): Date {
    return this.d.now?.() ?? new Date();
  }

  async rows(): Promise<QuotaRow[]> {
    return this.d.db.select().from(quotas);
  }

  async rowsFor(user: string, groups: readonly string[]): Promise<QuotaRow[]> {
    const conds = [
      and(eq(quotas.subjectKind, 'user'), eq(quotas.subjectName, user)),
      eq(quotas.subjectKind, 'default'),
    ];
    if (groups.length)
      conds.push(and(eq(quotas.subjectKind, 'group'), inArray(quotas.subjectName, [...groups])));
    return this.d.db
      .select()
      .from(quotas)
      .where(or(...conds));
  }

  async limitsFor(user: string, groups: readonly string[]): Promise<Limits> {
    const [rows, choice] = await Promise.all([
      this.rowsFor(user, groups),
      this.idleChoices.get(user),
    ]);
    return combine(rows, user, groups, this.d.defaults, choice);
  }

  /** researchers' own idle timeouts (idle-choice.ts) */
  get idleChoices(): IdleChoiceStore {
    return new IdleChoiceStore(this.d.db);
  }

  /**
   * Spend against each budget that applies to a user, this month: the same figure every surface
   * shows (contract figures.ts through live.ts), to the second, so a launch is refused as soon as
   * the budget bar says it is spent, on any replica, whether or not the meter wrote the rows yet.
   */
  async budgetStatus(user: string, groups: readonly string[], limits: Limits, at = this.now()) {
    const parts = { db: this.d.db, ledger: this.d.ledger, settings: this.d.settings };
    const month = monthWindow(at.getTime());
    const mine = (await liveFigures(parts, user, groups, at)).month.micros;
    return Promise.all(
      limits.budgets.map(async (b) => {
        const spent =
          b.kind === 'group'
            ? (await liveGroupSpend(parts, b.name, { user, groups }, month, at)).micros
            : mine;
        return { ...b, spentMicros: spent };
      }),
    );
  }

  /**
   * Throws 403 quota_exceeded or budget_exhausted naming the limit. `groups` are the user's hub
   * groups as the caller got them from the hub; a caller that could not get them refuses the
   * request instead (fails closed: instances/lifecycle.ts).
   */
  async check(user: string, groups: readonly string[], req: QuotaRequest): Promise<void> {
    const limits = await this.limitsFor(user, groups);
    const forbidden = forbiddingEntry(limits.forbiddenSizes, req.size);
    if (forbidden) {
      throw new ApiError(
        403,
        'quota_exceeded',
        `size '${req.size}' is ${forbidden.reason} (the quota forbids ${forbidden.entry}); ask an admin`,
      );
    }
    if (!sizeAllowed(limits.allowedSizes, req.size)) {
      throw new ApiError(
        403,
        'quota_exceeded',
        `size '${req.size}' is not allowed for ${user}; allowed sizes: ${limits.allowedSizes?.join(', ') || 'none'}`,
      );
    }
    if (limits.maxConcurrent !== null) {
      const active = await this.d.db
        .select({ id: instances.id, server: instances.serverName })
        .from(instances)
        .where(and(eq(instances.userName, user), inArray(instances.state, [...ACTIVE_STATES])));
      const count = active.filter((r) => r.id !== req.replacing).length;
      if (count >= limits.maxConcurrent) {
        throw new ApiError(
          403,
          'quota_exceeded',
          `at most ${limits.maxConcurrent} concurrent instance(s) allowed for ${user}; ${count} already active`,
        );
      }
    }
    const size = findSize(this.d.catalog(), req.size);
    if (limits.gpuHoursPerMonth !== null && size?.class === 'gpu') {
      const now = this.now();
      const used = await this.d.ledger.gpuSeconds(user, monthStart(now), nextMonthStart(now));
      if (used >= limits.gpuHoursPerMonth * 3600) {
        throw new ApiError(
          403,
          'quota_exceeded',
          `the GPU-hours limit of ${limits.gpuHoursPerMonth} h this month is used up (${(used / 3600).toFixed(1)} h)`,
        );
      }
    }
    for (const b of await this.budgetStatus(user, groups, limits)) {
      if (b.hardStop && b.spentMicros >= b.budgetMicros) {
        const whose =
          b.kind === 'group'
            ? `group '${b.name}'`
            : b.kind === 'default'
              ? 'the default per-user'
              : 'your';
        throw new ApiError(
          403,
          'budget_exhausted',
          `${whose} monthly budget of ${exactDollars(b.budgetMicros)} is spent (${dollars(b.spentMicros)}); ask an admin to raise it`,
        );
      }
    }
  }
}
