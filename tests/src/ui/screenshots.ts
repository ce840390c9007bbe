/**
 * Regenerates docs/images/{sidebar,admin-panel,lab,resize-progress}-*.png: runs the sidebar UI
 * test against a fresh stack with NGSCI_SCREENSHOTS pointing at docs/images, so the pictures
 * show exactly what the test checks. Usage (from tests/): npx tsx src/ui/screenshots.ts
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../stack.js';

const res = spawnSync('npx', ['tsx', '--test', join('src', 'ui', 'sidebar.test.ts')], {
  cwd: join(ROOT, 'tests'),
  stdio: 'inherit',
  env: { ...process.env, NGSCI_SCREENSHOTS: join(ROOT, 'docs', 'images') },
});
process.exit(res.status ?? 1);
