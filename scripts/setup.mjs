#!/usr/bin/env node
/**
 * Everything `npm start` needs on a fresh machine, done once and skipped when nothing changed:
 * npm dependencies, the TypeScript build, and a Python virtualenv (.venv) with JupyterHub,
 * JupyterLab, the spawner-bridge and the %ngsci magic (magic/: the local instances' kernels run
 * from this venv too). Uses only Node's standard library, so it runs before
 * `npm install` has.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const VENV = process.env.NGSCI_VENV ?? join(ROOT, '.venv');

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, {
    cwd: ROOT,
    stdio: opts.quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
    ...opts,
  });
  if (res.status !== 0) {
    const out = opts.quiet ? `\n${res.stdout ?? ''}${res.stderr ?? ''}` : '';
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${res.status ?? res.signal})${out}`);
  }
  return res.stdout ?? '';
}

function hashFiles(files) {
  const h = createHash('sha256');
  for (const f of files) h.update(existsSync(f) ? readFileSync(f) : `missing:${f}`);
  return h.digest('hex');
}

function stamped(name, hash) {
  const file = join(ROOT, '.ngsci', 'setup', name);
  return existsSync(file) && readFileSync(file, 'utf8') === hash;
}

function stamp(name, hash) {
  const dir = join(ROOT, '.ngsci', 'setup');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), hash);
}

function checkVersions() {
  const [major] = process.versions.node.split('.').map(Number);
  if (major < 20)
    throw new Error(`Node ${process.versions.node} is too old: ngsci needs Node 20 or newer`);
  const py = spawnSync(
    pythonCommand(),
    ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
    { encoding: 'utf8' },
  );
  if (py.status !== 0) throw new Error('python3 was not found: ngsci needs Python 3.10 or newer');
  const [pmaj, pmin] = py.stdout.trim().split('.').map(Number);
  if (pmaj < 3 || (pmaj === 3 && pmin < 10))
    throw new Error(`Python ${py.stdout.trim()} is too old: ngsci needs 3.10 or newer`);
}

function pythonCommand() {
  return process.env.NGSCI_PYTHON ?? 'python3';
}

export function setup({ log = console.log } = {}) {
  checkVersions();
  const lock = join(ROOT, 'package-lock.json');
  const marker = join(ROOT, 'node_modules', '.package-lock.json');
  if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
    log('ngsci: installing npm dependencies (npm ci)');
    run('npm', ['ci', '--no-audit', '--no-fund']);
  }
  log('ngsci: building TypeScript');
  run(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-b'], { quiet: true });

  const pyInputs = [
    join(ROOT, 'deploy', 'requirements.txt'),
    join(ROOT, 'spawner-bridge', 'pyproject.toml'),
    join(ROOT, 'magic', 'pyproject.toml'),
    join(ROOT, 'tests', 'requirements.txt'),
  ];
  const pyHash = hashFiles(pyInputs);
  if (!existsSync(join(VENV, 'bin', 'python')) || !stamped('venv', pyHash)) {
    if (!existsSync(join(VENV, 'bin', 'python'))) {
      log(`ngsci: creating the Python environment in ${VENV}`);
      run(pythonCommand(), ['-m', 'venv', VENV]);
    }
    log(
      'ngsci: installing JupyterHub, JupyterLab, the spawner-bridge, the %ngsci magic and the test tools',
    );
    // with the tests' Python tools (schemathesis, for the API fuzzing in tests/fuzz/), resolved
    // together so neither upgrades what the other pinned
    const testRequirements = join(ROOT, 'tests', 'requirements.txt');
    run(join(VENV, 'bin', 'pip'), [
      'install',
      '--quiet',
      '--disable-pip-version-check',
      '-r',
      join(ROOT, 'deploy', 'requirements.txt'),
      ...(existsSync(testRequirements) ? ['-r', testRequirements] : []),
    ]);
    stamp('venv', pyHash);
  }
  setupLabextension({ log });
  installInstanceTools({ log });
}

/** Builds the JupyterLab extension when its sources changed and installs its wheel into the venv. */
function setupLabextension({ log }) {
  const dir = join(ROOT, 'labextension');
  if (!existsSync(join(dir, 'package.json'))) return;
  const walk = (d) =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
    );
  const inputs = ['src', 'style', 'schema', 'scripts'].flatMap((d) =>
    existsSync(join(dir, d)) ? walk(join(dir, d)) : [],
  );
  inputs.push(
    join(dir, 'package.json'),
    join(dir, 'pyproject.toml'),
    join(dir, 'install.json'),
    join(ROOT, 'package-lock.json'),
  );
  const hash = hashFiles(inputs.sort());
  const built = join(dir, 'ngsci_labextension', 'labextension', 'package.json');
  const installed = join(
    VENV,
    'share',
    'jupyter',
    'labextensions',
    'ngsci-labextension',
    'package.json',
  );
  if (stamped('labextension', hash) && existsSync(built) && existsSync(installed)) return;
  log('ngsci: building the JupyterLab extension');
  run('npm', ['run', 'build', '-w', 'labextension'], { quiet: true });
  run(
    join(VENV, 'bin', 'pip'),
    ['install', '--quiet', '--disable-pip-version-check', '--no-deps', '--force-reinstall', dir],
    { quiet: true },
  );
  stamp('labextension', hash);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    setup();
  } catch (err) {
    console.error(`ngsci setup failed: ${err.message}`);
    process.exit(1);
  }
}

/**
 * What every single-user server of this machine gets (docs/researcher-cli.md): the `ngsci` command
 * in .venv/bin (runs the built CLI with this Node), and an IPython config that loads `%ngsci` in
 * every kernel and console started from the venv. Cheap and idempotent, so it runs every time.
 */
export function installInstanceTools({ log = console.log } = {}) {
  const bin = join(VENV, 'bin', 'ngsci');
  const launcher = `#!/bin/sh\n# written by scripts/setup.mjs: the ngsci CLI (cli/) with the Node that ran the setup\nexec "\${NGSCI_NODE:-${process.execPath}}" "${join(ROOT, 'cli', 'dist', 'index.js')}" "$@"\n`;
  if (!existsSync(bin) || readFileSync(bin, 'utf8') !== launcher) {
    writeFileSync(bin, launcher, { mode: 0o755 });
    log(`ngsci: installed the ngsci command in ${bin}`);
  }
  const dir = join(VENV, 'etc', 'ipython');
  const config = join(dir, 'ipython_config.py');
  const marker = '# ngsci: load the %ngsci magic';
  const body = `${marker} (written by scripts/setup.mjs)\nc = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions.append("ngsci_magic")\n`;
  if (existsSync(config) && !readFileSync(config, 'utf8').startsWith(marker)) {
    log(
      `ngsci: ${config} exists and is not ngsci's; add "ngsci_magic" to c.InteractiveShellApp.extensions there`,
    );
    return;
  }
  if (!existsSync(config) || readFileSync(config, 'utf8') !== body) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(config, body);
    log(`ngsci: %ngsci loads in every IPython kernel of ${VENV}`);
  }
}
