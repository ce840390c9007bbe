/**
 * The deployment test's images, built on this machine without any image registry:
 * - ngsci-base:bookworm: Debian bookworm from Debian's own mirror (debootstrap), imported once;
 *   it trusts what this machine trusts (its CA bundle), so npm and pip inside builds work behind a
 *   TLS-inspecting proxy too;
 * - ngsci-node:20: that base with this machine's Node 20 and npm (docker/node-base.Dockerfile);
 * - ngsci-postgres:15, ngsci-hub:test, ngsci-singleuser:test: the repository's Dockerfiles with
 *   those images as their BASE / NODE_BASE arguments.
 * Builds use Docker's layer cache (a second run rebuilds only what changed) and run at nice 10.
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const IMAGES = {
  base: 'ngsci-base:bookworm',
  node: 'ngsci-node:20',
  postgres: 'ngsci-postgres:15',
  hub: 'ngsci-hub:test',
  singleuser: 'ngsci-singleuser:test',
} as const;

/** Runs a command; resolves with its output, rejects with the output's tail on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; log?: (s: string) => void } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const take = (b: Buffer) => {
      out += b.toString();
      opts.log?.(b.toString());
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.stdin.end(opts.input ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out.slice(-4000)}`));
    });
  });
}

const imageExists = (name: string) =>
  run('docker', ['image', 'inspect', name]).then(
    () => true,
    () => false,
  );

/** The Debian mirror apt uses here (debootstrap takes the same). */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d'))
    files.push(
      ...readdirSync('/etc/apt/sources.list.d').map((f) => `/etc/apt/sources.list.d/${f}`),
    );
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    const deb = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
    if (deb) return deb[1]!;
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza);
      if (uri && /^Suites:.*\bbookworm\b(?!-)/m.test(stanza) && !/security/.test(uri[1]!))
        return uri[1]!;
    }
  }
  return 'http://deb.debian.org/debian';
}

const HOST_CA = '/etc/ssl/certs/ca-certificates.crt';
const IMAGE_CA = '/etc/ssl/ngsci-host-ca.crt';

async function buildBase(log: (s: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ngsci-rootfs-'));
  try {
    await run(
      'nice',
      ['-n', '10', 'debootstrap', '--variant=minbase', 'bookworm', dir, debianMirror()],
      {
        log,
      },
    );
    const env: string[] = [];
    if (existsSync(HOST_CA)) {
      mkdirSync(join(dir, dirname(IMAGE_CA)), { recursive: true });
      cpSync(HOST_CA, join(dir, IMAGE_CA));
      for (const v of [
        'NODE_EXTRA_CA_CERTS',
        'PIP_CERT',
        'SSL_CERT_FILE',
        'REQUESTS_CA_BUNDLE',
        'npm_config_cafile',
      ])
        env.push(`${v}=${IMAGE_CA}`);
    }
    const changes = env.length ? ['--change', `ENV ${env.join(' ')}`] : [];
    await run(
      'sh',
      [
        '-c',
        `tar -C "$1" -c . | docker import ${changes.map((c) => `'${c}'`).join(' ')} - "$2"`,
        'sh',
        dir,
        IMAGES.base,
      ],
      {
        log,
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function dockerBuild(
  root: string,
  dockerfile: string,
  tag: string,
  buildArgs: Record<string, string>,
  context: string,
  log: (s: string) => void,
): Promise<void> {
  const args = [
    '-n',
    '10',
    'docker',
    'build',
    '--network',
    'host',
    '-f',
    join(root, dockerfile),
    '-t',
    tag,
  ];
  for (const [k, v] of Object.entries(buildArgs)) args.push('--build-arg', `${k}=${v}`);
  args.push(context);
  // the legacy builder: Debian's docker.io has no buildx; its layer cache is what makes reruns fast
  await run('nice', args, { env: { ...process.env, DOCKER_BUILDKIT: '0' }, log });
}

/** Builds every image (cached) and returns the seconds each step took. */
export async function buildImages(
  root: string,
  log: (s: string) => void,
): Promise<Record<string, number>> {
  const took: Record<string, number> = {};
  const timed = async (name: string, fn: () => Promise<void>) => {
    const t0 = Date.now();
    await fn();
    took[name] = Math.round((Date.now() - t0) / 100) / 10;
  };
  await timed('base', async () => {
    if (!(await imageExists(IMAGES.base))) await buildBase(log);
  });
  await timed('node', async () => {
    // this machine's Node (the one every other test runs on) and its npm; kept while the
    // versions match (a new copy of the same files would still miss Docker's cache, and with it
    // every layer above)
    const inImage = await run('docker', [
      'run',
      '--rm',
      IMAGES.node,
      'sh',
      '-c',
      'node --version && npm --version',
    ]).catch(() => '');
    const here = `${process.version}\n${(await run('npm', ['--version'])).trim()}`;
    if (inImage.trim() === here) return;
    const ctx = mkdtempSync(join(tmpdir(), 'ngsci-node-'));
    try {
      const node = process.execPath;
      const npmRoot = (await run('npm', ['root', '-g'])).trim();
      mkdirSync(join(ctx, 'bin'));
      mkdirSync(join(ctx, 'lib', 'node_modules'), { recursive: true });
      cpSync(node, join(ctx, 'bin', 'node'));
      cpSync(join(npmRoot, 'npm'), join(ctx, 'lib', 'node_modules', 'npm'), { recursive: true });
      await dockerBuild(
        root,
        'docker/node-base.Dockerfile',
        IMAGES.node,
        { BASE: IMAGES.base },
        ctx,
        log,
      );
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
  });
  await timed('postgres', () =>
    dockerBuild(
      root,
      'docker/postgres.Dockerfile',
      IMAGES.postgres,
      { BASE: IMAGES.base },
      join(root, 'docker'),
      log,
    ),
  );
  await timed('hub', () =>
    dockerBuild(root, 'docker/hub.Dockerfile', IMAGES.hub, { NODE_BASE: IMAGES.node }, root, log),
  );
  await timed('singleuser', () =>
    dockerBuild(
      root,
      'docker/singleuser.Dockerfile',
      IMAGES.singleuser,
      { BASE: IMAGES.base, NODE_BASE: IMAGES.node },
      root,
      log,
    ),
  );
  return took;
}
