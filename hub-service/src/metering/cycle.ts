/**
 * What one meter cycle hands its phases (accrual, reconciliation, budgets, culling): the snapshot
 * of instances, plans and hub activity taken once per cycle, and the report every phase adds to.
 * Kept apart from meter.ts so the phases depend on these types, never on the loop.
 */
import type { InstanceRow } from '../instances/store.js';
import type { PlanRef } from './plans.js';
import type { Limits, QuotaRow } from './quotas.js';

export interface PlanLookup {
  planOf(user: string, groups: readonly string[]): PlanRef;
}

export interface MeterSnapshot {
  now: Date;
  /** instances in an active state, as the lifecycle has them */
  active: InstanceRow[];
  /** the running ones among them: what budgets stop and the culler looks at */
  running: InstanceRow[];
  /** what accrues this cycle: active instances that became ready, and ended ones not closed yet */
  metered: InstanceRow[];
  plans: PlanLookup;
  /** the size class of a catalog size (undefined: not in the catalog any more) */
  classOf(sizeId: string): 'cpu' | 'gpu' | undefined;
  /** the user's hub groups, as last seen (hub listing, else their newest ledger row) */
  groupsOf(user: string): string[];
  /**
   * The hub's last_activity of a server: from the newest listing the meter has. While accrual runs
   * that is the previous cycle's (the hub is read meanwhile); culling sees this cycle's.
   */
  lastActivity(user: string, server: string): Date | null;
  /** every quota row, read once this cycle */
  quotas: QuotaRow[];
  /** the limits that apply to a user (this cycle's quota rows, the user's groups) */
  limitsOf(user: string): Limits;
}

export interface CycleReport {
  at: string;
  ms: number;
  hubServers: number;
  streams: number;
  rowsWritten: number;
  unknownServers: string[];
  orphansClosed: string[];
  alerts: string[];
  budgetStops: string[];
  warned: string[];
  culled: string[];
  keptBusy: string[];
  hubError: string | null;
  /** milliseconds per phase: where a slow cycle spends its time */
  phases: Record<string, number>;
}
