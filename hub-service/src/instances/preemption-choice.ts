/**
 * A researcher's own default for spot preemption (issue 15 part 2). The order a spot launch or a
 * hub spawn follows: the launch's own onPreemption, else this choice, else the admin's
 * NGSCI_PREEMPTION_DEFAULT (preemption.ts onPreemptionFor).
 */
import { eq } from 'drizzle-orm';
import { OnPreemption } from '@ngsci/contract';
import type { Db } from '../db/client.js';
import { preemptionChoices } from '../db/schema.js';

export interface PreemptionChoice {
  /** null: no default of their own (the admin's applies) */
  choice: OnPreemption | null;
  /** at a spot notice each notebook's kernel variables are saved (by the agent, or an open page) (keep-state) */
  keepState: boolean;
  updatedAt: Date;
}

/** What a PUT changes: an absent field is left as it is. */
export interface PreemptionChoiceChange {
  /** null clears the user's own default */
  choice?: OnPreemption | null;
  keepState?: boolean;
}

/** Where the default that applies to a user comes from. */
export type PreemptionSource = 'user' | 'admin';

/** The default a launch without its own choice gets: the user's, else the admin's. Pure. */
export function preemptionDefaultFor(
  chosen: OnPreemption | null | undefined,
  adminDefault: OnPreemption,
): { onPreemption: OnPreemption; source: PreemptionSource } {
  return chosen
    ? { onPreemption: chosen, source: 'user' }
    : { onPreemption: adminDefault, source: 'admin' };
}

export class PreemptionChoiceStore {
  constructor(private readonly db: Db) {}

  async get(user: string): Promise<PreemptionChoice | null> {
    const [row] = await this.db
      .select()
      .from(preemptionChoices)
      .where(eq(preemptionChoices.userName, user));
    if (!row) return null;
    // a value written by an older version or by hand that is no longer a choice counts as none
    const parsed = OnPreemption.safeParse(row.choice);
    return {
      choice: parsed.success ? parsed.data : null,
      keepState: row.keepState,
      updatedAt: row.updatedAt,
    };
  }

  /**
   * Changes the user's choice and keep-state flag (an absent field stays); with neither left
   * (no choice, keep-state off) the row goes and the admin's default applies again.
   */
  async set(
    user: string,
    change: PreemptionChoiceChange,
    at = new Date(),
  ): Promise<PreemptionChoice | null> {
    const before = await this.get(user);
    const choice = change.choice !== undefined ? change.choice : (before?.choice ?? null);
    const keepState = change.keepState ?? before?.keepState ?? false;
    if (choice === null && !keepState) {
      await this.db.delete(preemptionChoices).where(eq(preemptionChoices.userName, user));
      return null;
    }
    const [row] = await this.db
      .insert(preemptionChoices)
      .values({ userName: user, choice, keepState, updatedAt: at })
      .onConflictDoUpdate({
        target: preemptionChoices.userName,
        set: { choice, keepState, updatedAt: at },
      })
      .returning();
    return { choice, keepState, updatedAt: row!.updatedAt };
  }
}
