/**
 * How far local instances are isolated from each other and from the service (NGSCI_LOCAL_ISOLATION).
 * A local instance runs code its user controls on the service's own machine, so:
 * - `users`: each hub user's server (and its agent) runs as that user's own system account, created
 *   on first use as JupyterHub's LocalProcessSpawner does; the service's data dir, secrets and
 *   database are unreadable by those accounts. Needs the service to run as root.
 * - `shared`: one uid for everything, so one user at most: a second distinct user is refused
 *   (403 local_single_user) unless NGSCI_LOCAL_SHARED_DEMO says everyone is a demo user.
 * See docs/security.md ("Local instances") for what each mode protects.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { delimiter, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { asc, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { instances } from '../db/schema.js';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';

export type LocalIsolation = 'users' | 'shared';

/** What GET /me tells clients (the admin panel states the limit from it). */
export interface LocalIsolationSummary {
  mode: LocalIsolation;
  /** shared mode with NGSCI_LOCAL_SHARED_DEMO: every user shares one system account */
  sharedDemo: boolean;
}

export function isolationSummary(c: {
  NGSCI_LOCAL_ISOLATION: LocalIsolation;
  NGSCI_LOCAL_SHARED_DEMO: boolean;
}): LocalIsolationSummary {
  return {
    mode: c.NGSCI_LOCAL_ISOLATION,
    sharedDemo: c.NGSCI_LOCAL_ISOLATION === 'shared' && c.NGSCI_LOCAL_SHARED_DEMO,
  };
}

// ---- shared mode: one user at most

/**
 * Refuses a second distinct user on the local provisioner in `shared` mode, before anything is
 * provisioned. The machine belongs to the first user who ever had a local instance: a later user
 * would share that user's uid, and with it their home and the service's secrets.
 */
export class LocalUserGate {
  constructor(
    private readonly o: {
      isolation: LocalIsolation;
      sharedDemo: boolean;
      /** the user of the oldest local instance on record, or null */
      firstLocalUser: () => Promise<string | null>;
      logger?: Logger;
    },
  ) {}

  async check(user: string, cloud: string): Promise<void> {
    if (cloud !== 'local' || this.o.isolation !== 'shared' || this.o.sharedDemo) return;
    const owner = await this.o.firstLocalUser();
    if (owner === null || owner === user) return;
    this.o.logger?.warn(
      { user, owner },
      'refused a second user on the local provisioner (NGSCI_LOCAL_ISOLATION=shared)',
    );
    // the owner's name is not the caller's business: it stays in the log
    throw new ApiError(
      403,
      'local_single_user',
      'local instances on this hub run under one shared system account (NGSCI_LOCAL_ISOLATION=shared), ' +
        'which already belongs to another user. Ask an admin to set NGSCI_LOCAL_ISOLATION=users ' +
        '(each user gets their own system account) or to give you a cloud instance.',
    );
  }
}

/** The user of the oldest local instance on record: the one user of a `shared` machine. */
export async function firstLocalUser(db: Db): Promise<string | null> {
  const [row] = await db
    .select({ user: instances.userName })
    .from(instances)
    .where(eq(instances.cloud, 'local'))
    .orderBy(asc(instances.createdAt))
    .limit(1);
  return row?.user ?? null;
}

// ---- users mode: one system account per hub user

export interface SystemAccount {
  /** the system user name, e.g. ngsci-alice */
  name: string;
  uid: number;
  gid: number;
}

const MAX_NAME = 32;
const VALID_NAME = /^[a-z_][a-z0-9_-]*$/;
export const VALID_PREFIX = /^[a-z_][a-z0-9_-]{0,15}$/;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * The system account name for a hub user: the prefix and the name itself when that is a valid,
 * short, lower-case system name; otherwise a cleaned, shortened name with a hash of the real one,
 * so `Alice`, `alice@lab.org` and `a.lice` all get distinct accounts. Which hub user an account
 * belongs to is recorded in its comment and checked on every use (accountComment), so a hub user
 * whose literal name equals another's mapped name cannot take that account over.
 */
export function systemAccountName(hubUser: string, prefix: string): string {
  if (!VALID_PREFIX.test(prefix)) throw new Error(`invalid NGSCI_LOCAL_USER_PREFIX '${prefix}'`);
  const direct = prefix + hubUser;
  if (/^[a-z0-9_-]+$/.test(hubUser) && direct.length <= MAX_NAME) return direct;
  const cleaned = hubUser
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const hash = digest(hubUser).slice(0, 8);
  const room = MAX_NAME - prefix.length - hash.length - 1;
  const stem = cleaned.slice(0, Math.max(0, room)).replace(/-+$/, '');
  const name = stem ? `${prefix}${stem}-${hash}` : `${prefix}${hash}`;
  if (!VALID_NAME.test(name) || name.length > MAX_NAME)
    throw new Error(`could not map '${hubUser}' to a system account name`);
  return name;
}

/** The comment (GECOS) of an account made for a hub user: no ':' or newline may appear there. */
export function accountComment(hubUser: string): string {
  return `ngsci hub user ${digest(hubUser).slice(0, 32)}`;
}

export type CommandRunner = (
  cmd: string,
  args: string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

const execRunner: CommandRunner = (cmd, args) =>
  new Promise((done) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : err.code ? 127 : 1;
      done({ code, stdout, stderr });
    });
  });

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  comment: string;
}

/**
 * Finds or creates the system account of each hub user (`useradd`, as LocalProcessSpawner does)
 * and gives it its home: owned by the account, mode 0700.
 */
export class SystemAccounts {
  private readonly run: CommandRunner;
  /** concurrent starts of one user must not both run useradd */
  private readonly pending = new Map<string, Promise<SystemAccount>>();
  /** account creations one at a time: each picks the next free uid */
  private creating: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly o: { prefix: string; logger: Logger; run?: CommandRunner; shell?: string },
  ) {
    this.run = o.run ?? execRunner;
  }

  nameFor(hubUser: string): string {
    return systemAccountName(hubUser, this.o.prefix);
  }

  async ensure(hubUser: string, home: string): Promise<SystemAccount> {
    const name = this.nameFor(hubUser);
    let p = this.pending.get(name);
    if (!p) {
      p = this.ensureAccount(hubUser, name, home).finally(() => this.pending.delete(name));
      this.pending.set(name, p);
    }
    const account = await p;
    await this.ownHome(account, home);
    return account;
  }

  private async ensureAccount(hubUser: string, name: string, home: string): Promise<SystemAccount> {
    const comment = accountComment(hubUser);
    let entry = await this.lookup(name);
    if (!entry) {
      const created = this.creating.then(() => this.create(hubUser, name, home, comment));
      this.creating = created.catch(() => undefined);
      entry = await created;
    }
    if (entry.comment !== comment) {
      // an account ngsci did not make for this hub user (another user's, or the system's)
      throw new ApiError(
        409,
        'already_exists',
        `the system account '${name}' exists but was not made by ngsci for this user; ` +
          `an admin can set its comment to '${comment}' (usermod -c) if it is theirs, or change NGSCI_LOCAL_USER_PREFIX`,
      );
    }
    if (entry.uid === 0 || entry.gid === 0) {
      throw new ApiError(
        409,
        'already_exists',
        `the system account '${name}' has uid or gid 0; ngsci never runs a user's server as root`,
      );
    }
    return { name, uid: entry.uid, gid: entry.gid };
  }

  /**
   * useradd with a uid chosen so homes keep their owners across a lost passwd file (a re-created
   * container): the uid that owns this user's home if no account has it now, else one above every
   * account's and every home's uid, so a new account never gets a uid that owns someone's home.
   */
  private async create(
    hubUser: string,
    name: string,
    home: string,
    comment: string,
  ): Promise<PasswdEntry> {
    const existing = await this.lookup(name);
    if (existing) return existing;
    const homeOwner = statSync(home, { throwIfNoEntry: false })?.uid;
    let uid: number;
    if (homeOwner && homeOwner >= 1000 && !(await this.lookup(String(homeOwner)))) {
      uid = homeOwner;
    } else {
      const used = [999];
      const all = await this.run('getent', ['passwd']);
      for (const line of all.code === 0 ? all.stdout.split('\n') : []) {
        const u = Number(line.split(':')[2]);
        // 65534 is nobody; system tools allocate regular accounts below 60000
        if (Number.isInteger(u) && u < 60_000) used.push(u);
      }
      const homes = dirname(home);
      for (const e of existsSync(homes) ? readdirSync(homes) : []) {
        const u = statSync(join(homes, e), { throwIfNoEntry: false })?.uid;
        if (u !== undefined && u < 60_000) used.push(u);
      }
      uid = Math.max(...used) + 1;
    }
    const shell = this.o.shell ?? (existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh');
    const res = await this.run('useradd', [
      '--no-create-home',
      '--home-dir',
      home,
      '--shell',
      shell,
      '--comment',
      comment,
      '--uid',
      String(uid),
      '--user-group',
      name,
    ]);
    const entry = await this.lookup(name);
    if (!entry) {
      throw new ApiError(
        500,
        'provision_failed',
        `could not create the system account '${name}' for this user: ${res.stderr.trim() || `useradd exited with ${res.code}`}`,
      );
    }
    this.o.logger.info(
      { user: hubUser, account: name, uid: entry.uid },
      'created a system account',
    );
    return entry;
  }

  private async lookup(name: string): Promise<PasswdEntry | null> {
    const res = await this.run('getent', ['passwd', name]);
    if (res.code !== 0) return null;
    const [n, , uid, gid, comment] = res.stdout.trim().split('\n')[0]!.split(':');
    // a lookup by uid answers with the account's name
    if (!n || (n !== name && !/^\d+$/.test(name)) || uid === undefined || gid === undefined)
      return null;
    return { name: n, uid: Number(uid), gid: Number(gid), comment: comment ?? '' };
  }

  /** The home belongs to the account alone; one left by `shared` mode (root's) is handed over. */
  private async ownHome(account: SystemAccount, home: string): Promise<void> {
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const owner = statSync(home).uid;
    if (owner !== account.uid) {
      // root's (from shared mode) or a uid no account has any more may be handed over
      if (owner !== 0 && owner !== process.getuid?.() && (await this.lookup(String(owner)))) {
        throw new ApiError(
          409,
          'already_exists',
          `the home ${home} belongs to another system account (uid ${owner}), not to '${account.name}'`,
        );
      }
      // -R does not follow symbolic links (chown -P is the default)
      const res = await this.run('chown', ['-R', `${account.uid}:${account.gid}`, home]);
      if (res.code !== 0) {
        throw new ApiError(
          500,
          'provision_failed',
          `could not give ${home} to '${account.name}': ${res.stderr.trim()}`,
        );
      }
    }
    chmodSync(home, 0o700);
  }
}

// ---- users mode: the service's own files

const within = (parent: string, child: string) => {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

/** Resolves a command name through PATH, as spawn would. */
function which(command: string, path: string): string | null {
  if (command.includes(sep)) return existsSync(command) ? resolve(command) : null;
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const full = join(dir, command);
    if (existsSync(full)) return full;
  }
  return null;
}

/** The interpreter a script names on its `#!` line (the venv's python, /bin/sh...), if any. */
function interpreterOf(file: string): string | null {
  try {
    const head = readFileSync(file, { encoding: 'latin1' }).slice(0, 256);
    if (!head.startsWith('#!')) return null;
    const first = head.slice(2).split('\n')[0]!.trim().split(/\s+/)[0];
    return first && isAbsolute(first) ? first : null;
  } catch {
    return null;
  }
}

/**
 * What blocks another account from reaching `target`: a directory on the way that others cannot
 * enter, or the target itself that others cannot read (`need` r) or run (`need` x).
 */
export function unreachable(target: string, need: 'r' | 'x' | 'rx'): string | null {
  let real: string;
  try {
    real = realpathSync(target);
  } catch {
    return `${target} does not exist`;
  }
  const chain: string[] = [];
  for (let d = dirname(real); ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    const mode = statSync(d).mode;
    if (!(mode & 0o001))
      return `${d} (mode ${(mode & 0o777).toString(8)}) is not traversable by other accounts, so ${real} cannot be reached`;
  }
  const mode = statSync(real).mode;
  const bits = (need.includes('r') ? 0o004 : 0) | (need.includes('x') ? 0o001 : 0);
  if ((mode & bits) !== bits)
    return `${real} (mode ${(mode & 0o777).toString(8)}) is not ${need === 'r' ? 'readable' : 'runnable'} by other accounts`;
  return null;
}

/**
 * Readies the machine for `users` isolation, at the service's start: the service must be root;
 * the data dir holds secrets (login file, database, logs, the run dir), so everything in it is
 * made private except the way to the homes; the homes dir may be entered but not listed. Throws
 * naming every problem, e.g. a single-user command that other accounts cannot run (a Python under
 * /root, which is 0700 on most systems).
 */
export function prepareUsersIsolation(o: {
  dataDir: string;
  homesDir: string;
  runDir: string;
  command: string;
  agentCommand?: string;
  datasetPath?: string;
  path: string;
  uid?: number;
}): void {
  const uid = o.uid ?? process.getuid?.();
  if (uid !== 0) {
    throw new Error(
      'NGSCI_LOCAL_ISOLATION=users needs the service to run as root: it creates a system account ' +
        "for each user and starts each user's server as that account. Run it as root, or set " +
        'NGSCI_LOCAL_ISOLATION=shared (one user at most on local instances).',
    );
  }
  const dataDir = resolve(o.dataDir);
  const homesDir = resolve(o.homesDir);
  const runDir = resolve(o.runDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  mkdirSync(homesDir, { recursive: true, mode: 0o711 });
  // paths the accounts need that may lie inside the data dir
  const needed = [homesDir, ...(o.datasetPath ? [resolve(o.datasetPath)] : [])];
  const homesInside = needed.some((p) => within(dataDir, p) && p !== dataDir);
  chmodSync(dataDir, homesInside ? 0o711 : 0o700);
  for (const entry of readdirSync(dataDir)) {
    const full = join(dataDir, entry);
    const st = statSync(full, { throwIfNoEntry: false });
    if (!st) continue;
    if (needed.some((p) => within(full, p))) {
      // on the way to the homes or the dataset: enter only
      if (st.isDirectory() && full !== homesDir) chmodSync(full, (st.mode & 0o777) | 0o001);
      continue;
    }
    chmodSync(full, st.mode & 0o700);
  }
  chmodSync(runDir, 0o700);
  chmodSync(homesDir, 0o711);

  const problems: string[] = [];
  const command = which(o.command, o.path);
  if (!command) problems.push(`the single-user command '${o.command}' was not found`);
  for (const [what, file] of [
    ['the single-user command', command],
    ['the agent command', o.agentCommand ? which(o.agentCommand, o.path) : null],
  ] as const) {
    if (!file) continue;
    const p = unreachable(file, 'rx');
    if (p) problems.push(`${what}: ${p}`);
    const interpreter = interpreterOf(file);
    const q = interpreter ? unreachable(interpreter, 'rx') : null;
    if (q) problems.push(`${what}'s interpreter: ${q}`);
  }
  const h = unreachable(homesDir, 'x');
  if (h) problems.push(`the homes dir: ${h}`);
  if (o.datasetPath && existsSync(o.datasetPath)) {
    const d = unreachable(o.datasetPath, 'rx');
    if (d) problems.push(`the dataset: ${d}`);
  }
  if (problems.length) {
    throw new Error(
      `NGSCI_LOCAL_ISOLATION=users: other system accounts must reach these, and cannot:\n` +
        problems.map((p) => `  - ${p}`).join('\n') +
        '\n(give the directories o+x, or build the Python environment from a system Python, e.g. NGSCI_PYTHON=/usr/bin/python3)',
    );
  }
}
