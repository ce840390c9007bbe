#!/usr/bin/env node
/**
 * Builds the prebuilt (federated) extension into ngsci_labextension/labextension with
 * @jupyterlab/builder, against the JupyterLab in the project's virtualenv.
 *
 * Why not `jupyter labextension build`: since JupyterLab 4.6 it runs `jlpm` first, whose bundled
 * yarn is a CommonJS file that Node reads as ESM inside this repository (the root package.json
 * says "type": "module" and .venv sits below it). The builder itself is what that command runs.
 * Usage: node scripts/build-labextension.mjs [--development]
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(here, '..');
// the project's venv (npm start, CI), else whatever python is on PATH (docker's build stage)
const candidates = [
  ...(process.env.NGSCI_VENV ? [join(process.env.NGSCI_VENV, 'bin', 'python')] : []),
  join(root, '.venv', 'bin', 'python'),
  'python3',
  'python',
];
const where =
  'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging"))';
const probe = candidates
  .map((python) => spawnSync(python, ['-c', where], { encoding: 'utf8' }))
  .find((r) => r.status === 0);
if (!probe) {
  console.error(
    `build-labextension: no Python with JupyterLab found (tried ${candidates.join(', ')}); run npm run setup at the root`,
  );
  process.exit(1);
}
const corePath = probe.stdout.trim();
const builder = createRequire(join(here, 'package.json')).resolve(
  '@jupyterlab/builder/lib/build-labextension.js',
);
const dev = process.argv.includes('--development');
const res = spawnSync(
  process.execPath,
  [builder, '--core-path', corePath, ...(dev ? ['--development'] : []), here],
  { stdio: 'inherit', cwd: here },
);
process.exit(res.status ?? 1);
