/**
 * Idle culling decisions, kept pure so the rules can be tested without a hub: when a server is
 * warned and when it is stopped. Whether its kernels are busy comes from the instance agent's
 * reports, never from a request to the server. Comparable to jupyterhub-idle-culler, with
 * per-size-class timeouts and a warning first.
 */
export interface IdleInput {
  now: Date;
  readyAt: Date;
  lastActivity: Date | null;
  keepRunningAt: Date | null;
  warnedAt: Date | null;
  /** 0: never idle-culled */
  timeoutSeconds: number;
  warningSeconds: number;
  maxAgeSeconds: number | null;
}

export type IdleDecision =
  | { action: 'none'; idleSeconds: number }
  | { action: 'warn'; idleSeconds: number; idleSince: Date; stopAt: Date }
  | { action: 'stop'; idleSeconds: number; reason: 'idle' | 'max_age' };

const max = (...ds: (Date | null)[]) =>
  new Date(Math.max(...ds.filter((d): d is Date => d !== null).map((d) => d.getTime())));

export function decideIdle(i: IdleInput): IdleDecision {
  const idleSince = max(i.readyAt, i.lastActivity, i.keepRunningAt);
  const idleSeconds = Math.max(0, Math.floor((i.now.getTime() - idleSince.getTime()) / 1000));
  if (i.maxAgeSeconds && i.now.getTime() - i.readyAt.getTime() >= i.maxAgeSeconds * 1000) {
    return { action: 'stop', idleSeconds, reason: 'max_age' };
  }
  if (!i.timeoutSeconds) return { action: 'none', idleSeconds };
  const warnedThisIdle = i.warnedAt !== null && i.warnedAt.getTime() >= idleSince.getTime();
  if (
    idleSeconds >= i.timeoutSeconds &&
    warnedThisIdle &&
    i.now.getTime() - i.warnedAt!.getTime() >= i.warningSeconds * 1000
  ) {
    return { action: 'stop', idleSeconds, reason: 'idle' };
  }
  if (!warnedThisIdle && idleSeconds >= Math.max(0, i.timeoutSeconds - i.warningSeconds)) {
    const stopAt = new Date(
      Math.max(
        idleSince.getTime() + i.timeoutSeconds * 1000,
        i.now.getTime() + i.warningSeconds * 1000,
      ),
    );
    return { action: 'warn', idleSeconds, idleSince, stopAt };
  }
  return { action: 'none', idleSeconds };
}

/**
 * Whether an instance's kernels are executing, as its agent last reported (agent/credentials.ts):
 * 'unknown' when no fresh report exists. The service never asks a user's server itself: any
 * credential it sent there would belong to whoever controls that server's code.
 */
export type KernelActivity = (instanceId: string) => Promise<'busy' | 'idle' | 'unknown'>;
