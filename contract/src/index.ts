/**
 * The ngsci HTTP API, as zod schemas. Everything that crosses a process boundary is described
 * here once: hub-service validates with these schemas and generates its OpenAPI document from them,
 * and the CLI, the JupyterLab extension and the tests infer their types from them.
 *
 * Money is always integer micro-dollars (µ$, 1 USD = 1_000_000 µ$); field names end in `Micros`.
 */
import { z } from 'zod';

export * from './errors.js';
export * from './notify.js';
export * from './audit.js';
export * from './agent.js';
export * from './figures.js';
export * from './packages.js';

/** Clouds an instance can run on. `local` runs a process on the hub's own machine. */
export const Cloud = z.enum(['local', 'aws', 'gcp', 'azure']).meta({ id: 'Cloud' });
export type Cloud = z.infer<typeof Cloud>;

export const InstanceState = z
  .enum(['requested', 'provisioning', 'starting', 'running', 'stopping', 'stopped', 'failed'])
  .meta({ id: 'InstanceState' });
export type InstanceState = z.infer<typeof InstanceState>;

/** States in which an instance holds (or is about to hold) resources. */
export const ACTIVE_STATES: readonly InstanceState[] = [
  'requested',
  'provisioning',
  'starting',
  'running',
  'stopping',
];
export const TERMINAL_STATES: readonly InstanceState[] = ['stopped', 'failed'];

/** The server-name rule (one definition, shared with the Python side through server-names.json). */
export * from './server-name.js';
import { DEFAULT_SERVER, ServerName } from './server-name.js';
import { OpenStream } from './figures.js';
import {
  CpuPackage,
  CpuPackageId,
  GpuPackage,
  GpuPackageId,
  MachineFit,
  checkMachineChoice,
} from './packages.js';

export const SizeId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'a size id such as cpu-small or gpu-a100')
  .meta({ id: 'SizeId', example: 'gpu-t4' });
export type SizeId = z.infer<typeof SizeId>;

export const Micros = z.number().int().safe().meta({ description: 'integer micro-dollars' });
export type Micros = z.infer<typeof Micros>;

export const Offer = z
  .object({
    cloud: Cloud,
    region: z.string(),
    instanceType: z.string(),
    available: z.boolean(),
    onDemandMicrosPerHour: Micros,
    spotMicrosPerHour: Micros.nullable(),
    note: z.string().optional(),
    /** a GPU size on `local`: a process without a GPU (NGSCI_LOCAL_SIMULATE_GPUS) */
    simulated: z.boolean().optional(),
    /** when this offer's price and availability were last checked (YYYY-MM-DD) */
    checkedOn: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional(),
    /** a pair's offer: the machine it gives, and what that is beyond the ask */
    fit: MachineFit.optional(),
  })
  .meta({ id: 'Offer' });
export type Offer = z.infer<typeof Offer>;

export const Size = z
  .object({
    id: SizeId,
    label: z.string(),
    class: z.enum(['cpu', 'gpu']),
    vcpu: z.number().int().positive(),
    memoryGiB: z.number().positive(),
    gpu: z
      .object({ model: z.string(), count: z.number().int().positive(), memoryGiB: z.number() })
      .nullable(),
    offers: z.array(Offer),
    /** a pair (`m.t4`): its CPU and GPU packages; a preset has none */
    package: z.object({ cpu: CpuPackageId, gpu: GpuPackageId }).optional(),
  })
  .meta({ id: 'Size' });
export type Size = z.infer<typeof Size>;

export const Catalog = z
  .object({
    asOf: z.string().meta({ description: 'date the public prices were taken (YYYY-MM-DD)' }),
    currency: z.literal('USD'),
    defaultCloud: Cloud,
    clouds: z.array(Cloud),
    sizes: z.array(Size).meta({ description: 'the named presets' }),
    packages: z
      .object({ cpu: z.array(CpuPackage), gpu: z.array(GpuPackage) })
      .optional()
      .meta({ description: 'the CPU and GPU packages a pair combines' }),
    pairs: z.array(Size).optional().meta({
      description:
        'every CPU package with every GPU package, as sizes with ids `<cpu>.<gpu>`; each cloud offers the cheapest machine covering both, or says why not',
    }),
  })
  .meta({ id: 'Catalog' });
export type Catalog = z.infer<typeof Catalog>;

export const Me = z
  .object({
    name: z.string(),
    admin: z.boolean(),
    groups: z.array(z.string()),
    plan: z.object({ id: z.string(), label: z.string(), multiplierPpm: z.number().int() }),
    localIsolation: z
      .object({
        mode: z.enum(['users', 'shared']),
        sharedDemo: z.boolean(),
      })
      .optional()
      .meta({
        description:
          "how local instances are isolated: 'users' (each user's own system account) or 'shared' " +
          '(one system account: one user at most, or with sharedDemo every user shares it; not for sensitive data)',
      }),
  })
  .meta({ id: 'Me' });
export type Me = z.infer<typeof Me>;

/** What the service does when the cloud takes a spot machine back (instances/preemption.ts). */
export const OnPreemption = z.enum(['on-demand', 'spot', 'stop']).meta({
  id: 'OnPreemption',
  description:
    "with spot: when the cloud takes the machine back, start the same server again on demand ('on-demand', billed at the on-demand price), on spot again ('spot'), or leave it stopped ('stop'); default the user's own choice (PUT /me/preemption), else the service's NGSCI_PREEMPTION_DEFAULT",
});
export type OnPreemption = z.infer<typeof OnPreemption>;
const onPreemption = OnPreemption.optional();

export const Instance = z
  .object({
    id: z.string().meta({ description: 'instance id, new for every start' }),
    user: z.string(),
    server: ServerName,
    size: SizeId,
    cloud: Cloud,
    region: z.string(),
    spot: z.boolean(),
    state: InstanceState,
    errorCode: z.string().nullable(),
    errorMessage: z.string().nullable(),
    exitCode: z.number().int().nullable(),
    url: z
      .string()
      .nullable()
      .meta({ description: 'the user-facing JupyterLab path once running' }),
    ratePerHourMicros: Micros,
    createdAt: z.iso.datetime(),
    readyAt: z.iso.datetime().nullable(),
    stoppedAt: z.iso.datetime().nullable(),
    onPreemption: OnPreemption.nullable().optional().meta({
      description: 'what happens when the cloud takes this spot machine back; null on demand',
    }),
    billedMicros: Micros.optional().meta({
      description:
        "billed so far at the list answer's asOf (plan multiplier applied; the 60 s minimum is billed at the stop, not while it runs)",
    }),
    placement: z.string().optional().meta({
      description:
        "a launch's answer when it named no cloud: why the service chose this one (credits.ts), e.g. 'on GCP: covered by research credits until 2027-03-31'",
    }),
  })
  .meta({ id: 'Instance' });
export type Instance = z.infer<typeof Instance>;

export const InstanceList = z
  .object({
    instances: z.array(Instance),
    asOf: z.iso.datetime().optional().meta({ description: "the service's clock for billedMicros" }),
    streams: z
      .array(OpenStream)
      .optional()
      .meta({ description: 'the open ledger streams, to tick billedMicros (figures.ts)' }),
  })
  .meta({ id: 'InstanceList' });
export type InstanceList = z.infer<typeof InstanceList>;

/** What a machine is: the fields a launch, a resize and a hub spawn share. */
const machineChoice = {
  size: SizeId.optional().meta({ description: 'a named size; or give cpu (and gpu) instead' }),
  cpu: CpuPackageId.optional().meta({
    description: 'a CPU package (with gpu): the pair `<cpu>.<gpu>` instead of a named size',
  }),
  gpu: GpuPackageId.optional().meta({ description: "the pair's GPU package; default none" }),
  cloud: Cloud.optional().meta({
    description:
      "without one, a launch or spawn goes where the size costs the organisation least after credits among the hub's clouds (the default cloud on a one-cloud hub); a resize keeps the instance's cloud",
  }),
  region: z.string().max(64).optional(),
  spot: z.boolean().optional(),
};

/** A start's permission to fall back from spot to on demand; a launch and a hub spawn carry it. */
const spotFallback = z.boolean().optional().meta({
  description:
    'with spot: if the cloud has no spot capacity for the machine, start it on demand (billed at the on-demand price) instead of failing; default false',
});

export const LaunchRequest = z
  .object({
    server: ServerName.default(DEFAULT_SERVER),
    ...machineChoice,
    spot: z.boolean().default(false),
    spotFallback,
    onPreemption,
  })
  .strict()
  .superRefine((v, ctx) => checkMachineChoice(v, ctx, { required: true }))
  .meta({ id: 'LaunchRequest' });
export type LaunchRequest = z.input<typeof LaunchRequest>;

/** A resize names the new size; cloud, region and spot default to the running instance's. */
export const ResizeRequest = z
  .object(machineChoice)
  .strict()
  .superRefine((v, ctx) => checkMachineChoice(v, ctx, { required: true }))
  .meta({ id: 'ResizeRequest' });
export type ResizeRequest = z.input<typeof ResizeRequest>;

/**
 * A stop announced before it happens (`%%ngsci stop_after`): the service records who asked, open
 * JupyterLab pages save their documents and confirm with a plain stop, and without a confirmation
 * the machine stops when the grace is over. No body (or no grace) stops at once, as before.
 */
export const StopRequest = z
  .object({
    reason: z.enum(['stop_after']).optional().meta({ description: 'who asked for the stop' }),
    cell: z
      .enum(['finished', 'failed'])
      .optional()
      .meta({ description: 'stop_after: how the cell ended' }),
    graceSeconds: z.number().int().min(0).max(300).optional().meta({
      description: 'stop after this many seconds unless a stop without grace comes first; 0: now',
    }),
  })
  .strict()
  .meta({ id: 'StopRequest' });
export type StopRequest = z.input<typeof StopRequest>;

export const InstanceEventKind = z.enum(['spot_notice']).meta({ id: 'InstanceEventKind' });
export type InstanceEventKind = z.infer<typeof InstanceEventKind>;

export const InstanceEvent = z
  .object({
    id: z.number().int(),
    instanceId: z.string(),
    at: z.iso.datetime(),
    state: InstanceState,
    progress: z.number().int().min(0).max(100),
    message: z.string(),
    /**
     * What a client may act on without reading the words: `spot_notice` when the cloud has
     * announced it takes this spot machine back (a JupyterLab page of the server then asks for
     * its notices at once, to save its open documents and, with keep-state, the variables);
     * null for every other event. Messages are for people and may change wording.
     */
    kind: InstanceEventKind.nullable(),
  })
  .meta({ id: 'InstanceEvent' });
export type InstanceEvent = z.infer<typeof InstanceEvent>;

/** The words of a `spot_notice` event (its `kind` is what clients act on). */
export const SPOT_NOTICE_PHRASE = 'announced it takes this spot machine back';

/**
 * The options a hub spawn carries (`user_options`). The spawn form and the API send the same
 * object; the bridge validates it with this schema's mirror in Python.
 */
export const SpawnOptions = z
  .object({ ...machineChoice, spotFallback, onPreemption })
  .strict()
  .superRefine((v, ctx) => checkMachineChoice(v, ctx, { required: true }))
  .meta({ id: 'SpawnOptions' });
export type SpawnOptions = z.infer<typeof SpawnOptions>;

// ---- spawner-bridge → hub-service (authenticated with the bridge secret, never a user token)

export const BridgeStartRequest = z
  .object({
    user: z.string().min(1).max(255),
    server: z
      .string()
      .max(255)
      .meta({ description: "the hub's server name; '' is the default server" }),
    options: SpawnOptions,
    env: z.record(z.string(), z.string()),
    baseUrl: z.string().meta({ description: "the server's path prefix, e.g. /user/alice/" }),
  })
  .strict()
  .meta({ id: 'BridgeStartRequest' });
export type BridgeStartRequest = z.infer<typeof BridgeStartRequest>;

export const BridgeStopRequest = z
  .object({ user: z.string().min(1), server: z.string().max(255) })
  .strict()
  .meta({ id: 'BridgeStopRequest' });
export type BridgeStopRequest = z.infer<typeof BridgeStopRequest>;

export const BridgeInstance = Instance.extend({
  targetUrl: z.string().nullable().meta({ description: 'where the proxy should send traffic' }),
}).meta({ id: 'BridgeInstance' });
export type BridgeInstance = z.infer<typeof BridgeInstance>;

export const BridgeStatus = z
  .object({ instance: BridgeInstance.nullable() })
  .meta({ id: 'BridgeStatus' });
export type BridgeStatus = z.infer<typeof BridgeStatus>;

export const EventList = z.object({ events: z.array(InstanceEvent) }).meta({ id: 'EventList' });
export type EventList = z.infer<typeof EventList>;

export const Health = z
  .object({
    status: z.literal('ok'),
    version: z.string(),
    database: z.enum(['postgres', 'pglite']),
  })
  .meta({ id: 'Health' });
export type Health = z.infer<typeof Health>;
export * from './usage.js';
export * from './billing.js';
export * from './admin.js';
export * from './idle.js';
export * from './base-estimate.js';
export * from './gpu-waste.js';
export * from './credits.js';
