#!/usr/bin/env node
/**
 * Runs a workspace's TypeScript tests with Node's test runner through tsx. Node 20 does not expand
 * globs, so this finds the `*.test.ts` files under the given folders (default: src).
 * Usage: node ../scripts/run-tests.mjs [folder...] [-- extra node --test flags]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const sep = process.argv.indexOf('--');
const folders = sep === -1 ? process.argv.slice(2) : process.argv.slice(2, sep);
const extra = sep === -1 ? [] : process.argv.slice(sep + 1);

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = (folders.length ? folders : ['src']).flatMap(find).sort();
if (!files.length) {
  console.error('no test files found');
  process.exit(1);
}
const res = spawnSync(
  'npx',
  ['tsx', '--test', ...extra, ...files.map((f) => relative(process.cwd(), f))],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
