/**
 * What a provisioner is: the part that turns an instance row into a running single-user server
 * somewhere (a local process, a cloud VM through Terraform) and takes it away again.
 * The instance lifecycle (rows, events, jobs, billing) is not its business; it reports progress
 * through the context and returns what it needs to find the machine again.
 */
import type { Offer, Size } from '@ngsci/contract';

export interface ProvisionRequest {
  instanceId: string;
  user: string;
  /** the API's server name (`default` for the hub's default server) */
  server: string;
  size: Size;
  offer: Offer;
  spot: boolean;
  /** environment the hub computed for the single-user server; holds the server's hub token */
  env: Record<string, string>;
  /** the server's path prefix behind the proxy, e.g. /user/alice/ */
  baseUrl: string;
  /**
   * The instance agent's own credential (agent/credentials.ts). It goes to the agent only, never
   * into the single-user server's environment: local instances hand it to the agent process, VMs
   * receive it through the bootstrap exchange into a root-only file.
   */
  agentToken?: string;
}

export interface ProgressReport {
  state?: 'provisioning' | 'starting';
  /** 0..100 */
  progress: number;
  message: string;
}

export interface ProvisionContext {
  report(event: ProgressReport): Promise<void>;
  /** aborted when the start is cancelled (a stop arrived, or the job was reaped) */
  signal: AbortSignal;
  /**
   * A spot start the cloud had no capacity for asks to go on on demand instead. True once the
   * instance is recorded as on-demand and priced at the on-demand rate (its user allowed this at
   * launch, and it is not ready yet, so nothing was billed at the spot rate); false when the user
   * did not allow it. Absent where no instance row backs the start: then nothing switches.
   */
  switchToOnDemand?(): Promise<boolean>;
}

/** What a provisioner keeps to find an instance again after a restart; stored as JSON. */
export type ProviderRef = Record<string, string | number | boolean | null>;

export interface Provisioned {
  /** where the proxy sends traffic, including the base path: http://10.0.0.5:8888/user/alice/ */
  targetUrl: string;
  ref: ProviderRef;
}

/** A running instance ended on its own (crash, eviction); called at most once per instance. */
export interface ExitReport {
  instanceId: string;
  exitCode: number | null;
  errorCode: 'process_exited' | 'process_lost' | 'provision_failed';
  message: string;
}

export interface Provisioner {
  readonly kind: 'local' | 'terraform';
  /** Resolves once the server answers `GET <targetUrl>api`; rejects with an ApiError otherwise. */
  start(request: ProvisionRequest, ctx: ProvisionContext): Promise<Provisioned>;
  /** Idempotent: stopping what is already gone succeeds. */
  stop(instanceId: string, ref: ProviderRef, ctx: ProvisionContext): Promise<void>;
  /**
   * Take over an instance this process did not start (after a service restart). Returns false when
   * the machine is gone. From then on a crash is reported through `onExit`.
   */
  adopt(instanceId: string, ref: ProviderRef): Promise<boolean>;
  /** Registers the single listener for instances that end on their own. */
  onExit(listener: (report: ExitReport) => void): void;
  /** Stops watching; with `stopInstances`, stops every instance it started (npm start's Ctrl-C). */
  close(options: { stopInstances: boolean }): Promise<void>;
}
