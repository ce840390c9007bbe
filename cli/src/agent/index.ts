/**
 * `ngsci agent`: runs on each instance beside the single-user server, with the instance's own
 * agent credential (NGSCI_AGENT_TOKEN, issued by the service at start; never the server's token):
 * - GPU: reports `nvidia-smi` readings every --gpu-interval (an empty list on a machine without GPUs);
 * - kernels: asks its own server (on loopback only, with the server's token) how many kernels are
 *   executing, every --kernel-interval, so idle culling never has to call the server itself;
 * - spot: polls the cloud's metadata endpoint every --spot-interval and reports a notice once;
 *   when the service answers that the researcher keeps their variables (keepState), runs the
 *   keep-state save in every Python notebook kernel of its server, through the server's own HTTP
 *   API and kernel websockets with the server's token (keep-state.ts, jupyter.ts), and reports
 *   what was kept, so no browser page has to be open (the same on a local instance and a VM);
 * - audit: watches --dataset with inotify and posts the file events in batches.
 * It keeps running when the service is briefly unreachable: GPU readings are dropped, audit events
 * are kept (up to a bound) and sent with the next batch.
 */
import type { AuditEventInput } from '@ngsci/contract';
import { parse, str } from '../args.js';
import { ApiClient, connection } from '../client.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import type { Io } from '../output.js';
import { parseDuration } from '../parse.js';
import { watchDataset, type Watch } from './audit.js';
import { readGpus } from './gpu.js';
import { describeReport, serverSaveRunner, toReport, type SaveRunner } from './keep-state.js';
import { countKernels } from './jupyter.js';
import { loopbackServerUrl } from './kernels.js';
import { checkSpot, DEFAULT_METADATA_URL, type SpotCloud, type SpotEvent } from './spot.js';

export const AGENT_HELP = `Usage: ngsci agent [options]

Runs beside the single-user server on an instance: reports GPU use, spot notices and dataset reads.

Options (environment variables in brackets):
  --agent-token T        the instance's agent credential [NGSCI_AGENT_TOKEN]; required
  --server-url URL       this server's own URL, on loopback [JUPYTERHUB_SERVICE_URL]
  --dataset PATH         watch this folder for file reads [NGSCI_DATASET_PATH]; none: no audit
  --cloud C              aws, gcp, azure, or local/none (no spot polling) [NGSCI_CLOUD]
  --metadata-url URL     the metadata endpoint's base URL [NGSCI_METADATA_URL]
  --gpu-interval 30s     how often to read nvidia-smi [NGSCI_GPU_INTERVAL]
  --kernel-interval 5s   how often to ask the server which kernels are executing (sent to
                         the service when that changes, and at least once a minute)
  --spot-interval 5s     how often to ask for a spot notice
  --keep-state-timeout 90s  how long saving the kernel variables at a spot notice may take
                         [NGSCI_AGENT_KEEP_STATE_TIMEOUT]
  --flush-interval 5s    how often to send audit events
  --nvidia-smi PATH      [NGSCI_NVIDIA_SMI; default nvidia-smi]
  --inotifywait PATH     [NGSCI_INOTIFYWAIT; default inotifywait]
  --once                 one GPU report and one spot check, then exit
  --url                  the service's API URL [NGSCI_API_URL]`;

const MAX_PENDING = 50_000;

export interface AgentSeams {
  /** runs the keep-state save in the server's kernels (tests: a fake) */
  saveRunner?: SaveRunner;
}

export async function agent(
  io: Io,
  args: string[],
  stopSignal: AbortSignal,
  seams: AgentSeams = {},
): Promise<number> {
  const p = parse(
    'agent',
    args,
    {
      'agent-token': { type: 'string' },
      'server-url': { type: 'string' },
      'kernel-interval': { type: 'string' },
      dataset: { type: 'string' },
      cloud: { type: 'string' },
      'metadata-url': { type: 'string' },
      'gpu-interval': { type: 'string' },
      'spot-interval': { type: 'string' },
      'flush-interval': { type: 'string' },
      'nvidia-smi': { type: 'string' },
      inotifywait: { type: 'string' },
      'keep-state-timeout': { type: 'string' },
      once: { type: 'boolean', default: false },
    },
    { min: 0, max: 0, names: '' },
  );
  if (p.values.help) {
    io.out(`${AGENT_HELP}\n`);
    return EXIT.ok;
  }
  const v = p.values;
  const env = io.env;
  const agentToken = str(v['agent-token']) ?? env.NGSCI_AGENT_TOKEN;
  if (!agentToken)
    throw new UsageError(
      'agent: no agent credential: the service hands NGSCI_AGENT_TOKEN to the agent at start',
    );
  const serverUrl = loopbackServerUrl(str(v['server-url']) ?? env.JUPYTERHUB_SERVICE_URL);
  const serverToken = env.JUPYTERHUB_API_TOKEN;
  const dataset = str(v.dataset) ?? env.NGSCI_DATASET_PATH;
  const cloudRaw = (str(v.cloud) ?? env.NGSCI_CLOUD ?? 'none').toLowerCase();
  if (!['aws', 'gcp', 'azure', 'local', 'none'].includes(cloudRaw))
    throw new UsageError(
      `agent: --cloud must be aws, gcp, azure, local or none, not '${cloudRaw}'`,
    );
  const cloud = ['aws', 'gcp', 'azure'].includes(cloudRaw) ? (cloudRaw as SpotCloud) : null;
  const metadataUrl =
    str(v['metadata-url']) ?? env.NGSCI_METADATA_URL ?? (cloud ? DEFAULT_METADATA_URL[cloud] : '');
  const gpuEvery = parseDuration(
    str(v['gpu-interval']) ?? env.NGSCI_GPU_INTERVAL ?? '30s',
    '--gpu-interval',
  );
  const spotEvery = parseDuration(str(v['spot-interval']) ?? '5s', '--spot-interval');
  const flushEvery = parseDuration(str(v['flush-interval']) ?? '5s', '--flush-interval');
  const kernelEvery = parseDuration(str(v['kernel-interval']) ?? '5s', '--kernel-interval');
  const nvidiaSmi = str(v['nvidia-smi']) ?? env.NGSCI_NVIDIA_SMI ?? 'nvidia-smi';
  const inotifywait = str(v.inotifywait) ?? env.NGSCI_INOTIFYWAIT ?? 'inotifywait';
  const keepStateTimeout = parseDuration(
    str(v['keep-state-timeout']) ?? env.NGSCI_AGENT_KEEP_STATE_TIMEOUT ?? '90s',
    '--keep-state-timeout',
  );
  // the save reaches the kernels through the server (its URL on loopback and its own token, held
  // in memory and sent nowhere else); the agent's credential stays with the agent
  const saveRunner: SaveRunner | null =
    serverUrl && serverToken
      ? (seams.saveRunner ??
        serverSaveRunner({ url: serverUrl, token: serverToken }, { fetch: io.fetch }))
      : null;
  const api = new ApiClient(connection({ url: str(v.url), token: agentToken }, env), io.fetch);
  const log = (msg: string) => io.err(`${new Date().toISOString()} ngsci agent: ${msg}\n`);

  let gpuNote = '';
  const reportGpu = async () => {
    const reading = await readGpus(nvidiaSmi);
    if (reading.note && reading.note !== gpuNote) log(reading.note);
    gpuNote = reading.note ?? '';
    await api.post('/agent/gpu', { gpus: reading.gpus });
  };

  let lastKernels = { key: '', at: 0 };
  const reportKernels = async () => {
    if (!serverUrl || !serverToken) return;
    const kernels = await countKernels({ url: serverUrl, token: serverToken }, 5000, io.fetch);
    if (!kernels) return;
    const key = `${kernels.total}/${kernels.busy}`;
    // a change goes out at once; the same answer once a minute, as the agent's heartbeat
    if (key === lastKernels.key && Date.now() - lastKernels.at < 60_000) return;
    await api.post('/agent/kernels', kernels);
    lastKernels = { key, at: Date.now() };
  };

  const reported = new Set<string>();
  const pollSpot = async (): Promise<SpotEvent | null> => {
    if (!cloud) return null;
    const e = await checkSpot(cloud, metadataUrl, io.fetch);
    if (!e) return null;
    const key = `${e.action}:${e.at ?? ''}`;
    if (!reported.has(key)) {
      const answer = await api.post<{ ok: true; keepState?: boolean }>('/agent/spot', {
        cloud: e.cloud,
        action: e.action,
        at: e.at,
        savesVariables: saveRunner !== null,
      });
      reported.add(key);
      log(`spot notice: ${cloud} will ${e.action}${e.at ? ` at ${e.at}` : ''}`);
      // exactly one save per notice: this one, right after the notice went out
      if (answer?.keepState === true && saveRunner) await saveVariables(saveRunner);
    }
    return e;
  };

  const saveVariables = async (run: SaveRunner) => {
    const report = toReport(await run(keepStateTimeout * 1000));
    log(describeReport(report));
    await api.post('/agent/spot/variables', report);
  };

  const guard = (what: string, fn: () => Promise<unknown>) => async () => {
    try {
      await fn();
    } catch (err) {
      log(
        `${what} failed: ${err instanceof CliError ? `[${err.code}] ${err.message}` : (err as Error).message}`,
      );
    }
  };

  if (v.once) {
    await reportGpu();
    await reportKernels();
    await pollSpot();
    log('reported once');
    return EXIT.ok;
  }

  let pending: AuditEventInput[] = [];
  let watch: Watch | null = null;
  const flush = async () => {
    while (pending.length) {
      const batch = pending.slice(0, 1000);
      await api.post('/agent/audit', { events: batch });
      pending = pending.slice(batch.length);
    }
  };
  if (dataset) {
    watch = watchDataset(
      dataset,
      (events) => {
        pending.push(...events);
        if (pending.length > MAX_PENDING) {
          log(
            `dropping ${pending.length - MAX_PENDING} audit events: the service has not accepted any for a while`,
          );
          pending = pending.slice(-MAX_PENDING);
        }
      },
      { command: inotifywait, onError: (m) => log(m) },
    );
    try {
      await watch.ready;
      log(`watching ${dataset} for file reads`);
    } catch {
      watch = null;
    }
  }
  log(
    `running${serverUrl ? '' : ' (no loopback server URL: kernels not reported)'}${cloud ? `, polling ${cloud} for spot notices${saveRunner ? '' : " (without the server's URL and token: no kernel variables saved at a notice)"}` : ''}`,
  );

  const timers = [
    every(gpuEvery, guard('GPU report', reportGpu), stopSignal),
    every(kernelEvery, guard('kernel report', reportKernels), stopSignal),
    every(spotEvery, guard('spot check', pollSpot), stopSignal),
    every(flushEvery, guard('audit upload', flush), stopSignal),
  ];
  await Promise.all(timers);
  watch?.stop();
  await guard('audit upload', flush)();
  log('stopped');
  return EXIT.ok;
}

/** Runs fn now and then every `seconds` until the signal fires; never two runs at once. */
async function every(seconds: number, fn: () => Promise<void>, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await fn();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, seconds * 1000);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }
}
