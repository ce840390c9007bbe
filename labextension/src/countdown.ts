/**
 * The countdown before a hard stop: once a hard-stop budget is spent, the service's GET /budget
 * gives the stop time (the end of the grace period). The status bar and the sidebar show
 * "stops at 14:33, in 4:12", and every open document is saved before the stop, as on a spot
 * warning. Pure parts first (tested), then the follower the plugin starts.
 */
import type { Budget } from '@ngsci/contract';
import type { INgsciModel } from './tokens';

/** Documents are saved when the stop is this close (or at once if the grace is shorter). */
export const SAVE_BEFORE_STOP_MS = 60_000;

export interface StopCountdown {
  /** epoch ms of the stop */
  stopAt: number;
  /** ms left (0 once it is due) */
  leftMs: number;
  /** "stops at 14:33, in 4:12" */
  text: string;
}

/** `4:12`, `1:04:09`, `0:00`: time left, as a clock counts down. */
export function formatLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** `14:33` in the browser's time zone (the user's wall clock). */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** The countdown of the budget's stop at `now` (the service's clock), or null when none is set. */
export function stopCountdown(
  budget: Pick<Budget, 'stopAt'> | null,
  now: number,
): StopCountdown | null {
  const at = budget?.stopAt ? Date.parse(budget.stopAt) : NaN;
  if (!Number.isFinite(at)) return null;
  const leftMs = Math.max(0, at - now);
  return {
    stopAt: at,
    leftMs,
    text: leftMs > 0 ? `stops at ${formatClock(at)}, in ${formatLeft(leftMs)}` : 'stopping now',
  };
}

/** A spent hard-stop budget whose stop time the service has not announced yet. */
export function stopPending(budget: Pick<Budget, 'budgets' | 'stopAt'> | null): boolean {
  if (!budget || budget.stopAt) return false;
  return budget.budgets.some((b) => b.hardStop && b.percent >= 100);
}

export interface StopFollowerDeps {
  /** saves every open document (docmanager:save-all) */
  saveAll: () => Promise<void>;
  /** tells the user (a JupyterLab notification) */
  tell: (level: 'warning' | 'error', text: string) => void;
}

/**
 * Watches the budget every second: saves the open documents once per stop time when the stop is
 * under a minute away, and while a spent hard-stop budget has no stop time yet (the meter
 * announces it within a cycle) asks the service again every 10 s.
 */
export function followBudgetStop(model: INgsciModel, deps: StopFollowerDeps): () => void {
  const saved = new Set<number>();
  let lastAsk = 0;
  const timer = window.setInterval(() => {
    const now = model.serviceNow();
    if (stopPending(model.budget) && Date.now() - lastAsk > 10_000) {
      lastAsk = Date.now();
      void model.refresh(['billing']);
    }
    const c = stopCountdown(model.budget, now);
    if (!c || c.leftMs > SAVE_BEFORE_STOP_MS || saved.has(c.stopAt)) return;
    saved.add(c.stopAt);
    void deps.saveAll().then(
      () =>
        deps.tell(
          'warning',
          `Your monthly budget is spent: this machine ${c.text}. Your open documents were saved.`,
        ),
      (err: unknown) =>
        deps.tell(
          'error',
          `Your monthly budget is spent: this machine ${c.text}. Saving your open documents failed (${err instanceof Error ? err.message : String(err)}): save them now.`,
        ),
    );
  }, 1000);
  return () => window.clearInterval(timer);
}
