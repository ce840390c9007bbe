/**
 * The local provisioner: each instance is a real `jupyterhub-singleuser` process on this machine,
 * with its own port and a home under the homes dir that outlives stops and resizes. Processes run
 * in their own process group so a Ctrl-C in the terminal does not reach them, and a restarted
 * service can adopt them by pid. With `accounts` (NGSCI_LOCAL_ISOLATION=users, see local-policy.ts)
 * each user's server and agent run as that user's own system account.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SystemAccount, SystemAccounts } from './local-policy.js';
import type {
  ExitReport,
  Provisioned,
  ProvisionContext,
  ProvisionRequest,
  Provisioner,
  ProviderRef,
} from './types.js';

export interface LocalProvisionerOptions {
  /** the single-user command, e.g. /path/.venv/bin/jupyterhub-singleuser */
  command: string;
  args: string[];
  homesDir: string;
  runDir: string;
  logger: Logger;
  /** variables of the service's own environment that instances get too (PATH, LANG...) */
  baseEnv: Record<string, string>;
  readyTimeoutSeconds: number;
  /**
   * `ngsci` (the CLI) to run `ngsci agent` beside each server, in the same process group so a
   * stop ends both; none: no agent. The agent reports GPU use and dataset reads.
   */
  agentCommand?: string;
  /**
   * variables only the agent gets (NGSCI_NVIDIA_SMI, NGSCI_GPU_INTERVAL: NGSCI_AGENT_NVIDIA_SMI and
   * NGSCI_AGENT_GPU_INTERVAL); the shell unsets them before it becomes the server
   */
  agentEnv?: Record<string, string>;
  /** the folder the agent watches for dataset reads (NGSCI_DATASET_PATH of the instance) */
  datasetPath?: string;
  fetch?: typeof fetch;
  host?: string;
  /** `users` isolation: the system account each hub user's processes run as (needs root) */
  accounts?: SystemAccounts;
}

interface Tracked {
  pid: number;
  child: ChildProcess | null;
  /** set once start() has resolved: from then on, an exit is a crash to report */
  running: boolean;
  stopping: boolean;
  exited: Promise<number | null>;
  watch?: NodeJS.Timeout;
}

/** A file-system-safe name for a hub user name (which may hold any character). */
export function homeDirName(user: string): string {
  return user.replace(/[^a-zA-Z0-9._-]/g, (c) => `_${c.codePointAt(0)!.toString(16)}_`);
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Alive and not a zombie: a process whose parent never reaps it still answers kill(pid, 0). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
};

export class LocalProvisioner implements Provisioner {
  readonly kind = 'local' as const;
  private readonly tracked = new Map<string, Tracked>();
  private listener: ((r: ExitReport) => void) | null = null;
  private readonly host: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly o: LocalProvisionerOptions) {
    this.host = o.host ?? '127.0.0.1';
    this.fetchImpl = o.fetch ?? fetch;
    mkdirSync(o.runDir, { recursive: true });
    mkdirSync(o.homesDir, { recursive: true });
  }

  onExit(listener: (r: ExitReport) => void): void {
    this.listener = listener;
  }

  async start(req: ProvisionRequest, ctx: ProvisionContext): Promise<Provisioned> {
    const port = await freePort(this.host);
    const home = join(this.o.homesDir, homeDirName(req.user));
    // users isolation: the account exists and owns its home (0700) before anything runs
    const account: SystemAccount | null = this.o.accounts
      ? await this.o.accounts.ensure(req.user, home)
      : null;
    mkdirSync(home, { recursive: true });
    const targetUrl = `http://${this.host}:${port}${req.baseUrl}`;
    const env: Record<string, string> = {
      ...this.o.baseEnv,
      ...req.env,
      HOME: home,
      ...(account ? { USER: account.name, LOGNAME: account.name } : {}),
      JUPYTERHUB_SERVICE_URL: targetUrl,
      MEM_LIMIT: String(Math.round(req.size.memoryGiB * 1024 ** 3)),
      CPU_LIMIT: String(req.size.vcpu),
      NGSCI_INSTANCE_ID: req.instanceId,
      NGSCI_SIZE: req.size.id,
      NGSCI_CLOUD: req.offer.cloud,
      ...(this.o.datasetPath ? { NGSCI_DATASET_PATH: this.o.datasetPath } : {}),
    };
    const logPath = join(this.o.runDir, `${req.instanceId}.log`);
    const out = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      // jupyter-server refuses to run as root without this; containers and CI often are root
      const serverArgs =
        !account && process.getuid?.() === 0 && !this.o.args.includes('--allow-root')
          ? [...this.o.args, '--allow-root']
          : this.o.args;
      // with an agent: `sh` starts it in the background, then becomes the server (exec), so the
      // server keeps the pid, the exit code and the process group that a stop kills. The agent's
      // credential is in the agent's environment only: the shell drops it before the exec, so
      // the server and its kernels never inherit it (one uid: see docs/security.md for the limit)
      const agentOnly = Object.keys(this.o.agentEnv ?? {}).filter((k) =>
        /^[A-Z_][A-Z0-9_]*$/.test(k),
      );
      const [cmd, args] = this.o.agentCommand
        ? [
            '/bin/sh',
            [
              '-c',
              `"$0" agent & unset ${['NGSCI_AGENT_TOKEN', ...agentOnly].join(' ')}; exec "$@"`,
              this.o.agentCommand,
              this.o.command,
              ...serverArgs,
            ],
          ]
        : [this.o.command, serverArgs];
      const childEnv = this.o.agentCommand
        ? {
            ...env,
            ...Object.fromEntries(agentOnly.map((k) => [k, this.o.agentEnv![k]!])),
            ...(req.agentToken ? { NGSCI_AGENT_TOKEN: req.agentToken } : {}),
          }
        : env;
      child = spawn(cmd, args, {
        cwd: home,
        env: childEnv,
        detached: true,
        stdio: ['ignore', out, out],
        // the shell, the agent, the server and its kernels all run as the account (libuv also
        // drops the service's supplementary groups); the log stays the service's (an open fd)
        ...(account ? { uid: account.uid, gid: account.gid } : {}),
      });
    } finally {
      closeSync(out);
    }
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const pid = await Promise.race([
      new Promise<number>((resolve) => child.once('spawn', () => resolve(child.pid as number))),
      spawnError.then((err) => {
        throw new ApiError(
          500,
          'provision_failed',
          `could not run ${this.o.command}: ${err.message}`,
        );
      }),
    ]);
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code, signal) =>
        resolve(code ?? (signal ? 128 + signalNumber(signal) : null)),
      ),
    );
    const t: Tracked = { pid, child, running: false, stopping: false, exited };
    this.tracked.set(req.instanceId, t);
    writeFileSync(join(this.o.runDir, `${req.instanceId}.pid`), String(pid));
    void exited.then((code) => this.exitedOnItsOwn(req.instanceId, t, code));
    await ctx.report({
      state: 'starting',
      progress: 30,
      message: `started jupyterhub-singleuser (pid ${pid}) on port ${port}`,
    });

    const deadline = Date.now() + this.o.readyTimeoutSeconds * 1000;
    let lastReport = Date.now();
    for (;;) {
      if (ctx.signal.aborted) {
        await this.terminate(req.instanceId);
        throw ctx.signal.reason instanceof Error
          ? ctx.signal.reason
          : new ApiError(409, 'cancelled', 'start cancelled');
      }
      const code = await Promise.race([
        exited,
        new Promise<'alive'>((r) => setTimeout(() => r('alive'), 0)),
      ]);
      if (code !== 'alive') {
        this.tracked.delete(req.instanceId);
        throw new ApiError(
          500,
          'process_exited',
          `the server exited with code ${code ?? 'unknown'} before it was ready; see ${logPath}`,
          { exitCode: code },
        );
      }
      if (await this.answers(targetUrl)) break;
      if (Date.now() > deadline) {
        await this.terminate(req.instanceId);
        throw new ApiError(
          504,
          'ready_timeout',
          `the server did not answer within ${this.o.readyTimeoutSeconds} s; see ${logPath}`,
        );
      }
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        const waited = Math.round(
          (Date.now() - (deadline - this.o.readyTimeoutSeconds * 1000)) / 1000,
        );
        await ctx.report({
          progress: Math.min(90, 30 + waited),
          message: `waiting for JupyterLab to answer (${waited} s)`,
        });
      }
      await sleep(1000, ctx.signal);
    }
    t.running = true;
    return { targetUrl, ref: { pid, port, logPath } };
  }

  async stop(instanceId: string, ref: ProviderRef, _ctx?: ProvisionContext): Promise<void> {
    const t = this.tracked.get(instanceId);
    const pid = t?.pid ?? (typeof ref.pid === 'number' ? ref.pid : this.pidFromFile(instanceId));
    if (t) t.stopping = true;
    if (pid && (t || this.isOurs(pid, instanceId))) await this.killGroup(pid, t?.exited);
    if (t?.watch) clearInterval(t.watch);
    this.tracked.delete(instanceId);
    rmSync(join(this.o.runDir, `${instanceId}.pid`), { force: true });
  }

  async adopt(instanceId: string, ref: ProviderRef): Promise<boolean> {
    const pid = typeof ref.pid === 'number' ? ref.pid : this.pidFromFile(instanceId);
    if (!pid || !this.isOurs(pid, instanceId)) return false;
    let resolveExit!: (code: number | null) => void;
    const exited = new Promise<number | null>((r) => (resolveExit = r));
    const t: Tracked = { pid, child: null, running: true, stopping: false, exited };
    // not our child, so no exit event: watch the pid instead
    t.watch = setInterval(() => {
      if (!isAlive(pid)) {
        clearInterval(t.watch);
        resolveExit(null);
      }
    }, 1000);
    t.watch.unref();
    this.tracked.set(instanceId, t);
    void exited.then((code) => this.exitedOnItsOwn(instanceId, t, code, 'process_lost'));
    this.o.logger.info({ instance: instanceId, pid }, 'adopted a running local instance');
    return true;
  }

  async close({ stopInstances }: { stopInstances: boolean }): Promise<void> {
    for (const [id, t] of this.tracked) {
      if (t.watch) clearInterval(t.watch);
      if (stopInstances) {
        t.stopping = true;
        await this.killGroup(t.pid, t.exited);
        rmSync(join(this.o.runDir, `${id}.pid`), { force: true });
      }
    }
    if (stopInstances) this.tracked.clear();
  }

  /** Ids of instances this provisioner currently runs (for tests and the shutdown path). */
  instanceIds(): string[] {
    return [...this.tracked.keys()];
  }

  private exitedOnItsOwn(
    instanceId: string,
    t: Tracked,
    code: number | null,
    errorCode: ExitReport['errorCode'] = 'process_exited',
  ): void {
    if (t.stopping || !t.running || this.tracked.get(instanceId) !== t) return;
    this.tracked.delete(instanceId);
    rmSync(join(this.o.runDir, `${instanceId}.pid`), { force: true });
    // the machine is gone with its server: the agent and any kernels left in the group go too
    // (otherwise an agent outlives its server and keeps reporting for an instance that ended)
    void this.killGroup(t.pid);
    this.listener?.({
      instanceId,
      exitCode: code,
      errorCode,
      message:
        code === null
          ? 'the server process disappeared'
          : `the server process exited with code ${code}`,
    });
  }

  private async terminate(instanceId: string): Promise<void> {
    const t = this.tracked.get(instanceId);
    if (!t) return;
    t.stopping = true;
    await this.killGroup(t.pid, t.exited);
    this.tracked.delete(instanceId);
  }

  private async killGroup(pid: number, exited?: Promise<number | null>): Promise<void> {
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
      }
    };
    signal('SIGTERM');
    const gone = exited
      ? exited.then(() => true)
      : (async () => {
          for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
          return !isAlive(pid);
        })();
    const inTime = await Promise.race([gone, sleep(10_000).then(() => false)]);
    if (!inTime) signal('SIGKILL');
    // the group may still hold kernels the server started
    signal('SIGKILL');
  }

  private async answers(targetUrl: string): Promise<boolean> {
    try {
      const res = await this.fetchImpl(`${targetUrl}api`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  private pidFromFile(instanceId: string): number | null {
    try {
      const pid = Number(readFileSync(join(this.o.runDir, `${instanceId}.pid`), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  /** A recycled pid must not be killed: the process must carry this instance's id. */
  private isOurs(pid: number, instanceId: string): boolean {
    if (!isAlive(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .includes(`NGSCI_INSTANCE_ID=${instanceId}`);
    } catch {
      return false;
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGKILL: 9,
    SIGTERM: 15,
    SIGSEGV: 11,
    SIGABRT: 6,
  };
  return table[signal] ?? 0;
}
