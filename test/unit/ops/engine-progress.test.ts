// Progress of long copies: dd's own status=progress line (as GNU dd 9.1 prints it) turned into
// a share of the whole with the time left at the rate so far.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeDdProgress, describeShare } from '../../../src/ops/engine/execute.js';

const GiB = 1024 ** 3;

test('a dd progress line becomes bytes of the total, percent, rate and time left', () => {
  const line = '268435456 bytes (268 MB, 256 MiB) copied, 4 s, 67.1 MB/s';
  // A quarter done in 4 s: three quarters left take 12 s more.
  assert.equal(describeDdProgress(line, 4 * 268435456, 0, 4000), '256 MiB of 1 GiB (25%) copied at 67.1 MB/s, about 12 s left');
});

test('lines that are not dd progress are left alone', () => {
  assert.equal(describeDdProgress('20000+0 records in', GiB, 0, 1000), undefined);
  assert.equal(describeDdProgress('xdelta3: warning: something', GiB, 0, 1000), undefined);
});

test('no time left before anything is copied, and none once all is', () => {
  assert.equal(describeShare(0, GiB, 'sent', 0, 1000), '0 B of 1 GiB (0%) sent');
  assert.equal(describeShare(GiB, GiB, 'sent', 0, 1000), '1 GiB of 1 GiB (100%) sent');
});
