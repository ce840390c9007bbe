/**
 * Idle culling decisions, kept pure so the rules can be tested without a hub: when a server is
 * warned, when it is stopped, and the one question asked of the server itself (are its kernels
 * busy?). Comparable to jupyterhub-idle-culler, with per-size-class timeouts and a warning first.
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

export type KernelProbe = (targetUrl: string) => Promise<'busy' | 'idle' | 'unknown'>;

/**
 * Asks a Jupyter server for its kernels with the service's hub token (the service's role holds
 * access:servers). Any kernel whose execution_state is 'busy' makes the server busy.
 */
export function kernelProbe(
  token: string,
  fetchImpl: typeof fetch = fetch,
  timeoutMs = 5000,
): KernelProbe {
  return async (targetUrl) => {
    try {
      const url = `${targetUrl.replace(/\/?$/, '/')}api/kernels`;
      const res = await fetchImpl(url, {
        headers: { authorization: `token ${token}` },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) return 'unknown';
      const kernels = (await res.json()) as Array<{ execution_state?: string }>;
      if (!Array.isArray(kernels)) return 'unknown';
      return kernels.some((k) => k.execution_state === 'busy') ? 'busy' : 'idle';
    } catch {
      return 'unknown';
    }
  };
}
