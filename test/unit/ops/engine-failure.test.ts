// What a failed step tells the user: the tool's own error, also when statistics and a script's
// summary follow it. The output is real: GNU dd writing to /dev/full, as a backup writing to a
// full file system does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { describeFailure } from '../../../src/ops/engine/execute.js';
import type { RemoteResult } from '../../../src/ssh/types.js';

function run(script: string): RemoteResult {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  return { node: 'pm-2', command: script, exitCode: r.status, signal: r.signal ?? undefined, stdout: r.stdout, stderr: r.stderr, durationMs: 10, timedOut: false };
}

test('a disk that fills up is named, not hidden behind dd\'s statistics and the script\'s summary', () => {
  const result = run("dd if=/dev/zero of=/dev/full bs=1M count=3 status=progress; echo 'reading the snapshot or writing the backup failed' >&2; exit 1");
  assert.match(result.stderr, /records out/, 'dd printed its statistics after the error');
  const summary = describeFailure(result);
  assert.match(summary, /^exit 1: dd: error writing '\/dev\/full': No space left on device/);
  assert.match(summary, /reading the snapshot or writing the backup failed$/);
  assert.doesNotMatch(summary, /records (in|out)|bytes .* copied/);
});

test('the last lines of a failure stay, each once', () => {
  const summary = describeFailure(run("echo 'one' >&2; echo 'cannot open x' >&2; echo 'three' >&2; echo 'four' >&2; exit 3"));
  assert.equal(summary, 'exit 3: cannot open x / three / four');
});

test('a command that says nothing is described by how it ended', () => {
  assert.equal(describeFailure(run('exit 2')), 'exit 2');
  assert.equal(describeFailure({ ...run('exit 0'), exitCode: null, signal: 'SIGKILL' }), 'killed by SIGKILL');
});
