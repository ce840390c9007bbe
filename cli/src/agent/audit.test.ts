/**
 * What a read event carries: the close of a file that was read has its duration and its size as
 * `bytes` (inotify cannot count bytes, so the size is the upper bound); an open without a read,
 * or a file that vanished, has no bytes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessTracker, fileSize } from './audit.js';

describe('read events', () => {
  test('a read file closes with its size and the time it was open', () => {
    let t = 1_000;
    const sizes: Record<string, number> = { '/d/cohort.csv': 4096 };
    const tracker = new AccessTracker(
      () => t,
      (p) => sizes[p] ?? null,
    );
    tracker.handle('OPEN', '/d/cohort.csv');
    t += 100;
    tracker.handle('ACCESS', '/d/cohort.csv');
    t += 400;
    const [close] = tracker.handle('CLOSE_NOWRITE,CLOSE', '/d/cohort.csv');
    assert.deepEqual(
      { op: close!.op, bytes: close!.bytes, durationMs: close!.durationMs },
      { op: 'close', bytes: 4096, durationMs: 500 },
    );
  });

  test('opened but never read: no bytes; a file that is gone: no bytes', () => {
    const tracker = new AccessTracker(
      () => 0,
      () => 10,
    );
    tracker.handle('OPEN', '/d/a');
    const [closeA] = tracker.handle('CLOSE_NOWRITE,CLOSE', '/d/a');
    assert.equal(closeA!.bytes, undefined);

    const dir = mkdtempSync(join(tmpdir(), 'ngsci-size-'));
    writeFileSync(join(dir, 'f.bin'), Buffer.alloc(1234));
    assert.equal(fileSize(join(dir, 'f.bin')), 1234);
    assert.equal(fileSize(join(dir, 'missing')), null);
    assert.equal(fileSize(dir), null, 'a folder has no byte count');
  });
});
