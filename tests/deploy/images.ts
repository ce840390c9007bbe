/**
 * The deployment test's images, built on this machine without any image registry:
 * - ngsci-base:bookworm-…: Debian bookworm from Debian's own mirror (debootstrap), with the few
 *   system packages the Dockerfiles would otherwise apt-get (Python, tini, inotify-tools), made
 *   once and shared by every image below; it trusts what this machine trusts (its CA bundle), so
 *   npm and pip inside builds work behind a TLS-inspecting proxy too;
 * - ngsci-node:20: that base with this machine's Node 20 and npm (docker/node-base.Dockerfile);
 * - ngsci-postgres:15, ngsci-hub:test, ngsci-singleuser:test: the repository's Dockerfiles with
 *   those images as their BASE / NODE_BASE arguments.
 * The hub and single-user images are built with APP=prebuilt: what their `app-source` stage would
 * build (the TypeScript, production node_modules, configurable-http-proxy, the CLI, the wheels of
 * the extension, the spawner-bridge and %ngsci) is laid out here from this machine's own build
 * (`node scripts/setup.mjs`, which CI runs before the tests) in a build context that stays put
 * between runs, so Docker's cache (BuildKit) rebuilds only what changed. NGSCI_DEPLOY_FROM_SOURCE=1
 * builds from the repository instead, as an operator does (much slower when cold).
 * Builds run at nice 10.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** What the base image carries beyond debootstrap's minbase (its tag changes with the list). */
const BASE_PACKAGES = ['python3', 'python3-venv', 'ca-certificates', 'tini', 'inotify-tools'];
const baseTag = createHash('sha256').update(BASE_PACKAGES.join(',')).digest('hex').slice(0, 8);

export const IMAGES = {
  base: `ngsci-base:bookworm-${baseTag}`,
  node: 'ngsci-node:20',
  postgres: 'ngsci-postgres:15',
  hub: 'ngsci-hub:test',
  singleuser: 'ngsci-singleuser:test',
} as const;

/** Marks the images this test builds, so that their replaced versions can be pruned. */
const BUILT_LABEL = 'org.ngsci.deploy-test=1';

/** The workspaces the images run (as in the Dockerfiles' `app-source` stage). */
const APP_WORKSPACES = ['contract', 'hub-service', 'terraform', 'cli'];
/** Every workspace's manifest, so the lockfile matches for `npm ci`. */
const ALL_WORKSPACES = [...APP_WORKSPACES, 'tests', 'bench', 'labextension'];

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

/**
 * How to run a BuildKit build (the Dockerfiles need it: `RUN --mount`, and stages that are not
 * used are not built): `docker buildx build --load` where the buildx plugin is installed, else a
 * client that still has BuildKit built in (Debian's docker.io 20.10 at /usr/bin/docker, with
 * DOCKER_BUILDKIT=1; a newer client without buildx refuses BuildKit).
 */
async function builder(): Promise<{ cmd: string; args: string[]; env: NodeJS.ProcessEnv }> {
  if (
    await run('docker', ['buildx', 'version']).then(
      () => true,
      () => false,
    )
  )
    return { cmd: 'docker', args: ['buildx', 'build', '--load'], env: process.env };
  for (const cmd of ['/usr/bin/docker', 'docker']) {
    const version = await run(cmd, ['version', '--format', '{{.Client.Version}}']).catch(() => '');
    const major = Number(/^(\d+)\./.exec(version.trim())?.[1] ?? NaN);
    if (major >= 18 && major < 23)
      return { cmd, args: ['build'], env: { ...process.env, DOCKER_BUILDKIT: '1' } };
  }
  throw new Error(
    'no BuildKit builder: install the docker buildx plugin, or use a Docker 20.10 client (Debian docker.io)',
  );
}

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
      [
        '-n',
        '10',
        'debootstrap',
        '--variant=minbase',
        `--include=${BASE_PACKAGES.join(',')}`,
        'bookworm',
        dir,
        debianMirror(),
      ],
      { log },
    );
    // the downloaded packages: installed already
    for (const f of readdirSync(join(dir, 'var/cache/apt/archives')))
      if (f.endsWith('.deb')) rmSync(join(dir, 'var/cache/apt/archives', f));
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
      { log },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function dockerBuild(
  root: string,
  dockerfile: string,
  tag: string,
  buildArgs: Record<string, string>,
  context: string,
  log: (s: string) => void,
): Promise<void> {
  const b = await builder();
  const args = [
    '-n',
    '10',
    b.cmd,
    ...b.args,
    '--progress',
    'plain',
    '--network',
    'host',
    '-f',
    join(root, dockerfile),
    '-t',
    tag,
    '--label',
    BUILT_LABEL,
  ];
  for (const [k, v] of Object.entries(buildArgs)) args.push('--build-arg', `${k}=${v}`);
  args.push(context);
  await run('nice', args, { env: b.env, log });
}

const hashOf = (parts: (string | Buffer)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};

/** A package.json without its "scripts" (as the Dockerfiles' `manifests` stage makes them). */
const manifest = (file: string) => {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete p.scripts;
  return JSON.stringify(p, null, 2);
};

/** Copies a folder's files (keeping their times) but none of `skip`, replacing what was there. */
function mirror(from: string, to: string, skip: (name: string) => boolean) {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(to)) if (!skip(name)) rmSync(join(to, name), { recursive: true });
  cpSync(from, to, {
    recursive: true,
    preserveTimestamps: true,
    filter: (src) => !skip(basename(src)),
  });
}

/** The content of a folder's files (but `junk`), as one hash. */
function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      if (junk(e.name)) continue;
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path, `${rel}${e.name}/`);
      else if (e.isFile()) h.update(`${rel}${e.name}\0`).update(readFileSync(path)).update('\0');
    }
  };
  walk(dir, '');
  return h.digest('hex').slice(0, 16);
}

const junk = (name: string) =>
  ['node_modules', '__pycache__', '.pytest_cache', '.mypy_cache', '.ruff_cache'].includes(name) ||
  name.endsWith('.tsbuildinfo') ||
  name.endsWith('.egg-info');

/**
 * The build context for APP=prebuilt, in a folder that stays between runs: deploy/ and prebuilt/
 * (app, chp, cli, wheels; see hub.Dockerfile). node_modules are installed again only when the
 * lockfile or a manifest changed, from npm's cache where it can.
 */
export async function prepareContext(root: string, log: (s: string) => void): Promise<string> {
  for (const w of APP_WORKSPACES)
    if (!existsSync(join(root, w, 'dist')))
      throw new Error(`${w}/dist is missing: build first (node scripts/setup.mjs)`);
  const built = join(root, 'labextension/ngsci_labextension/labextension/package.json');
  if (!existsSync(built))
    throw new Error('the JupyterLab extension is not built: node scripts/setup.mjs');
  const ctx = join(tmpdir(), 'ngsci-deploy-context');
  const out = join(ctx, 'prebuilt');
  const app = join(out, 'app');
  mkdirSync(app, { recursive: true });
  const npmFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'];

  // production node_modules for the app's workspaces
  const manifests = ['package.json', ...ALL_WORKSPACES.map((w) => `${w}/package.json`)];
  const lock = readFileSync(join(root, 'package-lock.json'));
  const depsHash = hashOf([lock, ...manifests.map((m) => manifest(join(root, m)))]);
  const depsStamp = join(ctx, 'app-deps.sha256');
  if (!existsSync(depsStamp) || readFileSync(depsStamp, 'utf8') !== depsHash) {
    rmSync(app, { recursive: true, force: true });
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'package-lock.json'), lock);
    for (const m of manifests) {
      mkdirSync(dirname(join(app, m)), { recursive: true });
      writeFileSync(join(app, m), manifest(join(root, m)));
    }
    await run(
      'npm',
      [
        'ci',
        '--omit=dev',
        ...npmFlags,
        '--include-workspace-root',
        ...APP_WORKSPACES.flatMap((w) => ['--workspace', w]),
      ],
      { cwd: app, log },
    );
    // configurable-http-proxy (a root devDependency) on its own, as in the Dockerfile
    const chp = join(out, 'chp');
    rmSync(chp, { recursive: true, force: true });
    mkdirSync(chp);
    const lockJson = JSON.parse(lock.toString()) as {
      packages: Record<string, { version: string }>;
    };
    const rootJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      overrides?: Record<string, unknown>;
    };
    writeFileSync(
      join(chp, 'package.json'),
      JSON.stringify(
        {
          private: true,
          dependencies: {
            'configurable-http-proxy':
              lockJson.packages['node_modules/configurable-http-proxy']!.version,
          },
          overrides: rootJson.overrides?.['configurable-http-proxy'] ?? {},
        },
        null,
        2,
      ),
    );
    await run('npm', ['install', '--omit=dev', ...npmFlags], { cwd: chp, log });
    writeFileSync(depsStamp, depsHash);
  }

  // the built workspaces (package.json with its scripts, as the source build copies it)
  cpSync(join(root, 'package.json'), join(app, 'package.json'), { preserveTimestamps: true });
  for (const w of APP_WORKSPACES) mirror(join(root, w), join(app, w), junk);

  // the CLI alone: its build, the contract's, zod, ws (the agent's kernel websockets)
  const cli = join(out, 'cli');
  rmSync(cli, { recursive: true, force: true });
  const cliContract = join(cli, 'node_modules/@ngsci/contract');
  mkdirSync(cliContract, { recursive: true });
  const copy = (from: string, to: string) =>
    cpSync(from, to, { recursive: true, preserveTimestamps: true });
  copy(join(root, 'cli/dist'), join(cli, 'dist'));
  copy(join(root, 'cli/package.json'), join(cli, 'package.json'));
  copy(join(root, 'contract/dist'), join(cliContract, 'dist'));
  copy(join(root, 'contract/package.json'), join(cliContract, 'package.json'));
  copy(join(app, 'node_modules/zod'), join(cli, 'node_modules/zod'));
  copy(join(app, 'node_modules/ws'), join(cli, 'node_modules/ws'));

  // the Python parts as wheels, each built again only when its folder changed (hatchling builds
  // them reproducibly: same sources, same bytes, so Docker's cache holds too)
  const wheels = join(out, 'wheels');
  rmSync(wheels, { recursive: true, force: true });
  mkdirSync(wheels);
  const pip = existsSync(join(root, '.venv/bin/pip')) ? join(root, '.venv/bin/pip') : 'pip';
  for (const pkg of ['labextension', 'spawner-bridge', 'magic']) {
    const cache = join(ctx, 'wheel-cache');
    const cached = join(cache, `${pkg}-${treeHash(join(root, pkg))}`);
    if (!existsSync(join(cached, 'done'))) {
      mkdirSync(cache, { recursive: true });
      for (const old of readdirSync(cache))
        if (old.startsWith(`${pkg}-`)) rmSync(join(cache, old), { recursive: true });
      mkdirSync(cached);
      await run(pip, ['wheel', '--quiet', '--no-deps', '--wheel-dir', cached, join(root, pkg)], {
        log,
      });
      writeFileSync(join(cached, 'done'), '');
    }
    for (const f of readdirSync(cached))
      if (f.endsWith('.whl'))
        cpSync(join(cached, f), join(wheels, f), { preserveTimestamps: true });
  }

  mirror(join(root, 'deploy'), join(ctx, 'deploy'), junk);
  return ctx;
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
    if (inImage.trim() === here && (await baseOf(IMAGES.node)) === (await baseOf(IMAGES.base)))
      return;
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
  const fromSource = process.env.NGSCI_DEPLOY_FROM_SOURCE === '1';
  // Postgres (apt in its image) beside the other two: one waits on the network, they on the disk
  const postgres = timed('postgres', () =>
    dockerBuild(
      root,
      'docker/postgres.Dockerfile',
      IMAGES.postgres,
      { BASE: IMAGES.base },
      join(root, 'docker'),
      log,
    ),
  );
  const app = async () => {
    let ctx = root;
    if (!fromSource)
      await timed('prebuilt context', async () => void (ctx = await prepareContext(root, log)));
    const APP = fromSource ? 'source' : 'prebuilt';
    await timed('hub', () =>
      dockerBuild(
        root,
        'docker/hub.Dockerfile',
        IMAGES.hub,
        { NODE_BASE: IMAGES.node, APP },
        ctx,
        log,
      ),
    );
    await timed('singleuser', () =>
      dockerBuild(
        root,
        'docker/singleuser.Dockerfile',
        IMAGES.singleuser,
        { BASE: IMAGES.base, NODE_BASE: IMAGES.node, APP },
        ctx,
        log,
      ),
    );
  };
  await Promise.all([postgres, app()]);
  // the images these tags named before (their layers that nothing else uses), not the cache
  await run('docker', ['image', 'prune', '--force', '--filter', `label=${BUILT_LABEL}`], { log });
  return took;
}

/** The first layer of an image (to tell whether ngsci-node was made from the current base). */
async function baseOf(image: string): Promise<string> {
  return (
    await run('docker', [
      'image',
      'inspect',
      '--format',
      '{{index .RootFS.Layers 0}}',
      image,
    ]).catch(() => '')
  ).trim();
}
