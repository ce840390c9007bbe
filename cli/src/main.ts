/**
 * The `ngsci` command: dispatches a verb and turns every failure into one line on stderr
 * (`ngsci: [code] message`, or JSON with --json) and an exit code (errors.ts).
 */
import { GLOBAL_OPTIONS } from './args.js';
import { ApiClient, connection } from './client.js';
import { CliError, EXIT } from './errors.js';
import type { Io } from './output.js';
import { agent } from './agent/index.js';
import { admin } from './commands/admin.js';
import * as user from './commands/user.js';

export const MAIN_HELP = `Usage: ngsci VERB [options]

Your machines:
  status [SERVER]            who you are and your instances
  launch SIZE                start a machine and follow its progress
  stop [SERVER] [--in 10m]   stop a machine (now or later)
  resize SIZE                move the server to another size
  catalog                    sizes and prices
  idle [45m]                 your idle timeout, within your admin's bounds
  preemption [CHOICE]        your default when the cloud takes a spot machine back
Money:
  usage                      what you used and what it cost
  budget                     spend, burn rate and budgets
  estimate SCENARIO.json     what a scenario would cost
Notices:
  notify "MESSAGE"           send yourself a notice
  notifications              your notices
  preferences                where notices go (JupyterLab, email, webhook)
Admins:
  admin ...                  quotas, plans, every instance, audit (ngsci admin --help)
On instances:
  agent                      GPU, spot and data-access reporting (ngsci agent --help)

Every verb takes --url URL, --token TOKEN (default: $NGSCI_API_URL, $JUPYTERHUB_API_TOKEN),
--json, and --help.
Exit codes: 0 ok, 1 the service refused, 2 bad arguments, 3 not configured or unreachable,
4 an instance failed.`;

/** Global flags may come anywhere; the verb is the first word that is not a flag or a flag's value. */
function splitVerb(argv: string[]): { verb: string | undefined; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-')) {
      const name = a.replace(/^--?/, '').split('=')[0]!;
      const opt = (GLOBAL_OPTIONS as Record<string, { type: string }>)[name];
      if (opt?.type === 'string' && !a.includes('=')) i++;
      continue;
    }
    return { verb: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { verb: undefined, rest: argv };
}

function flagValue(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) return argv[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

export async function run(
  argv: string[],
  io: Io,
  stopSignal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const json = argv.includes('--json');
  const quiet = argv.includes('--quiet') || argv.includes('-q');
  try {
    const { verb, rest } = splitVerb(argv);
    let api: ApiClient | null = null;
    const ctx: user.Ctx = {
      io,
      json,
      quiet,
      api: () =>
        (api ??= new ApiClient(
          connection({ url: flagValue(argv, 'url'), token: flagValue(argv, 'token') }, io.env),
          io.fetch,
        )),
    };
    switch (verb) {
      case 'status':
        return await user.status(ctx, rest);
      case 'launch':
      case 'start':
        return await user.launch(ctx, rest);
      case 'stop':
        return await user.stop(ctx, rest);
      case 'resize':
        return await user.resize(ctx, rest);
      case 'usage':
        return await user.usage(ctx, rest);
      case 'budget':
        return await user.budget(ctx, rest);
      case 'catalog':
      case 'sizes':
        return await user.catalog(ctx, rest);
      case 'notify':
        return await user.notify(ctx, rest);
      case 'notifications':
        return await user.notifications(ctx, rest);
      case 'preferences':
        return await user.preferences(ctx, rest);
      case 'estimate':
        return await user.estimate(ctx, rest);
      case 'idle':
        return await user.idle(ctx, rest);
      case 'preemption':
        return await user.preemption(ctx, rest);
      case 'admin':
        return await admin(ctx, rest);
      case 'agent':
        return await agent(io, rest, stopSignal);
      case 'help':
      case undefined:
        io.out(`${MAIN_HELP}\n`);
        return verb === undefined && !argv.includes('--help') && !argv.includes('-h')
          ? EXIT.usage
          : EXIT.ok;
      default:
        throw new CliError(EXIT.usage, 'usage', `unknown verb '${verb}' (see: ngsci --help)`);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.err(
        json
          ? `${JSON.stringify({ error: { code: err.code, message: err.message } })}\n`
          : `ngsci: [${err.code}] ${err.message}\n`,
      );
      return err.exitCode;
    }
    io.err(`ngsci: [internal] ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
