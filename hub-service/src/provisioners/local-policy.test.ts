import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../errors.js';
import { createLogger } from '../logger.js';
import { harness } from '../testing/harness.js';
import {
  accountComment,
  LocalUserGate,
  prepareUsersIsolation,
  SystemAccounts,
  systemAccountName,
  type CommandRunner,
} from './local-policy.js';

const logger = createLogger('silent');
const mode = (p: string) => statSync(p).mode & 0o777;

describe('system account names', () => {
  test('a plain lower-case hub name maps to prefix + name', () => {
    assert.equal(systemAccountName('alice', 'ngsci-'), 'ngsci-alice');
    assert.equal(systemAccountName('r2-d2_x', 'lab_'), 'lab_r2-d2_x');
  });

  test('names a system would refuse get a cleaned stem and a hash, all distinct and valid', () => {
    const names = ['Alice', 'alice@lab.org', 'a.lice', 'a lice', '@@@', 'ü', 'x'.repeat(60)];
    const mapped = names.map((n) => systemAccountName(n, 'ngsci-'));
    for (const m of mapped) {
      assert.match(m, /^ngsci-[a-z0-9_-]+$/);
      assert.ok(m.length <= 32, m);
    }
    assert.equal(new Set([...mapped, 'ngsci-alice']).size, mapped.length + 1);
    assert.match(systemAccountName('alice@lab.org', 'ngsci-'), /^ngsci-alice-lab-org-[0-9a-f]{8}$/);
    assert.match(systemAccountName('@@@', 'ngsci-'), /^ngsci-[0-9a-f]{8}$/);
    // the same hub name always maps to the same account
    assert.equal(systemAccountName('Alice', 'ngsci-'), systemAccountName('Alice', 'ngsci-'));
  });

  test('an invalid prefix is refused', () => {
    assert.throws(() => systemAccountName('alice', 'Ngsci-'), /NGSCI_LOCAL_USER_PREFIX/);
    assert.throws(() => systemAccountName('alice', ''), /NGSCI_LOCAL_USER_PREFIX/);
  });
});

describe('shared isolation: one user at most', () => {
  const gate = (owner: string | null, o: { demo?: boolean; users?: boolean } = {}) =>
    new LocalUserGate({
      isolation: o.users ? 'users' : 'shared',
      sharedDemo: o.demo ?? false,
      firstLocalUser: async () => owner,
      logger,
    });

  test('the first user and the owner may launch; a second user gets 403 local_single_user', async () => {
    await gate(null).check('bob', 'local');
    await gate('alice').check('alice', 'local');
    const err = await gate('alice')
      .check('bob', 'local')
      .then(() => null)
      .catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 403);
    assert.equal(err.code, 'local_single_user');
    assert.match(err.message, /NGSCI_LOCAL_ISOLATION=users/);
    // the owner's name is not told to another user
    assert.doesNotMatch(err.message, /alice/);
  });

  test('cloud instances, the demo flag and users isolation are not limited', async () => {
    await gate('alice').check('bob', 'aws');
    await gate('alice', { demo: true }).check('bob', 'local');
    await gate('alice', { users: true }).check('bob', 'local');
  });

  test('through the API: a second user launching a local instance gets 403 before the hub is asked', async () => {
    const h = await harness({
      env: { NGSCI_LOCAL_ISOLATION: 'shared', NGSCI_LOCAL_SHARED_DEMO: 'false' },
    });
    try {
      const first = h.token({ name: 'owner1' });
      const second = h.token({ name: 'second1' });
      const launch = (token: string) =>
        h.request('/api/v1/instances', {
          token,
          method: 'POST',
          body: JSON.stringify({ size: 'cpu-small' }),
        });
      // no local provisioner here: the first launch stays requested, which is all this needs
      assert.equal((await launch(first)).status, 202);
      const calls = h.hubCalls.length;
      const res = await launch(second);
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { code: string }).code, 'local_single_user');
      assert.ok(!h.hubCalls.slice(calls).some((c) => c.startsWith('POST /users/second1')));
      const me = (await (await h.request('/api/v1/me', { token: second })).json()) as {
        localIsolation: unknown;
      };
      assert.deepEqual(me.localIsolation, { mode: 'shared', sharedDemo: false });
    } finally {
      await h.close();
    }
  });
});

describe('users isolation: accounts', () => {
  /** A fake passwd database and useradd: the real ones need root and change the machine. */
  function fakeSystem(entries: Record<string, string> = {}) {
    const calls: string[] = [];
    let nextUid = 5000;
    const run: CommandRunner = async (cmd, args) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      if (cmd === 'getent') {
        const key = args[1];
        const found =
          key === undefined
            ? Object.values(entries)
            : Object.values(entries).filter(
                (e) => e.split(':')[0] === key || e.split(':')[2] === key,
              );
        return found.length
          ? { code: 0, stdout: `${found.join('\n')}\n`, stderr: '' }
          : { code: 2, stdout: '', stderr: '' };
      }
      if (cmd === 'useradd') {
        await new Promise((r) => setTimeout(r, 10));
        const name = args.at(-1)!;
        const comment = args[args.indexOf('--comment') + 1];
        const home = args[args.indexOf('--home-dir') + 1];
        if (entries[name]) return { code: 9, stdout: '', stderr: 'user exists' };
        const uid = args.includes('--uid') ? Number(args[args.indexOf('--uid') + 1]) : ++nextUid;
        entries[name] = `${name}:x:${uid}:${uid}:${comment}:${home}:/bin/sh`;
        return { code: 0, stdout: '', stderr: '' };
      }
      return { code: 0, stdout: '', stderr: '' }; // chown
    };
    return { run, calls, entries };
  }
  const homes = mkdtempSync(join(tmpdir(), 'ngsci-policy-'));

  test('creates a missing account once, even for concurrent starts, and gives it its home 0700', async () => {
    const sys = fakeSystem();
    const accounts = new SystemAccounts({ prefix: 'ngsci-', logger, run: sys.run });
    const home = join(homes, 'alice');
    const [a, b] = await Promise.all([
      accounts.ensure('alice', home),
      accounts.ensure('alice', home),
    ]);
    assert.deepEqual(a, b);
    assert.equal(a.name, 'ngsci-alice');
    assert.equal(sys.calls.filter((c) => c.startsWith('useradd')).length, 1);
    assert.ok(sys.calls.includes(`chown -R ${a.uid}:${a.gid} ${home}`));
    assert.equal(mode(home), 0o700);
  });

  test('homes keep their owners when the accounts are lost (a re-created container)', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ngsci-uids-'));
    mkdirSync(join(base, 'bob'));
    mkdirSync(join(base, 'carol'));
    // bob's and carol's homes outlived their accounts: uids 1001 and 1003 have no account now
    chownSync(join(base, 'bob'), 1001, 1001);
    chownSync(join(base, 'carol'), 1003, 1003);
    const sys = fakeSystem({ other: 'other:x:1000:1000::/home/other:/bin/sh' });
    const accounts = new SystemAccounts({ prefix: 'ngsci-', logger, run: sys.run });
    const dave = await accounts.ensure('dave', join(base, 'dave'));
    assert.equal(dave.uid, 1004, "a new account takes no uid that owns someone's home");
    const bob = await accounts.ensure('bob', join(base, 'bob'));
    assert.equal(bob.uid, 1001, 'bob gets the uid that owns his home back');
    assert.ok(!sys.calls.some((c) => c.startsWith(`chown -R 1001`)), 'nothing to hand over');
  });

  test('refuses an account ngsci did not make for this user, and one with uid 0', async () => {
    const sys = fakeSystem({
      // a hub user literally named like another's hashed account name made it first
      'ngsci-alice': `ngsci-alice:x:3000:3000:${accountComment('someone-else')}:/h:/bin/sh`,
      'ngsci-root': `ngsci-root:x:0:0:${accountComment('root')}:/root:/bin/sh`,
    });
    const accounts = new SystemAccounts({ prefix: 'ngsci-', logger, run: sys.run });
    await assert.rejects(accounts.ensure('alice', join(homes, 'a2')), /not made by ngsci/);
    await assert.rejects(accounts.ensure('root', join(homes, 'r')), /uid or gid 0/);
    assert.ok(!sys.calls.some((c) => c.startsWith('useradd')));
  });
});

describe('users isolation: the service’s files', () => {
  test('needs root', () => {
    assert.throws(
      () =>
        prepareUsersIsolation({
          dataDir: '/nonexistent',
          homesDir: '/nonexistent/homes',
          runDir: '/nonexistent/run',
          command: '/bin/sh',
          path: '',
          uid: 1000,
        }),
      /needs the service to run as root/,
    );
  });

  test('makes the data dir private except the way to the homes, and names what accounts cannot reach', () => {
    const base = mkdtempSync(join(tmpdir(), 'ngsci-prep-'));
    chmodSync(base, 0o755);
    const dataDir = join(base, 'data');
    mkdirSync(join(dataDir, 'pglite'), { recursive: true, mode: 0o755 });
    writeFileSync(join(dataDir, 'local-login.json'), '{}', { mode: 0o644 });
    writeFileSync(join(dataDir, 'stack.log'), '', { mode: 0o644 });
    const opts = {
      dataDir,
      homesDir: join(dataDir, 'homes'),
      runDir: join(dataDir, 'run'),
      command: '/bin/sh',
      path: '',
      uid: 0,
    };
    prepareUsersIsolation(opts);
    assert.equal(mode(dataDir), 0o711);
    assert.equal(mode(join(dataDir, 'pglite')), 0o700);
    assert.equal(mode(join(dataDir, 'local-login.json')), 0o600);
    assert.equal(mode(join(dataDir, 'stack.log')), 0o600);
    assert.equal(mode(join(dataDir, 'run')), 0o700);
    assert.equal(mode(join(dataDir, 'homes')), 0o711);

    // a command (or its interpreter) behind a directory others cannot enter is named
    const hidden = join(base, 'private');
    mkdirSync(hidden, { mode: 0o700 });
    writeFileSync(join(hidden, 'python3'), '', { mode: 0o755 });
    writeFileSync(join(base, 'singleuser'), `#!${join(hidden, 'python3')}\n`, { mode: 0o755 });
    assert.throws(
      () => prepareUsersIsolation({ ...opts, command: join(base, 'singleuser') }),
      (e: Error) =>
        e.message.includes(`interpreter: ${hidden} (mode 700) is not traversable`) &&
        e.message.includes('NGSCI_PYTHON'),
    );
  });
});
