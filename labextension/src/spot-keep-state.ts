/**
 * Kernel variables kept across a spot preemption: when the service passes on the cloud's spot
 * notice for this page's server and the researcher chose "Keep my variables" (GET /me/preemption
 * keepState), each notebook's Python kernel saves its variables (the same keep-state save a
 * resize runs, keep-state.ts); the relaunched server's page restores them as after a resize
 * (keep-state-page.ts followKeepStateRestores). DOM-free: kernels come in as KeepStateKernels.
 *
 * Who saves: the machine's agent owns the save (`ngsci agent` runs it in every notebook kernel
 * as soon as it reports the notice, with no page open, and the researcher gets a notice of what
 * it kept). This page's save is the fallback for an agent that cannot reach its server (an
 * older agent, one without the server's token), and a harmless second save otherwise: the
 * kernel-side save (ngsci_magic.keep_state.save) does not write again when no cell ran since
 * its last save, and answers with that save's report. A kernel still busy with the agent's save
 * is asked once more after a few seconds. One save per instance: the agent's follow-up notice
 * (what it kept) is not a second reason to save.
 */
import type { NgsciApi, Notice } from './api';
import { runInAll, summarize, type KeepStateKernel } from './keep-state';
import { isPreemptionDefault } from './preemption-default';

/** the instances whose spot notice this page has handled (the agent's follow-up is not another) */
const handled = new Set<string>();
const BUSY_RETRY_MS = 4000;

/**
 * Saves the kernel variables at a spot notice if the researcher keeps them; resolves with what
 * to say, or null when nothing was to be kept (keep-state off, another server's notice).
 */
export async function keepStateAtSpot(
  api: NgsciApi,
  notice: Notice,
  pageServer: string,
  kernels: () => Promise<KeepStateKernel[]>,
  wait: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<string | null> {
  // another server's kernels are not this page's to reach
  if (notice.kind !== 'spot' || (notice.server ?? pageServer) !== pageServer) return null;
  if (notice.instanceId) {
    if (handled.has(notice.instanceId)) return null;
    handled.add(notice.instanceId);
  }
  const choice = await api.request('GET', '/me/preemption', isPreemptionDefault);
  if (!choice.keepState) return null;
  let reports = await runInAll(await kernels(), 'save');
  if (reports.some((r) => r.error?.code === 'busy')) {
    // perhaps busy with the agent's save of the same variables: once more, a little later
    await wait(BUSY_RETRY_MS);
    const again = await kernels();
    const retried: typeof reports = [];
    // one kernel at a time, as runInAll (a save may write gigabytes)
    for (const r of reports) {
      const k = r.error?.code === 'busy' ? again.find((x) => x.path === r.path) : undefined;
      retried.push(k ? (await runInAll([k], 'save'))[0]! : r);
    }
    reports = retried;
  }
  const notebooks = reports.filter((r) => r.error?.code !== 'not_a_notebook');
  if (!notebooks.length) return 'No notebook was running: no variables to keep.';
  const { kept, notKept } = summarize(notebooks);
  return (
    (kept.length
      ? `Your notebooks' variables were saved (${kept.join('; ')}); they come back after the relaunch.`
      : "None of your notebooks' variables could be saved.") +
    (notKept.length ? ` Not kept: ${notKept.join('; ')}.` : '')
  );
}
