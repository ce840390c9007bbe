/** The line under each size of the Resize section: the budget's runway at that size and the idle timeout, or why a quota forbids it (GET /budget's `runway`). */
import { formatRunway, type SizeRunway } from '@ngsci/contract';

/** `30 min`, `2 h`, `never`: an idle timeout. */
export function formatIdle(seconds: number): string {
  if (seconds <= 0) return 'never';
  return formatRunway(seconds);
}

/** The line under a size: its runway and idle timeout, or why it is not allowed. */
export function runwayLine(r: SizeRunway | undefined): { text: string; forbidden: boolean } {
  if (!r) return { text: '', forbidden: false };
  if (r.forbidden) return { text: `Not allowed: ${r.forbidden.reason}`, forbidden: true };
  const parts: string[] = [];
  if (r.runwaySeconds !== null) parts.push(`${formatRunway(r.runwaySeconds)} left in your budget`);
  parts.push(
    r.idleTimeoutSeconds > 0
      ? `stops after ${formatIdle(r.idleTimeoutSeconds)} idle`
      : 'no idle stop',
  );
  return { text: parts.join(' · '), forbidden: false };
}
