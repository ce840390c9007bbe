/**
 * The services ngsci's plugins share: the model's interface and token, and the command ids.
 * Plugins and widgets depend on `INgsciModel`, never on the class that implements it.
 */
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';
import type {
  Budget,
  Catalog,
  Instance,
  InstanceEvent,
  Me,
  NgsciApi,
  NgsciApiError,
  StatementSummary,
  Usage,
} from './api';
import type { BudgetScope } from '@ngsci/contract';

/** The parts of the sidebar that refresh on their own. */
export type Section = 'instance' | 'usage' | 'billing';

/** A resize of this page's server as the model follows it. */
export interface ResizeProgress {
  server: string;
  fromInstanceId: string;
  toSize: string;
  /** the newest event of the stop-then-start */
  last: InstanceEvent | null;
  /** the new instance once it runs */
  readyInstanceId: string | null;
  failed: string | null;
  /** set when the cloud took a spot machine back and the service starts the server again */
  preempted?: boolean;
  /**
   * the service no longer takes this page's token (the hub revoked it when the old machine
   * stopped) and the event stream broke off: the page watches its server's address instead
   */
  eventsLost?: boolean;
}

/** The ngsci state of this page, fetched through the API seam; it never polls on its own. */
export interface INgsciModel {
  readonly api: NgsciApi;
  /** this page's server, in the API's naming (`default` for the hub's default server) */
  readonly server: string;
  readonly user: string;
  readonly me: Me | null;
  readonly catalog: Catalog | null;
  readonly instances: Instance[];
  readonly usage: Usage | null;
  readonly today: { micros: number; at: number } | null;
  readonly budget: Budget | null;
  readonly statements: StatementSummary[] | null;
  readonly errors: Record<Section | 'me', NgsciApiError | null>;
  /** the newest lifecycle event of each server that is changing */
  readonly progress: Map<string, InstanceEvent>;
  readonly resizing: ResizeProgress | null;
  /**
   * this page's server has stopped (its newest instance ended, or its own events said so): the
   * hub has revoked, or soon revokes, the page's token
   */
  readonly pageServerEnded: boolean;
  /** which part changed */
  readonly changed: ISignal<INgsciModel, Section | 'me'>;
  readonly instanceEvent: ISignal<INgsciModel, { server: string; event: InstanceEvent }>;
  /** this page's spot machine is being taken back (its watched events): ask for notices now */
  readonly spotNotice: ISignal<INgsciModel, InstanceEvent>;
  /** the newest instance of this page's server */
  readonly current: Instance | null;
  latestOf(server: string): Instance | null;
  readonly otherServers: Instance[];
  readonly allowedSizes: Catalog['sizes'];
  readonly clouds: Catalog['clouds'];
  rateOf(sizeId: string, cloud?: string, spot?: boolean): number | null;
  readonly burnMicrosPerHour: number;
  monthToDate(now?: number): number | null;
  /** budget spent of one of the budgets (contract figures.ts): the subject's month, live */
  budgetSpent(scope: BudgetScope, now?: number): number;
  spentToday(now?: number): number;
  /** the service's clock (every live figure is taken on it) */
  serviceNow(): number;
  /** billed so far for an instance (contract figures.ts; no 60 s minimum while it runs) */
  billedSoFar(inst: Instance, now?: number): number;
  /** usage per size over the usage window, live (contract figures.ts) */
  usageRows(now?: number): { size: string; seconds: number; micros: number }[];
  /** a statement's total; the running month's live */
  statementTotal(s: StatementSummary, now?: number): number;
  refreshMe(): Promise<void>;
  refreshInstances(): Promise<void>;
  refreshUsage(days?: number): Promise<void>;
  refreshBilling(): Promise<void>;
  refresh(sections?: Section[]): Promise<void>;
  start(server: string, size: string): Promise<void>;
  stop(server: string): Promise<Instance>;
  resize(server: string, size: string, cloud?: string): Promise<void>;
  follow(server: string, opts?: { untilNewInstanceFrom?: string }): Promise<void>;
  isActive(i: Instance | null): boolean;
  dispose(): void;
}

export const INgsciModel = new Token<INgsciModel>(
  'ngsci:model',
  'The ngsci state of this page: the user, their instances, usage, budget and statements.',
);

/** The ids of ngsci's commands (a const object rather than JupyterLab's usual namespace: the repo's lint forbids namespaces). */
export const CommandIDs = {
  openSidebar: 'ngsci:open-sidebar',
  openUsage: 'ngsci:open-usage',
  openBilling: 'ngsci:open-billing',
  resize: 'ngsci:resize',
  stop: 'ngsci:stop',
  keepRunning: 'ngsci:keep-running',
  openAdmin: 'ngsci:open-admin',
} as const;
