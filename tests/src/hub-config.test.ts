/**
 * deploy/jupyterhub_config.py's login and TLS settings, read the way JupyterHub reads the file
 * (executed with a `get_config()` of its own) but without starting a hub: the local password
 * login refuses to load without NGSCI_DEMO=1, an OAuth login is configured from its settings
 * (groups, admin groups, allowed groups) and keeps its secrets out of the service's environment,
 * and TLS makes cookies Secure and pages HSTS. The real login and TLS run in oidc.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './stack.js';

const PYTHON = join(ROOT, '.venv', 'bin', 'python');
const CONFIG = join(ROOT, 'deploy', 'jupyterhub_config.py');

/**
 * Loads the config file once per scenario (a JSON list of environments on stdin) in one Python
 * process, so JupyterHub is imported once, and prints what these tests look at, as JSON.
 */
const LOADER = `
import io, json, os, sys
from traitlets.config import Config

# what GitHub's API says of a user's teams (the fields the config reads)
TEAMS = {"teams": [
    {"slug": "physics", "organization": {"login": "my-lab"}},
    {"slug": "ngsci-admins", "organization": {"login": "my-lab"}},
]}

def value(v, empty):
    return v.get_value(empty) if hasattr(v, "get_value") else v

def load(path):
    c = Config()
    exec(compile(open(path).read(), path, "exec"), {"get_config": lambda: c, "__file__": path})
    hub = c.JupyterHub
    auth = c.OAuthenticator
    service = next(s for s in value(hub.services, []) if s["name"] == "ngsci")
    roles = {r["name"]: r for r in value(hub.load_roles, [])}
    cls = hub.authenticator_class
    groups_key = auth.get("auth_state_groups_key")
    return {
        "authenticator": cls if isinstance(cls, str) else cls.__name__,
        "manage_groups": auth.get("manage_groups"),
        "groups_key": "callable" if callable(groups_key) else groups_key,
        "team_groups": groups_key(TEAMS) if callable(groups_key) else None,
        "github_teams": c.GitHubOAuthenticator.get("populate_teams_in_auth_state"),
        "allowed_groups": sorted(auth.get("allowed_groups", [])),
        "admin_groups": sorted(auth.get("admin_groups", [])),
        "admin_users": sorted(auth.get("admin_users", [])),
        "callback": auth.get("oauth_callback_url"),
        "scope": c.GenericOAuthenticator.get("scope"),
        "oauth_scope": auth.get("scope"),
        "ngsci_admin_groups": roles["ngsci-admin"].get("groups", []),
        "service_env": sorted(service.get("environment", {})),
        "ssl_cert": hub.get("ssl_cert"),
        "public_url": hub.get("public_url"),
        "tornado_settings": hub.get("tornado_settings"),
    }

results = []
real_stderr = sys.stderr
for env in json.load(sys.stdin):
    os.environ.clear()
    os.environ.update(env)
    sys.stderr = io.StringIO()
    try:
        results.append({"code": 0, "out": load(sys.argv[1])})
    except SystemExit as e:
        results.append({"code": e.code, "out": None})
    except Exception as e:
        results.append({"code": 1, "out": None, "exception": repr(e)})
    results[-1]["err"] = sys.stderr.getvalue() + results[-1].pop("exception", "")
    sys.stderr = real_stderr
print(json.dumps(results))
`;

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Loaded {
  authenticator: string;
  manage_groups: boolean | null;
  groups_key: string | null;
  team_groups: string[] | null;
  github_teams: boolean | null;
  allowed_groups: string[];
  admin_groups: string[];
  admin_users: string[];
  callback: string | null;
  scope: string[] | null;
  oauth_scope: string[] | null;
  ngsci_admin_groups: string[];
  service_env: string[];
  ssl_cert: string | null;
  public_url: string | null;
  tornado_settings: {
    cookie_options?: { secure?: boolean };
    headers?: Record<string, string>;
  } | null;
}

interface Result {
  code: number;
  out: Loaded | null;
  err: string;
}

/** The config loaded in each of `envs` (plus what every load needs), in one Python process. */
function loadAll(envs: Record<string, string>[]): Result[] {
  const full = envs.map((env) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ngsci-hubconfig-'));
    dirs.push(dataDir);
    return {
      PATH: process.env.PATH ?? '',
      NGSCI_ROOT: ROOT,
      NGSCI_DATA_DIR: dataDir,
      NGSCI_BRIDGE_SECRET: 'b'.repeat(40),
      ...env,
    };
  });
  const res = spawnSync(PYTHON, ['-c', LOADER, CONFIG], {
    input: JSON.stringify(full),
    encoding: 'utf8',
  });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout.trim().split('\n').at(-1)!) as Result[];
}

const OAUTH = {
  NGSCI_AUTHENTICATOR: 'generic-oauth',
  OAUTH_CLIENT_ID: 'hub',
  OAUTH_CLIENT_SECRET: 'client-secret-value',
  OAUTH2_AUTHORIZE_URL: 'https://idp.example.org/auth',
  OAUTH2_TOKEN_URL: 'https://idp.example.org/token',
  OAUTH2_USERDATA_URL: 'https://idp.example.org/userinfo',
};

const certDir = mkdtempSync(join(tmpdir(), 'ngsci-hubconfig-'));
dirs.push(certDir);
const CERT = join(certDir, 'hub.crt');
writeFileSync(CERT, 'not read here: oidc.test.ts serves a real certificate');

/** Every environment the tests below look at, loaded together in `before`. */
const SCENARIOS = {
  plain: {},
  demo: { NGSCI_DEMO: '1' },
  noClientId: { ...OAUTH, OAUTH_CLIENT_ID: '' },
  noClientSecret: { ...OAUTH, OAUTH_CLIENT_SECRET: '' },
  noTokenUrl: { ...OAUTH, OAUTH2_TOKEN_URL: '' },
  adminGroupsWithoutKey: { ...OAUTH, NGSCI_ADMIN_GROUPS: 'admins' },
  unknownAuthenticator: { ...OAUTH, NGSCI_AUTHENTICATOR: 'pam' },
  groups: {
    ...OAUTH,
    NGSCI_OAUTH_GROUPS_KEY: 'oauth_user.groups',
    NGSCI_OAUTH_ALLOWED_GROUPS: 'physics, chemistry',
    NGSCI_ADMIN_GROUPS: 'ngsci-admins',
    NGSCI_OAUTH_SCOPE: 'openid profile groups',
  },
  githubTeams: {
    NGSCI_AUTHENTICATOR: 'github',
    OAUTH_CLIENT_ID: 'hub',
    OAUTH_CLIENT_SECRET: 'client-secret-value',
    NGSCI_OAUTH_GROUPS_KEY: 'teams',
    NGSCI_ADMIN_GROUPS: 'my-lab:ngsci-admins',
  },
  terminator: {
    ...OAUTH,
    NGSCI_OAUTH_ALLOW_ALL: '1',
    NGSCI_HUB_PUBLIC_URL: 'https://hub.example.org/',
  },
  certAlone: { NGSCI_DEMO: '1', NGSCI_HUB_SSL_CERT: CERT },
  keyMissing: {
    NGSCI_DEMO: '1',
    NGSCI_HUB_SSL_CERT: CERT,
    NGSCI_HUB_SSL_KEY: join(certDir, 'missing.key'),
  },
  badPublicUrl: { NGSCI_DEMO: '1', NGSCI_HUB_PUBLIC_URL: 'hub.example.org' },
} satisfies Record<string, Record<string, string>>;

let results: Record<keyof typeof SCENARIOS, Result>;
before(() => {
  const names = Object.keys(SCENARIOS) as (keyof typeof SCENARIOS)[];
  const loaded = loadAll(names.map((n) => SCENARIOS[n]));
  results = Object.fromEntries(names.map((n, i) => [n, loaded[i]!])) as typeof results;
});

/** A scenario that loaded: what the config holds. */
function loaded(name: keyof typeof SCENARIOS): Loaded {
  const r = results[name];
  assert.equal(r.code, 0, `${name}: ${r.err}`);
  return r.out!;
}

/** A scenario the config refused: its exit code is 2 and the message matches. */
function refused(name: keyof typeof SCENARIOS, message: RegExp): void {
  const r = results[name];
  assert.equal(r.code, 2, `${name}: ${r.err}`);
  assert.match(r.err, message);
}

describe('deploy/jupyterhub_config.py: the login', () => {
  test('the local password login refuses to load without NGSCI_DEMO=1, naming the setting', () => {
    refused('plain', /NGSCI_DEMO=1/);
    refused('plain', /NGSCI_AUTHENTICATOR=generic-oauth/);
    const demo = loaded('demo');
    assert.equal(demo.authenticator, 'LocalLoginAuthenticator');
    assert.ok(!demo.service_env.includes('NGSCI_DEMO'));
  });

  test('an OAuth login needs its client settings, each named when missing', () => {
    refused('noClientId', /needs OAUTH_CLIENT_ID/);
    refused('noClientSecret', /needs OAUTH_CLIENT_SECRET/);
    refused('noTokenUrl', /needs OAUTH2_TOKEN_URL/);
    refused('adminGroupsWithoutKey', /NGSCI_OAUTH_GROUPS_KEY/);
    refused('unknownAuthenticator', /NGSCI_AUTHENTICATOR must be local or one of .*generic-oauth/);
  });

  test("the provider's groups become hub groups; the admin group holds ngsci's admin role", () => {
    const out = loaded('groups');
    assert.equal(out.authenticator, 'generic-oauth');
    assert.equal(out.manage_groups, true);
    assert.equal(out.groups_key, 'oauth_user.groups');
    assert.deepEqual(out.allowed_groups, ['chemistry', 'physics']);
    assert.deepEqual(out.admin_groups, ['ngsci-admins']);
    assert.deepEqual(out.ngsci_admin_groups, ['ngsci-admins']);
    // with a real login nobody is an admin by name unless NGSCI_ADMINS says so
    assert.deepEqual(out.admin_users, []);
    assert.deepEqual(out.scope, ['openid', 'profile', 'groups']);
    // the provider's settings stay with the hub: none reaches the service's environment
    assert.ok(
      !out.service_env.some((k) => /OAUTH|NGSCI_AUTHENTICATOR|NGSCI_ADMIN_GROUPS/.test(k)),
      out.service_env.join(' '),
    );
    assert.equal(out.tornado_settings, null, 'no Secure-only cookies over plain http');
  });

  test("GitHub's teams become hub groups named <organization>:<team>", () => {
    const out = loaded('githubTeams');
    assert.equal(out.authenticator, 'github');
    assert.equal(out.github_teams, true);
    assert.equal(out.groups_key, 'callable');
    assert.deepEqual(out.team_groups, ['my-lab:physics', 'my-lab:ngsci-admins']);
    assert.deepEqual(out.admin_groups, ['my-lab:ngsci-admins']);
    assert.deepEqual(out.oauth_scope, ['read:org']);
  });
});

describe('deploy/jupyterhub_config.py: TLS', () => {
  test('behind a TLS terminator: the callback, Secure cookies and HSTS follow the https address', () => {
    const out = loaded('terminator');
    assert.equal(out.public_url, 'https://hub.example.org/');
    assert.equal(out.callback, 'https://hub.example.org/hub/oauth_callback');
    assert.deepEqual(out.tornado_settings, {
      cookie_options: { secure: true },
      headers: { 'Strict-Transport-Security': 'max-age=31536000' },
    });
  });

  test("the hub's own certificate needs both files, which must exist; the address is checked", () => {
    refused('certAlone', /NGSCI_HUB_SSL_CERT and NGSCI_HUB_SSL_KEY go together/);
    refused('keyMissing', /NGSCI_HUB_SSL_KEY=.*is not a readable file/);
    refused('badPublicUrl', /NGSCI_HUB_PUBLIC_URL must be/);
  });
});
