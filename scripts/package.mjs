#!/usr/bin/env node
/**
 * `npm run package`: the packages an operator installs on their own hub (docs/install.md, "Your own
 * hub"), written to one directory (default dist/packages/, or --out DIR):
 *
 *   ngsci_spawner-<v>-py3-none-any.whl       the spawner-bridge (NgsciSpawner, configure_hub)
 *   ngsci_labextension-<v>-py3-none-any.whl  the JupyterLab extension, prebuilt: no Node, no build
 *   ngsci_magic-<v>-py3-none-any.whl         the %ngsci magic
 *   ngsci-hub-service-<v>.tgz                hub-service, bin `ngsci-service`
 *   ngsci-cli-<v>.tgz                        the CLI, bin `ngsci` (the agent is `ngsci agent`)
 *
 * The npm tarballs carry the workspace packages they use (@ngsci/contract, @ngsci/terraform) inside
 * (dist/_workspace/), and list those packages' own dependencies as theirs, so that a plain
 * `npm install <tarball>` (or `npm install --global --prefix DIR <tarball>`) installs a working
 * service or CLI from the registry with nothing of this repository.
 *
 * Needs what the build needs: `npm ci` done, Python 3.10+. The extension's build needs a Python
 * with JupyterLab: the project's venv (NGSCI_VENV, else .venv) when it has one, else a small venv
 * of its own in .ngsci/package-venv. Uses only Node's standard library.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', encoding: 'utf8', ...opts });
  if (res.status !== 0) {
    const out = opts.stdio === 'pipe' ? `\n${res.stdout ?? ''}${res.stderr ?? ''}` : '';
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status ?? res.signal})${out}`);
  }
  return res.stdout ?? '';
}

function parseArgs(argv) {
  let out = join(ROOT, 'dist', 'packages');
  let build = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-build') build = false;
    else if (a === '--out' && argv[i + 1]) out = resolve(argv[++i]);
    else if (a.startsWith('--out=')) out = resolve(a.slice('--out='.length));
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: npm run package [-- --out DIR] [--no-build]   (default: dist/packages; --no-build packs what is built)',
      );
      process.exit(0);
    } else
      throw new Error(
        `unknown argument ${JSON.stringify(a)}; usage: npm run package [-- --out DIR] [--no-build]`,
      );
  }
  return { out, build };
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** A Python that can import jupyterlab: the project's venv, else .ngsci/package-venv (made once). */
function buildVenv() {
  const hasLab = (venv) =>
    existsSync(join(venv, 'bin', 'python')) &&
    spawnSync(join(venv, 'bin', 'python'), ['-c', 'import jupyterlab'], { stdio: 'ignore' })
      .status === 0;
  const project = process.env.NGSCI_VENV ?? join(ROOT, '.venv');
  if (hasLab(project)) return project;
  const own = join(ROOT, '.ngsci', 'package-venv');
  if (!hasLab(own)) {
    console.log(`ngsci package: a Python with JupyterLab for the extension's build in ${own}`);
    run(process.env.NGSCI_PYTHON ?? 'python3', ['-m', 'venv', own]);
    run(join(own, 'bin', 'pip'), [
      'install',
      '--quiet',
      '--disable-pip-version-check',
      'jupyterlab>=4.2,<5',
    ]);
  }
  return own;
}

/** Copies dist/ of a workspace: its JavaScript and source maps (no typings, no tsbuildinfo). */
function copyBuilt(from, to) {
  const dist = join(from, 'dist');
  if (!existsSync(join(dist, 'index.js')))
    throw new Error(`${dist}/index.js is missing: the TypeScript build did not produce it`);
  cpSync(dist, to, {
    recursive: true,
    filter: (src) =>
      statSync(src).isDirectory() ||
      (/\.js(\.map)?$/.test(src) && !/\.test\.js(\.map)?$/.test(src)),
  });
}

const walk = (d) =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
  );

/**
 * Stages workspace `dir` and packs it into `out`. The @ngsci/* workspace packages it imports are
 * copied into its dist/_workspace/<name>/ and their imports rewritten to relative paths; their own
 * dependencies become the tarball's. (npm's bundleDependencies would not do: npm treats the
 * dependencies of a bundled package as bundled too and leaves them empty on install.)
 */
function packWorkspace(dir, { out, bins, extra = [] }) {
  const stage = mkdtempSync(join(tmpdir(), 'ngsci-pack-'));
  try {
    const pkg = readJson(join(ROOT, dir, 'package.json'));
    copyBuilt(join(ROOT, dir), join(stage, 'dist'));
    for (const name of ['README.md', ...extra]) {
      if (existsSync(join(ROOT, dir, name)))
        cpSync(join(ROOT, dir, name), join(stage, name), { recursive: true });
    }
    const deps = {};
    const vendored = new Map(); // '@ngsci/contract' → its package.json
    const take = (depsOf) => {
      for (const [dep, range] of Object.entries(depsOf ?? {})) {
        if (dep.startsWith('@ngsci/')) {
          if (vendored.has(dep)) continue;
          const wsDir = join(ROOT, dep.slice('@ngsci/'.length));
          const ws = readJson(join(wsDir, 'package.json'));
          vendored.set(dep, ws);
          copyBuilt(wsDir, join(stage, 'dist', '_workspace', ws.name.slice('@ngsci/'.length)));
          take(ws.dependencies);
        } else if (deps[dep] === undefined) deps[dep] = range;
        else if (deps[dep] !== range)
          console.warn(
            `ngsci package: ${pkg.name}: ${dep} wanted as ${deps[dep]} and ${range}; keeping ${deps[dep]}`,
          );
      }
    };
    take(pkg.dependencies);
    // '@ngsci/contract/client' → dist/_workspace/contract/client/index.js, by the package's exports
    const target = (spec) => {
      const [, scope, name, sub] = /^(@ngsci)\/([^/]+)(\/.*)?$/.exec(spec);
      const ws = vendored.get(`${scope}/${name}`);
      if (!ws) throw new Error(`${pkg.name} imports ${spec}, which is not among its dependencies`);
      const exp = ws.exports?.[sub ? `.${sub}` : '.'];
      const file = (typeof exp === 'string' ? exp : exp?.default) ?? (sub ? undefined : ws.main);
      if (!file) throw new Error(`${spec}: ${ws.name} exports no such path`);
      return join(
        stage,
        'dist',
        '_workspace',
        name,
        file.replace(/^\.\/dist\//, '').replace(/^dist\//, ''),
      );
    };
    for (const file of walk(join(stage, 'dist')).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(file, 'utf8');
      const rewritten = text.replace(/(['"])(@ngsci\/[a-z0-9/-]+)\1/g, (_m, q, spec) => {
        let rel = relative(dirname(file), target(spec));
        if (!rel.startsWith('.')) rel = `./${rel}`;
        return `${q}${rel}${q}`;
      });
      if (rewritten !== text) writeFileSync(file, rewritten);
    }
    const root = readJson(join(ROOT, 'package.json'));
    const staged = {
      name: pkg.name,
      version: pkg.version,
      description: pkg.description,
      license: root.license,
      type: pkg.type,
      main: pkg.main,
      bin: bins,
      engines: root.engines,
      files: ['dist', ...extra],
      dependencies: Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b))),
    };
    for (const [bin, file] of Object.entries(bins)) {
      if (!existsSync(join(stage, file)))
        throw new Error(`${pkg.name}: bin ${bin} → ${file} is missing`);
    }
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(staged, null, 2)}\n`);
    return run('npm', ['pack', '--silent', '--pack-destination', out], {
      cwd: stage,
      stdio: 'pipe',
    })
      .trim()
      .split('\n')
      .pop();
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export function buildPackages({ out, build = true }) {
  const [major] = process.versions.node.split('.').map(Number);
  if (major < 20)
    throw new Error(`Node ${process.versions.node} is too old: ngsci needs Node 20 or newer`);
  if (!existsSync(join(ROOT, 'node_modules', '.bin', 'tsc')))
    throw new Error('node_modules is missing: run `npm ci` first');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  const venv = buildVenv();
  if (build) {
    console.log('ngsci package: building TypeScript');
    run(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-b']);
    console.log('ngsci package: building the JupyterLab extension (prebuilt)');
    run('npm', ['run', 'build', '-w', 'labextension'], {
      env: { ...process.env, NGSCI_VENV: venv },
    });
  }

  console.log('ngsci package: wheels');
  run(join(venv, 'bin', 'python'), [
    '-m',
    'pip',
    'wheel',
    '--quiet',
    '--disable-pip-version-check',
    '--no-deps',
    '--wheel-dir',
    out,
    join(ROOT, 'spawner-bridge'),
    join(ROOT, 'labextension'),
    join(ROOT, 'magic'),
  ]);

  console.log('ngsci package: npm tarballs');
  packWorkspace('hub-service', {
    out,
    bins: { 'ngsci-service': 'dist/index.js' },
    extra: ['drizzle'],
  });
  packWorkspace('cli', { out, bins: { ngsci: 'dist/index.js' } });

  const files = readdirSync(out).sort();
  const want = [
    /^ngsci_spawner-.*\.whl$/,
    /^ngsci_labextension-.*\.whl$/,
    /^ngsci_magic-.*\.whl$/,
    /^ngsci-hub-service-.*\.tgz$/,
    /^ngsci-cli-.*\.tgz$/,
  ];
  for (const re of want) {
    if (!files.some((f) => re.test(f))) throw new Error(`${out} lacks a package matching ${re}`);
  }
  console.log(`ngsci package: ${out}\n${files.map((f) => `  ${f}`).join('\n')}`);
  return files;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    buildPackages(parseArgs(process.argv.slice(2)));
  } catch (err) {
    console.error(`ngsci package failed: ${err.message}`);
    process.exit(1);
  }
}
