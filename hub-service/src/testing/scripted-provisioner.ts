/** A provisioner for unit tests whose starts succeed, fail or hang as the test says. */
import { ApiError } from '../errors.js';
import type {
  ExitReport,
  Provisioned,
  ProvisionContext,
  ProvisionRequest,
  Provisioner,
  ProviderRef,
} from '../provisioners/types.js';

export type Script = 'ok' | 'fail' | 'hang';

export class ScriptedProvisioner implements Provisioner {
  readonly kind = 'local' as const;
  script: Script = 'ok';
  started: ProvisionRequest[] = [];
  stopped: string[] = [];
  private listener: ((r: ExitReport) => void) | null = null;

  async start(req: ProvisionRequest, ctx: ProvisionContext): Promise<Provisioned> {
    this.started.push(req);
    await ctx.report({ state: 'starting', progress: 40, message: 'booting' });
    if (this.script === 'fail')
      throw new ApiError(500, 'process_exited', 'exited with code 3', { exitCode: 3 });
    if (this.script === 'hang') {
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
      throw new ApiError(409, 'cancelled', 'start cancelled');
    }
    return {
      targetUrl: `http://127.0.0.1:9${this.started.length}${req.baseUrl}`,
      ref: { pid: 4242 },
    };
  }

  async stop(instanceId: string, _ref: ProviderRef): Promise<void> {
    this.stopped.push(instanceId);
  }

  async adopt(): Promise<boolean> {
    return false;
  }

  onExit(listener: (r: ExitReport) => void): void {
    this.listener = listener;
  }

  crash(instanceId: string, exitCode: number): void {
    this.listener?.({
      instanceId,
      exitCode,
      errorCode: 'process_exited',
      message: `the server process exited with code ${exitCode}`,
    });
  }

  async close(): Promise<void> {}
}
