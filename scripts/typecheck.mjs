#!/usr/bin/env node
/**
 * `npm run typecheck`: builds the project references (tsc -b), then type-checks every workspace
 * with its test files and test helpers included (each workspace's tsconfig.test.json, or its
 * tsconfig.json where that already covers everything), and the Python packages (spawner-bridge,
 * magic) with mypy, each with its own pyproject's settings.
 * Exits non-zero on the first workspace with errors, after printing them all.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, VENV } from './setup.mjs';

const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
const projects = [
  'contract/tsconfig.test.json',
  'terraform/tsconfig.test.json',
  'hub-service/tsconfig.test.json',
  'cli/tsconfig.test.json',
  'labextension/tsconfig.test.json',
  'tests/tsconfig.json',
  'bench/tsconfig.json',
];

let failed = 0;
const run = (label, cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    failed += 1;
    console.error(`typecheck: ${label} has errors`);
  }
};

run('tsc -b', tsc, ['-b']);
for (const p of projects) run(p, tsc, ['--noEmit', '-p', p]);
const mypy = join(VENV, 'bin', 'mypy');
if (existsSync(mypy)) {
  run('spawner-bridge (mypy)', mypy, [
    '--config-file',
    'spawner-bridge/pyproject.toml',
    'spawner-bridge/ngsci_spawner',
  ]);
  run('magic (mypy)', mypy, ['--config-file', 'magic/pyproject.toml', 'magic/ngsci_magic']);
} else {
  failed += 1;
  console.error('typecheck: mypy is missing from .venv (npm start or npm test sets it up)');
}
if (failed) process.exit(1);
console.log('typecheck: clean');
