/**
 * Kernel variables kept across a resize, wired into this page: the server's kernels as
 * `KeepStateKernel`s (from JupyterLab's sessions; each request on its own short-lived connection,
 * silent and outside the history), and the restore: once the page is back (on the new size),
 * every notebook's new Python kernel restores its snapshot, if it has one, and the page says what
 * came back and what did not.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import type { Kernel, Session } from '@jupyterlab/services';
import { restoreNotice, runIn, type KeepStateKernel } from './keep-state';

type Services = JupyterFrontEnd['serviceManager'];

/** The name JupyterLab gives a notebook's session before it has its path. */
const TEMPORARY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${Math.round(ms / 1000)} s`)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Evaluates an expression in a kernel silently (no output, no history, no execution count). */
async function evaluateIn(
  services: Services,
  model: Kernel.IModel,
  expression: string,
  timeoutMs: number,
): Promise<string> {
  const conn = services.kernels.connectTo({ model, handleComms: false });
  try {
    const future = conn.requestExecute(
      {
        code: '',
        silent: true,
        store_history: false,
        allow_stdin: false,
        stop_on_error: false,
        user_expressions: { ngsci: expression },
      },
      true,
    );
    const reply = await withTimeout(future.done, timeoutMs, 'the kernel');
    const content = reply.content as {
      status: string;
      user_expressions?: Record<
        string,
        { status: string; data?: Record<string, unknown>; ename?: string; evalue?: string }
      >;
    };
    const out = content.user_expressions?.ngsci;
    if (content.status !== 'ok' || !out) throw new Error(`the kernel answered ${content.status}`);
    if (out.status !== 'ok') {
      if (out.ename === 'ModuleNotFoundError')
        throw new Error(
          'this kernel has no ngsci_magic (pip install ngsci-magic in its environment)',
        );
      throw new Error(`${out.ename ?? 'error'}: ${out.evalue ?? ''}`);
    }
    const text = out.data?.['text/plain'];
    if (typeof text !== 'string') throw new Error('the kernel answered no text');
    return text;
  } finally {
    conn.dispose();
  }
}

function labelOf(s: Session.IModel): string {
  if (s.type === 'notebook') return s.path.split('/').pop() || s.path;
  return s.type === 'console' ? `console ${s.name || s.path}` : s.name || s.path;
}

/** The server's running kernels (one per session), fresh from the server. */
export async function serverKernels(services: Services): Promise<KeepStateKernel[]> {
  await services.sessions.refreshRunning();
  await services.kernelspecs.ready;
  const specs = services.kernelspecs.specs?.kernelspecs ?? {};
  const out: KeepStateKernel[] = [];
  for (const s of services.sessions.running()) {
    const kernel = s.kernel;
    if (!kernel) continue;
    const language = specs[kernel.name]?.language?.toLowerCase() ?? '';
    out.push({
      path: s.path,
      label: labelOf(s),
      kind: s.type === 'notebook' ? 'notebook' : s.type === 'console' ? 'console' : 'other',
      python: language === 'python',
      busy: kernel.execution_state === 'busy',
      evaluate: (expression, timeoutMs) => evaluateIn(services, kernel, expression, timeoutMs),
    });
  }
  return out;
}

/**
 * Restores kept variables into each notebook's new kernel, once per kernel, as sessions start
 * (the notebooks JupyterLab reopens after the resize's reload, and any opened later).
 */
export function followKeepStateRestores(app: JupyterFrontEnd): void {
  const services = app.serviceManager;
  const done = new Set<string>();
  let scanning = false;
  let again = false;
  const scan = async (): Promise<void> => {
    if (scanning) {
      again = true;
      return;
    }
    scanning = true;
    try {
      await services.kernelspecs.ready;
      const specs = services.kernelspecs.specs?.kernelspecs ?? {};
      for (const s of services.sessions.running()) {
        const kernel = s.kernel;
        // JupyterLab starts a notebook's session under a temporary name (a UUID), then renames
        // it to the notebook's path: the restore waits for the path
        const key = `${kernel?.id}:${s.path}`;
        if (!kernel || s.type !== 'notebook' || TEMPORARY.test(s.path) || done.has(key)) continue;
        if ((specs[kernel.name]?.language ?? '').toLowerCase() !== 'python') continue;
        done.add(key);
        const report = await runIn(
          {
            path: s.path,
            label: labelOf(s),
            kind: 'notebook',
            python: true,
            busy: false,
            evaluate: (expression, timeoutMs) =>
              evaluateIn(services, kernel, expression, timeoutMs),
          },
          'restore',
        );
        // a kernel without the magic (another environment) has nothing to restore
        if (!report.ok && report.error?.message.includes('no ngsci_magic')) continue;
        const notice = restoreNotice(report);
        if (notice)
          (notice.level === 'success' ? Notification.success : Notification.warning)(notice.text, {
            autoClose: notice.level === 'success' ? 12_000 : false,
          });
      }
    } catch (err) {
      // the server went away (a stop, a resize): the next page restores
      console.warn('ngsci: kernel variables were not restored:', err);
    } finally {
      scanning = false;
      if (again) {
        again = false;
        void scan();
      }
    }
  };
  services.sessions.runningChanged.connect(() => void scan());
  void app.restored.then(scan);
}
