#!/usr/bin/env node
/**
 * `npm test`: sets up what is missing (as `npm start` does), builds, then runs every suite:
 * each workspace's unit tests, the pytest of the spawner-bridge and of the magic (each with its own
 * pyproject's settings, so one suite each), and the cross-component tests that
 * start a real JupyterHub on PGlite and on Postgres. Prints one closing line with the totals.
 * `npm test -- --unit` skips the cross-component tests.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, VENV, setup } from './setup.mjs';

const unitOnly = process.argv.includes('--unit');

function run(name, cmd, args, cwd) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(`\n=== ${name}`);
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let out = '';
    const keep = (d) => {
      const s = d.toString();
      out += s;
      process.stdout.write(s);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('close', (code) => {
      resolve({ name, code, out, seconds: Math.round((Date.now() - started) / 1000) });
    });
  });
}

/** Counts from node's test runner ("# pass N") or pytest ("N passed, M failed"). */
function counts(out) {
  const node = { pass: /^# pass (\d+)$/m.exec(out), fail: /^# fail (\d+)$/m.exec(out) };
  if (node.pass) return { passed: Number(node.pass[1]), failed: Number(node.fail?.[1] ?? 0) };
  const last = out.trim().split('\n').at(-1) ?? '';
  const passed = Number(/(\d+) passed/.exec(last)?.[1] ?? 0);
  const failed =
    Number(/(\d+) failed/.exec(last)?.[1] ?? 0) + Number(/(\d+) errors?/.exec(last)?.[1] ?? 0);
  return { passed, failed };
}

setup({ log: console.log });

const workspaces = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).workspaces;
const suites = [];
for (const ws of workspaces) {
  if (ws === 'tests' || ws === 'bench') continue;
  const pkg = JSON.parse(readFileSync(join(ROOT, ws, 'package.json'), 'utf8'));
  if (pkg.scripts?.test)
    suites.push([`${ws} unit tests`, 'npm', ['test', '--silent'], join(ROOT, ws)]);
}
for (const pkg of ['spawner-bridge', 'magic']) {
  suites.push([
    `${pkg} pytest`,
    join(VENV, 'bin', 'python'),
    ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', pkg],
    ROOT,
  ]);
}
if (!unitOnly && existsSync(join(ROOT, 'tests', 'package.json'))) {
  suites.push([
    'cross-component tests (real JupyterHub, PGlite and Postgres, Chromium)',
    'npm',
    ['test', '--silent'],
    join(ROOT, 'tests'),
  ]);
}

const results = [];
for (const [name, cmd, args, cwd] of suites) results.push(await run(name, cmd, args, cwd));

let passed = 0;
let failed = 0;
console.log('\n=== summary');
for (const r of results) {
  const c = counts(r.out);
  passed += c.passed;
  // a suite that exits non-zero fails even when its runner printed no count
  const f = r.code !== 0 && c.failed === 0 ? 1 : c.failed;
  failed += f;
  console.log(
    `${r.code === 0 ? 'ok  ' : 'FAIL'} ${r.name}: ${c.passed} passed, ${f} failed (${r.seconds} s)`,
  );
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || results.some((r) => r.code !== 0) ? 1 : 0);
