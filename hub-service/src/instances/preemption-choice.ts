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
  choice: OnPreemption;
  updatedAt: Date;
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
    return parsed.success ? { choice: parsed.data, updatedAt: row.updatedAt } : null;
  }

  /** Sets the user's choice; null clears it (the admin's default applies again). */
  async set(
    user: string,
    choice: OnPreemption | null,
    at = new Date(),
  ): Promise<PreemptionChoice | null> {
    if (choice === null) {
      await this.db.delete(preemptionChoices).where(eq(preemptionChoices.userName, user));
      return null;
    }
    const [row] = await this.db
      .insert(preemptionChoices)
      .values({ userName: user, choice, updatedAt: at })
      .onConflictDoUpdate({ target: preemptionChoices.userName, set: { choice, updatedAt: at } })
      .returning();
    return { choice, updatedAt: row!.updatedAt };
  }
}
