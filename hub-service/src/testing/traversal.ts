import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Tests that run a process as another system account need that account to reach files under the
 * checkout, wherever it was cloned (`mktemp -d` makes a 0700 directory). Adds the "others may
 * traverse" bit to every directory above each target that lacks it; the returned function puts the
 * old modes back.
 */
export function grantTraversal(targets: readonly string[]): () => void {
  const changed = new Map<string, number>();
  for (const t of targets) {
    for (let d = dirname(t); ; d = dirname(d)) {
      const mode = statSync(d).mode & 0o7777;
      if (!(mode & 0o001) && !changed.has(d)) {
        changed.set(d, mode);
        chmodSync(d, mode | 0o001);
      }
      if (dirname(d) === d) break;
    }
  }
  return () => {
    for (const [d, mode] of changed) chmodSync(d, mode);
  };
}
