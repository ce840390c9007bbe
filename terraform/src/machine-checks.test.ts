/**
 * What a machine does between the bootstrap exchange and its server, run for real with bash,
 * curl and python3 in a scratch root:
 * - check.sh against a TEST DOUBLE of hub-service and the hub (a tiny HTTP server here) and TEST
 *   DOUBLES of `docker`, `nvidia-smi` and `setpriv` (no GPU and no docker daemon in CI): it
 *   reports `ready` only when the notebook account is unprivileged, the hub answers, the GPU is
 *   visible where the notebook runs and the image has the agent, and otherwise the exact failure;
 * - firewall.sh with the real iptables, in a network namespace of its own, against a listener on
 *   the metadata address: the notebook's uid is refused, root is not;
 * - mount.sh with a real ext4 file system on a loop device, in a mount namespace of its own: a
 *   grown disk's file system is grown, and a home of the old uid 1000 is handed over.
 * The last two need root, unshare, iptables and losetup; without them they are skipped, saying so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NOTEBOOK_UID, renderUserData, type CloudInitOptions } from './cloud-init.js';

const AGENT = 'ngsa_TEST-DOUBLE-agent-credential-0123456789';
const IMAGE = 'ghcr.io/example/ngsci-singleuser:cuda';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** TEST DOUBLE of hub-service's boot report endpoint and of the hub's `GET /hub/api/`. */
const seen: Seen[] = [];
let hubAnswer = { status: 200, type: 'application/json', body: '{"version": "5.3.0"}' };
const doubles = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    if (req.url === '/hub/api/') {
      res.writeHead(hubAnswer.status, { 'content-type': hubAnswer.type });
      return res.end(hubAnswer.body);
    }
    res.writeHead(req.url === '/services/ngsci/api/v1/agent/boot' ? 202 : 404);
    res.end('{"ok":true}');
  });
});
const base = () => `http://127.0.0.1:${(doubles.address() as AddressInfo).port}`;
before(() => new Promise<void>((r) => doubles.listen(0, '127.0.0.1', r)));
after(() => doubles.close());

const scratch = mkdtempSync(join(tmpdir(), 'ngsci-machine-checks-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function writeExec(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

interface Machine {
  /** passwd lines after root's; the default: ubuntu holds 1000, jovyan is the notebook account */
  passwd?: string[];
  group?: string[];
  sudoers?: Record<string, string>;
  /** what the TEST DOUBLE nvidia-smi lists */
  gpu?: 'visible' | 'none';
  agent?: 'present' | 'missing';
  hubUrl?: string;
}

const PASSWD = [
  'ubuntu:x:1000:1000::/home/ubuntu:/bin/bash',
  `jovyan:x:${NOTEBOOK_UID}:100::/home/jovyan:/bin/bash`,
];
const GROUP = ['root:x:0:', 'sudo:x:27:ubuntu', 'users:x:100:', 'ubuntu:x:1000:'];

/**
 * A machine after the bootstrap exchange: the user-data's files under a fresh root, the server's
 * environment and the agent's credential in place, and the TEST DOUBLE commands on PATH.
 */
function machine(extra: Partial<CloudInitOptions>, m: Machine = {}): { root: string; bin: string } {
  const root = mkdtempSync(join(scratch, 'm-'));
  const ud = renderUserData({
    cloud: 'aws',
    instanceId: '11111111-2222-3333-4444-555555555555',
    serviceUrl: `${base()}/services/ngsci`,
    bootstrapToken: 'ngb_spent',
    singleuserPort: 8888,
    image: { kind: 'docker', ref: IMAGE },
    gpu: true,
    homeDevices: ['/dev/sdb'],
    dataset: null,
    allowHttp: true,
    ...extra,
  });
  const doc = JSON.parse(ud.replace(/^#cloud-config\n/, '')) as {
    write_files: { path: string; content: string; permissions: string }[];
  };
  for (const f of doc.write_files) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true });
    writeFileSync(join(root, f.path), f.content, { mode: Number.parseInt(f.permissions, 8) });
  }
  mkdirSync(join(root, 'run/ngsci'), { recursive: true });
  const hub = m.hubUrl ?? `${base()}/hub/api`;
  writeFileSync(
    join(root, 'run/ngsci/env.json'),
    JSON.stringify({ env: { JUPYTERHUB_API_URL: hub } }),
  );
  writeFileSync(join(root, 'etc/ngsci/agent.env'), `NGSCI_AGENT_TOKEN=${AGENT}\n`, { mode: 0o600 });
  writeFileSync(
    join(root, 'etc/passwd'),
    ['root:x:0:0::/root:/bin/bash', ...(m.passwd ?? PASSWD)].join('\n') + '\n',
  );
  writeFileSync(join(root, 'etc/group'), (m.group ?? GROUP).join('\n') + '\n');
  writeFileSync(join(root, 'etc/sudoers'), '#includedir /etc/sudoers.d\n%sudo ALL=(ALL:ALL) ALL\n');
  for (const [name, text] of Object.entries(m.sudoers ?? {})) {
    mkdirSync(join(root, 'etc/sudoers.d'), { recursive: true });
    writeFileSync(join(root, 'etc/sudoers.d', name), text);
  }

  // TEST DOUBLES: docker, nvidia-smi and setpriv log their argv and answer like the real ones
  const bin = join(root, 'test-double-bin');
  const log = join(root, 'test-double.log');
  const gpuLine =
    m.gpu === 'none'
      ? 'echo "No devices were found"; exit 6'
      : 'echo "GPU 0: Tesla T4 (UUID: GPU-00000000-test-double)"';
  const agentHelp =
    m.agent === 'missing'
      ? 'echo "exec: \\"ngsci\\": executable file not found in $PATH" >&2; exit 127'
      : 'echo "Usage: ngsci agent [options]"';
  writeExec(
    join(bin, 'docker'),
    [
      '#!/bin/bash',
      `echo "docker $*" >> ${log}`,
      'case " $* " in',
      `  *" --entrypoint nvidia-smi "*) ${gpuLine} ;;`,
      `  *" --entrypoint ngsci "*) ${agentHelp} ;;`,
      '  *) exit 125 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  writeExec(
    join(bin, 'nvidia-smi'),
    ['#!/bin/bash', `echo "nvidia-smi $*" >> ${log}`, gpuLine, ''].join('\n'),
  );
  writeExec(
    join(bin, 'setpriv'),
    [
      '#!/bin/bash',
      `echo "setpriv $*" >> ${log}`,
      'while [[ "$1" == --* ]]; do shift; done',
      'exec "$@"',
      '',
    ].join('\n'),
  );
  if (m.agent !== 'missing')
    writeExec(
      join(root, 'opt/ngsci/venv/bin/ngsci'),
      '#!/bin/bash\necho "Usage: ngsci agent [options]"\n',
    );
  return { root, bin };
}

function run(
  root: string,
  script: string,
  pathFirst?: string,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [join(root, 'usr/local/lib/ngsci', script)], {
      env: {
        PATH: `${pathFirst ? `${pathFirst}:` : ''}${process.env.PATH ?? '/usr/bin:/bin'}`,
        NGSCI_TEST_ROOT: root,
        NGSCI_TEST_RETRY_SECONDS: '0',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** What check.sh reported to the service double, in order. */
async function check(root: string, bin: string) {
  const from = seen.length;
  const r = await run(root, 'check.sh', bin);
  const reports = seen
    .slice(from)
    .filter((s) => s.url.endsWith('/agent/boot'))
    .map((s) => {
      assert.equal(s.headers.authorization, `Bearer ${AGENT}`, 'with the agent credential');
      return JSON.parse(s.body) as { stage: string; code?: string; message?: string };
    });
  const log = (() => {
    try {
      return spawnSync('cat', [join(root, 'test-double.log')]).stdout.toString();
    } catch {
      return '';
    }
  })();
  return { ...r, reports, log };
}

describe('check.sh: the machine checks before the server starts', () => {
  it('docker, GPU size: reports ready after nvidia-smi saw the GPU inside the image as the notebook account and the image ran the agent', async () => {
    const { root, bin } = machine({});
    const r = await check(root, bin);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.reports, [{ stage: 'ready' }]);
    assert.match(
      r.log,
      new RegExp(
        `docker run --rm --gpus all --network none --user ${NOTEBOOK_UID}:100 --entrypoint nvidia-smi ${IMAGE} -L`,
      ),
    );
    assert.match(
      r.log,
      new RegExp(`docker run --rm --network none --entrypoint ngsci ${IMAGE} agent --help`),
    );
  });

  it('a GPU the container cannot see fails the boot with gpu_unavailable and what nvidia-smi said', async () => {
    const { root, bin } = machine({}, { gpu: 'none' });
    const r = await check(root, bin);
    assert.equal(r.code, 1);
    assert.deepEqual(r.reports, [
      {
        stage: 'failed',
        code: 'gpu_unavailable',
        message: `nvidia-smi -L inside ${IMAGE} listed no GPU: No devices were found`,
      },
    ]);
  });

  it('an image without the agent fails with agent_missing', async () => {
    const { root, bin } = machine({ gpu: false }, { agent: 'missing' });
    const r = await check(root, bin);
    assert.equal(r.code, 1);
    assert.equal(r.reports[0]?.code, 'agent_missing');
    assert.match(
      r.reports[0]?.message ?? '',
      /^ngsci agent --help failed inside .*executable file not found/,
    );
    assert.doesNotMatch(r.log, /nvidia-smi/, 'a CPU size does not look for a GPU');
  });

  it('a hub API the machine cannot reach, or that is not JupyterHub, fails with hub_unreachable naming the URL (and the loopback trap)', async () => {
    const loop = machine({}, { hubUrl: 'http://127.0.0.1:1/hub/api' });
    const r1 = await check(loop.root, loop.bin);
    assert.equal(r1.code, 1);
    assert.equal(r1.reports[0]?.code, 'hub_unreachable');
    assert.match(
      r1.reports[0]?.message ?? '',
      /^GET http:\/\/127\.0\.0\.1:1\/hub\/api\/ did not answer/,
    );
    assert.match(r1.reports[0]?.message ?? '', /loopback address/);

    hubAnswer = { status: 200, type: 'text/html', body: '<html>a login page</html>' };
    try {
      const html = machine({});
      const r2 = await check(html.root, html.bin);
      assert.equal(r2.reports[0]?.code, 'hub_unreachable');
      assert.match(r2.reports[0]?.message ?? '', /a login page/);
    } finally {
      hubAnswer = { status: 200, type: 'application/json', body: '{"version": "5.3.0"}' };
    }
  });

  const privileged: [string, Machine, RegExp][] = [
    [
      'useradd failed because uid 1000 was taken: no notebook account',
      { passwd: ['ubuntu:x:1000:1000::/home/ubuntu:/bin/bash'] },
      /jovyan does not exist/,
    ],
    [
      "the notebook account has the default user's uid",
      { passwd: ['jovyan:x:1000:100::/home/jovyan:/bin/bash'] },
      new RegExp(`has uid 1000 and gid 100, not ${NOTEBOOK_UID} and 100`),
    ],
    [
      'the notebook account is in the sudo group',
      { group: ['sudo:x:27:ubuntu,jovyan', 'users:x:100:'] },
      /in the group\(s\) sudo/,
    ],
    [
      'the notebook account is in the docker group',
      { group: ['docker:x:998:jovyan', 'users:x:100:'] },
      /in the group\(s\) docker/,
    ],
    [
      'a sudoers.d entry names the notebook account',
      {
        sudoers: {
          '90-cloud-init-users': '# Created by cloud-init\njovyan ALL=(ALL) NOPASSWD:ALL\n',
        },
      },
      /\/etc\/sudoers\.d\/90-cloud-init-users names jovyan/,
    ],
    [
      "a sudoers rule for the notebook's primary group",
      { sudoers: { users: '%users ALL=(ALL) NOPASSWD: /usr/bin/apt-get\n' } },
      /names jovyan in a sudo rule: %users/,
    ],
    [
      'a sudoers rule by uid',
      { sudoers: { uid: `#${NOTEBOOK_UID} ALL=(ALL) ALL\n` } },
      /names jovyan in a sudo rule/,
    ],
  ];
  for (const [what, m, message] of privileged) {
    it(`refuses to start the server when ${what}: user_privileged`, async () => {
      const { root, bin } = machine({ gpu: false }, m);
      const r = await check(root, bin);
      assert.equal(r.code, 1);
      assert.equal(r.reports.length, 1);
      assert.equal(r.reports[0]?.code, 'user_privileged');
      assert.match(r.reports[0]?.message ?? '', message);
    });
  }

  it("a commented-out rule or another user's rule is not the notebook account's", async () => {
    const { root, bin } = machine(
      { gpu: false },
      { sudoers: { other: '# jovyan ALL=(ALL) ALL\nubuntu ALL=(ALL) NOPASSWD:ALL\n' } },
    );
    const r = await check(root, bin);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.reports, [{ stage: 'ready' }]);
  });

  it('pip: the GPU is checked as the notebook account without new privileges, the agent in the venv', async () => {
    const { root, bin } = machine({ image: { kind: 'pip', spec: 'jupyterhub ngsci' } });
    const r = await check(root, bin);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.reports, [{ stage: 'ready' }]);
    assert.match(
      r.log,
      new RegExp(
        `setpriv --reuid=${NOTEBOOK_UID} --regid=100 --init-groups --no-new-privs nvidia-smi -L`,
      ),
    );
    assert.doesNotMatch(r.log, /docker/);
  });
});

const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canNetns =
  isRoot && has('unshare') && has('iptables') && spawnSync('unshare', ['-n', 'true']).status === 0;

describe('firewall.sh with the real iptables, in a network namespace of its own', () => {
  it(
    "the notebook's uid cannot open the metadata service; root (the agent, the bootstrap) can; rules are added once",
    { skip: canNetns ? false : 'needs root, unshare -n and iptables' },
    () => {
      const { root } = machine({ image: { kind: 'pip', spec: 'jupyterhub' } });
      const fw = join(root, 'usr/local/lib/ngsci/firewall.sh');
      const probe = (uid: number) =>
        `setpriv --reuid=${uid} --regid=100 --clear-groups /usr/bin/python3 -c 'import urllib.request as u; print(u.urlopen("http://169.254.169.254/", timeout=5).status)' 2>&1 | tail -n 1`;
      const script = [
        'set -e',
        'ip link set lo up',
        'ip addr add 169.254.169.254/32 dev lo',
        // a stand-in for the metadata service, listening where the real one does
        `python3 -m http.server 80 --bind 169.254.169.254 --directory ${root} >/dev/null 2>&1 &`,
        'for i in $(seq 1 50); do python3 -c "import socket; socket.create_connection((\'169.254.169.254\', 80), 1)" 2>/dev/null && break; sleep 0.1; done',
        `echo "before: $(${probe(NOTEBOOK_UID)})"`,
        `bash ${fw}`,
        `bash ${fw}`,
        `echo "notebook: $(${probe(NOTEBOOK_UID)})"`,
        `echo "root: $(${probe(0)})"`,
        `echo "rules: $(iptables -S OUTPUT | grep -c 169.254.169.254)"`,
        'kill %1',
      ].join('\n');
      const r = spawnSync('unshare', ['-n', 'bash', '-c', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^before: 200$/m, 'the stand-in answers before the firewall');
      assert.match(r.stdout, /^notebook: .*(Connection reset|refused)/m);
      assert.match(r.stdout, /^root: 200$/m);
      assert.match(r.stdout, /^rules: 1$/m, 'running it again adds nothing');
    },
  );

  it(
    'docker: every container on a bridge is refused in DOCKER-USER, DNS to the metadata address stays open',
    { skip: canNetns ? false : 'needs root, unshare -n and iptables' },
    () => {
      const { root } = machine({});
      const fw = join(root, 'usr/local/lib/ngsci/firewall.sh');
      // docker makes DOCKER-USER when it starts; the unit runs after docker.service
      const r = spawnSync(
        'unshare',
        ['-n', 'bash', '-c', `iptables -N DOCKER-USER && bash ${fw} && iptables -S DOCKER-USER`],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      for (const a of ['169.254.169.254', '168.63.129.16'])
        assert.match(
          r.stdout,
          new RegExp(
            `-A DOCKER-USER -d ${a.replace(/\./g, '\\.')}/32 -p tcp -m tcp ! --dport 53 -j REJECT --reject-with tcp-reset`,
          ),
        );
      const none = spawnSync('unshare', ['-n', 'bash', fw], { encoding: 'utf8' });
      assert.notEqual(
        none.status,
        0,
        'without DOCKER-USER (docker not up) the unit fails, never runs open',
      );
    },
  );
});

const canLoop = isRoot && has('losetup') && has('unshare') && has('mkfs.ext4') && has('resize2fs');

describe('mount.sh with a real ext4 home on a loop device, in a mount namespace of its own', () => {
  it(
    'formats a new disk once, grows the file system when the disk was grown, and hands a uid-1000 home to the notebook account',
    { skip: canLoop ? false : 'needs root, losetup, unshare, mkfs.ext4 and resize2fs' },
    () => {
      const image = join(scratch, 'home.img');
      writeFileSync(image, '');
      spawnSync('truncate', ['-s', '64M', image]);
      const dev = spawnSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).stdout.trim();
      assert.match(dev, /^\/dev\/loop\d+$/);
      try {
        const { root } = machine({ homeDevices: [dev] });
        const mount = join(root, 'usr/local/lib/ngsci/mount.sh');
        const home = join(root, 'home/jovyan');
        const boot = (after: string) =>
          spawnSync(
            'unshare',
            [
              '-m',
              '--propagation',
              'private',
              'bash',
              '-c',
              `NGSCI_TEST_ROOT=${root} bash ${mount} && ${after}`,
            ],
            { encoding: 'utf8' },
          );
        const first = boot(
          `stat -c %u:%g ${home}; df -B1M --output=size ${home} | tail -n 1; ` +
            `echo notes > ${home}/notes.txt; chown 1000:100 ${home} ${home}/notes.txt`,
        );
        assert.equal(first.status, 0, first.stderr);
        const [owner, size] = first.stdout
          .trim()
          .split('\n')
          .map((l) => l.trim());
        assert.equal(owner, `${NOTEBOOK_UID}:100`);

        // the disk grew while detached (the size setting went up)
        spawnSync('truncate', ['-s', '128M', image]);
        spawnSync('losetup', ['-c', dev]);
        const second = boot(
          `df -B1M --output=size ${home} | tail -n 1; stat -c %u ${home}/notes.txt; cat ${home}/notes.txt`,
        );
        assert.equal(second.status, 0, second.stderr);
        const [grown, noteOwner, text] = second.stdout
          .trim()
          .split('\n')
          .map((l) => l.trim());
        assert.ok(Number(grown) > Number(size) * 1.8, `grown from ${size} MiB to ${grown} MiB`);
        assert.equal(noteOwner, String(NOTEBOOK_UID), "the old home is the notebook account's now");
        assert.equal(text, 'notes', 'and was not formatted again');
      } finally {
        spawnSync('losetup', ['-d', dev]);
      }
    },
  );
});
