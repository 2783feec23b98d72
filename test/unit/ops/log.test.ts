// pmc log: the audit lines pmc writes, parsed back from real `journalctl -t pmc -o json` output
// of a lab node (test/fixtures/real/journalctl-pmc-json.pm-1.txt, written by `pmc pm drbd-up pm-1`).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatAuditLine, parseAuditLine } from '../../../src/ops/engine/audit.js';
import { logCommand, parseLogOutput } from '../../../src/ops/log/read.js';

const journal = readFileSync(new URL('../../fixtures/real/journalctl-pmc-json.pm-1.txt', import.meta.url), 'utf8');

test('journal entries: time from __REALTIME_TIMESTAMP (UTC), run, VM, who and text from the message', () => {
  const entries = parseLogOutput('pm-1', journal);
  assert.deepEqual(entries.slice(0, 2), [
    { time: '2026-12-02T09:23:27.145Z', node: 'pm-1', run: '475178d8', vm: undefined, by: 'root@vm', text: 'start (pid 4054, nodes pm-1): pmc pm drbd-up pm-1' },
    { time: '2026-12-02T09:23:41.754Z', node: 'pm-1', run: '475178d8', vm: undefined, by: 'root@vm', text: 'end: every DRBD resource is up: 0 of 0 steps done' },
  ]);
});

test('an audit line survives the round trip; a newline in it cannot start a second entry', () => {
  const line = formatAuditLine({ run: 'ab12cd34', vm: 'web-1', by: 'ops@desk', text: 'step 1/2 exit 0: $ printf a\nrun=forged vm=x by=y z' });
  assert.equal(line.split('\n').length, 1);
  assert.deepEqual(parseAuditLine(line), { run: 'ab12cd34', vm: 'web-1', by: 'ops@desk', text: 'step 1/2 exit 0: $ printf a run=forged vm=x by=y z' });
  assert.equal(parseAuditLine('some other program wrote this'), undefined);
});

test('--since reaches journalctl as one quoted argument', () => {
  assert.match(logCommand("-2h'; touch /tmp/x"), /'--since=-2h'\\''; touch \/tmp\/x'/);
  assert.doesNotMatch(logCommand(undefined), /--since/);
});
