/**
 * Runs cells in a real IPython kernel through magic-kernel.py, without blocking the test's event
 * loop (spawnSync would: kept-alive sockets the proxy closed meanwhile stay in fetch's pool, and
 * the next request on one fails).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './stack.js';

const DRIVER = fileURLToPath(new URL('./magic-kernel.py', import.meta.url));

export interface DriverRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The driver with `input` (its JSON: env, cwd, cells) on stdin; killed after 150 s. */
export function runKernelDriver(input: unknown): Promise<DriverRun> {
  return new Promise((resolve) => {
    const child = spawn(join(ROOT, '.venv', 'bin', 'python'), [DRIVER], { timeout: 150_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(JSON.stringify(input));
  });
}
