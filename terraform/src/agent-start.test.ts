/**
 * What the agent starts with on a cloud VM, run for real in a scratch root: the bootstrap answer
 * is split by the user-data's bootstrap-json.py, then the ngsci-agent unit's ExecStart is run as
 * systemd would (its EnvironmentFile, through with-env.py) with TEST DOUBLES of `docker` and of
 * the pip venv's `ngsci`, which record what they were given. At a spot notice the agent saves the
 * kernel variables through its server's HTTP API with the server's own token (cli/src/agent
 * jupyter.ts), so it must have that token (JUPYTERHUB_API_TOKEN, at run time from the boot answer
 * in /run, never in argv or user-data), the server's URL, and, in docker, the host network to
 * reach the server's published port on loopback. It has no home mount, so no kernel connection
 * file could be used instead.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_ENV, renderUserData } from './cloud-init.js';
import type { Cloud } from './options.js';
import { synthInstance } from './synth.js';
import { options, userData } from './test-fixtures.js';

const HUB_TOKEN = 'server-hub-token-TEST-DOUBLE-7d3c';
const AGENT = 'ngsa_TEST-DOUBLE-agent-credential-4242';
const SERVER_URL = 'http://0.0.0.0:8888/user/alice/';
const LIB = '/usr/local/lib/ngsci';
const ENV_JSON = '/run/ngsci/env.json';

const scratch = mkdtempSync(join(tmpdir(), 'ngsci-agent-start-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Doc {
  write_files: { path: string; content: string; permissions: string }[];
}

const parse = (ud: string): Doc =>
  // a Terraform reference (the home disk's id) holds raw quotes until Terraform renders it
  JSON.parse(ud.replace(/^#cloud-config\n/, '').replace(/\$\{[^}]*\}/g, 'X')) as Doc;

function file(doc: Doc, path: string): string {
  const f = doc.write_files.find((w) => w.path === path);
  assert.ok(f, `${path} is in the user-data`);
  return f.content;
}

const unitLine = (unit: string, key: string) =>
  unit
    .split('\n')
    .find((l) => l.startsWith(`${key}=`))
    ?.slice(key.length + 1);

/** systemd's EnvironmentFile: KEY=VALUE lines. */
const envFile = (text: string): Record<string, string> =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

/** A TEST DOUBLE command that writes its argv and environment to <name>.json beside it. */
function recorder(dir: string, name: string): string {
  const p = join(dir, name);
  writeFileSync(
    p,
    `#!/usr/bin/env python3\nimport json, os, sys\njson.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, open(${JSON.stringify(`${p}.json`)}, "w"))\n`,
  );
  chmodSync(p, 0o755);
  return p;
}

interface Started {
  /** the agent's command line (docker: the container's command, after the image) */
  argv: string[];
  /** the agent's environment (docker: the container's, from --env-file and -e NAME) */
  env: Record<string, string>;
  /** docker only: docker run's own options */
  dockerArgs: string[];
  singleuserExec: string;
  ud: string;
}

/**
 * Boots the agent's side of the machine in a scratch root: the bootstrap answer split as on the
 * machine, then the agent unit's ExecStart with the TEST DOUBLES in place of docker and the venv.
 */
function startAgent(ud: string, cloud: Cloud): Started {
  const doc = parse(ud);
  const root = mkdtempSync(join(scratch, `${cloud}-`));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  mkdirSync(join(root, 'run'));

  // the bootstrap answer, split by the machine's own script
  writeFileSync(join(root, 'bootstrap-json.py'), file(doc, `${LIB}/bootstrap-json.py`));
  writeFileSync(
    join(root, 'answer.json'),
    JSON.stringify({
      env: {
        JUPYTERHUB_API_TOKEN: HUB_TOKEN,
        JUPYTERHUB_API_URL: 'https://hub.example.org/hub/api',
        JUPYTERHUB_SERVICE_URL: SERVER_URL,
        NGSCI_API_URL: 'https://hub.example.org/services/ngsci/api/v1',
      },
      agentToken: AGENT,
    }),
  );
  const split = spawnSync(
    'python3',
    [
      join(root, 'bootstrap-json.py'),
      'split',
      join(root, 'answer.json'),
      join(root, 'run/env.json'),
      join(root, 'agent.env'),
    ],
    {
      env: { PATH: process.env.PATH, NGSCI_INSTANCE_ID: 'i-1', NGSCI_CLOUD: cloud },
      encoding: 'utf8',
    },
  );
  assert.equal(split.status, 0, split.stderr);

  // with-env.py as installed, reading the scratch root's /run
  const withEnv = file(doc, `${LIB}/with-env.py`);
  assert.equal(withEnv.split(ENV_JSON).length, 2, 'with-env.py reads the boot answer from /run');
  writeFileSync(join(root, 'with-env.py'), withEnv.replace(ENV_JSON, join(root, 'run/env.json')));

  const unit = file(doc, '/etc/systemd/system/ngsci-agent.service');
  assert.equal(unitLine(unit, 'User'), 'root');
  assert.equal(unitLine(unit, 'EnvironmentFile'), AGENT_ENV);
  const exec = unitLine(unit, 'ExecStart') ?? '';
  const docker = recorder(bin, 'docker');
  const ngsci = recorder(bin, 'ngsci');
  const argv = exec
    .replace(`${LIB}/with-env.py`, join(root, 'with-env.py'))
    .replace('/usr/bin/docker ', `${docker} `)
    .replace('/opt/ngsci/venv/bin/ngsci ', `${ngsci} `)
    .replace(`--env-file ${AGENT_ENV}`, `--env-file ${join(root, 'agent.env')}`)
    .split(' ');
  assert.equal(argv[0], '/usr/bin/python3');
  const systemdEnv = envFile(readFileSync(join(root, 'agent.env'), 'utf8'));
  const ran = spawnSync('python3', argv.slice(1), {
    env: { PATH: process.env.PATH, ...systemdEnv },
    encoding: 'utf8',
  });
  assert.equal(ran.status, 0, ran.stderr);

  const singleuserExec =
    unitLine(file(doc, '/etc/systemd/system/ngsci-singleuser.service'), 'ExecStart') ?? '';
  const recorded = (p: string) =>
    JSON.parse(readFileSync(`${p}.json`, 'utf8')) as {
      argv: string[];
      env: Record<string, string>;
    };
  if (exec.includes('/usr/bin/docker ')) {
    const r = recorded(docker);
    // docker run [options] IMAGE COMMAND...: the image is the first word after the options
    const args = r.argv;
    const takesValue = new Set([
      '--name',
      '--user',
      '--network',
      '--env-file',
      '-e',
      '-v',
      '--gpus',
    ]);
    let i = 1;
    while (i < args.length && args[i]!.startsWith('-')) i += takesValue.has(args[i]!) ? 2 : 1;
    const env: Record<string, string> = {};
    for (let k = 1; k < i; k++) {
      if (args[k] === '--env-file') Object.assign(env, envFile(readFileSync(args[k + 1]!, 'utf8')));
      if (args[k] === '-e') {
        const name = args[k + 1]!;
        if (name in r.env) env[name] = r.env[name]!;
      }
    }
    return { argv: args.slice(i + 1), env, dockerArgs: args.slice(0, i + 1), singleuserExec, ud };
  }
  const r = recorded(ngsci);
  return { argv: ['ngsci', ...r.argv], env: r.env, dockerArgs: [], singleuserExec, ud };
}

function assertCanSave(s: Started, what: string) {
  assert.deepEqual(s.argv, ['ngsci', 'agent'], `${what}: ngsci agent`);
  assert.equal(s.env.JUPYTERHUB_API_TOKEN, HUB_TOKEN, `${what}: the server's token`);
  assert.equal(s.env.JUPYTERHUB_SERVICE_URL, SERVER_URL, `${what}: the server's URL`);
  assert.equal(s.env.NGSCI_AGENT_TOKEN, AGENT, `${what}: its own credential`);
  for (const a of [...s.argv, ...s.dockerArgs]) {
    assert.ok(!a.includes(HUB_TOKEN), `${what}: the server's token is not in argv`);
    assert.ok(!a.includes(AGENT), `${what}: the agent credential is not in argv`);
  }
  assert.ok(!s.ud.includes(HUB_TOKEN) && !s.ud.includes(AGENT), `${what}: nor in user-data`);
  // the server listens on the port its URL names, on every interface: 127.0.0.1 reaches it
  const port = new URL(SERVER_URL).port;
  assert.match(s.singleuserExec, new RegExp(`--ip=0\\.0\\.0\\.0 --port=${port}\\b`));
}

describe("the agent on a VM starts with what saving the kernels' variables takes", () => {
  for (const cloud of ['aws', 'gcp', 'azure'] as Cloud[]) {
    it(`${cloud}, docker: the server's token and URL in the agent's container, on the host network where the server's port is published; no home mount`, () => {
      const s = startAgent(userData(synthInstance(options(cloud, 'gpu'))), cloud);
      assertCanSave(s, `${cloud} docker`);
      const d = s.dockerArgs.join(' ');
      assert.match(d, /--network host\b/, 'the host network: loopback is the machine');
      assert.match(d, /-e JUPYTERHUB_API_TOKEN\b/, 'forwarded by name, its value never in argv');
      assert.doesNotMatch(d, /-v \/home\//, 'no home: no kernel connection file to use');
      assert.match(s.singleuserExec, /-p 8888:8888\b/, "the server's port published on the host");
    });
  }

  it("pip: the venv's agent as root gets the server's token and URL from the boot answer", () => {
    const ud = renderUserData({
      cloud: 'gcp',
      instanceId: 'i-1',
      serviceUrl: 'https://hub.example.org/services/ngsci',
      bootstrapToken: 'ngb_TEST-DOUBLE-bootstrap-token-0123456789',
      singleuserPort: 8888,
      image: { kind: 'pip', spec: 'jupyterhub ngsci-magic' },
      gpu: false,
      homeDevices: ['/dev/sdb'],
      dataset: null,
    });
    assertCanSave(startAgent(ud, 'gcp'), 'pip');
  });
});
