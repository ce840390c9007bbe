/**
 * Regenerates the pictures in docs/images: runs every test that takes them against fresh stacks
 * with NGSCI_SCREENSHOTS pointing at docs/images, so the pictures show exactly what the tests
 * check (the sidebar, the admin panel, resize progress and keeping variables, the runway and
 * countdown, the idle-timeout section, the spawn form, stop_after and a spot relaunch, the pair
 * pickers of the spawn form and the sidebar, the admin panel's cloud credits).
 * Usage (from tests/): npx tsx src/ui/screenshots.ts
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../stack.js';

const TAKING_PICTURES = [
  'src/ui/sidebar.test.ts',
  'src/ui/budget-aware.test.ts',
  'src/ui/idle.test.ts',
  'src/ui/keep-state.test.ts',
  'src/ui/gpu-waste.test.ts',
  'src/ui/pairs.test.ts',
  'src/spawn-form.test.ts',
  'src/stop-after.test.ts',
  'src/preemption.test.ts',
  'src/ui/preemption-default.test.ts',
];

const res = spawnSync('npx', ['tsx', '--test', '--test-concurrency=1', ...TAKING_PICTURES], {
  cwd: join(ROOT, 'tests'),
  stdio: 'inherit',
  env: { ...process.env, NGSCI_SCREENSHOTS: join(ROOT, 'docs', 'images') },
});
process.exit(res.status ?? 1);
