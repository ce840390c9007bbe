/**
 * The budget_alerts table: which thresholds (50/80/100 %) of a budget were announced in a month,
 * and when. The primary key makes each announcement happen once, whichever replica gets there.
 */
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { budgetAlerts } from '../db/schema.js';
import type { BudgetRule } from './quotas.js';

export interface BudgetSubject {
  kind: BudgetRule['kind'];
  name: string;
  /** YYYY-MM */
  month: string;
}

export class BudgetAlertStore {
  constructor(private readonly db: Db) {}

  /** Records the crossed thresholds; answers those that were not recorded before (to announce). */
  async record(subject: BudgetSubject, thresholds: number[], at: Date): Promise<number[]> {
    if (!thresholds.length) return [];
    const inserted = await this.db
      .insert(budgetAlerts)
      .values(
        thresholds.map((threshold) => ({
          subjectKind: subject.kind,
          subjectName: subject.name,
          month: subject.month,
          threshold,
          sentAt: at,
        })),
      )
      .onConflictDoNothing()
      .returning({ threshold: budgetAlerts.threshold });
    return inserted.map((i) => i.threshold);
  }

  /** When a threshold was first announced this month (null: not yet). */
  async sentAt(subject: BudgetSubject, threshold: number): Promise<Date | null> {
    const [alert] = await this.db
      .select()
      .from(budgetAlerts)
      .where(
        and(
          eq(budgetAlerts.subjectKind, subject.kind),
          eq(budgetAlerts.subjectName, subject.name),
          eq(budgetAlerts.month, subject.month),
          eq(budgetAlerts.threshold, threshold),
        ),
      );
    return alert?.sentAt ?? null;
  }
}
