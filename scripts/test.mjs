#!/usr/bin/env node
/**
 * `npm test`: sets up what is missing (as `npm start` does), builds, then runs every suite:
 * each workspace's unit tests, the pytest of the spawner-bridge and of the magic (each with its own
 * pyproject's settings, so one suite each), and the cross-component tests that
 * start a real JupyterHub on PGlite and on Postgres. Prints one closing line with the totals.
 * `npm test -- --unit` skips the cross-component tests.
 *
 * The cross-component tests spend most of their time waiting on servers (JupyterHub, JupyterLab,
 * Chromium) with a core to spare, so the unit suites run one after another beside them: the
 * cross-component output streams live, each unit suite's output is printed whole when it ends.
 * `NGSCI_TEST_SERIAL=1` runs every suite one after another instead.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, VENV, setup } from './setup.mjs';

const unitOnly = process.argv.includes('--unit');

const serial = process.env.NGSCI_TEST_SERIAL === '1';

/** Runs one suite; its output goes to stdout as it comes (`live`) or whole at its end. */
function run(name, cmd, args, cwd, { live = true } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    if (live) console.log(`\n=== ${name}`);
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let out = '';
    const keep = (d) => {
      const s = d.toString();
      out += s;
      if (live) process.stdout.write(s);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('close', (code) => {
      const seconds = Math.round((Date.now() - started) / 1000);
      if (!live)
        process.stdout.write(`\n=== ${name} (ran beside the others, ${seconds} s)\n${out}\n`);
      resolve({ name, code, out, seconds });
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
const cross =
  !unitOnly && existsSync(join(ROOT, 'tests', 'package.json'))
    ? [
        'cross-component tests (real JupyterHub, PGlite and Postgres, Chromium)',
        'npm',
        ['test', '--silent'],
        join(ROOT, 'tests'),
      ]
    : null;

const results = [];
if (serial || !cross) {
  for (const [name, cmd, args, cwd] of cross ? [...suites, cross] : suites)
    results.push(await run(name, cmd, args, cwd));
} else {
  const crossRun = run(...cross);
  for (const [name, cmd, args, cwd] of suites)
    results.push(await run(name, cmd, args, cwd, { live: false }));
  results.push(await crossRun);
}

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
