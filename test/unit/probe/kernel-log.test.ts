import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSplitBrainLog } from '../../../src/probe/parsers/kernel-log.js';
import { fixture, scenario } from './helpers.js';

test('real 8.4 split brain on pm-1: minor 10, unresolved; helper lines not counted twice', () => {
  const { value, problems } = parseSplitBrainLog(scenario('splitbrain.pm-1.txt').kernelLog);
  assert.deepEqual(problems, []);
  assert.deepEqual(value, [{ minor: 10, resource: undefined, peer: undefined, unresolved: true, secondsSinceBoot: 254.512678 }]);
  assert.equal(parseSplitBrainLog(scenario('splitbrain.pm-2.txt').kernelLog).value[0]?.minor, 10);
});

test('DRBD 9 (hand-written): per resource and peer, no minor', () => {
  assert.deepEqual(parseSplitBrainLog(fixture('drbd9/kernel-log.txt')).value, [
    { minor: undefined, resource: 'web-1', peer: 'pm-3', unresolved: true, secondsSinceBoot: 1812.204511 },
  ]);
});

test('automatically and manually solved split brains are not unresolved', () => {
  const text = '[ 10.0] block drbd3: Split-Brain detected, 1 primaries, automatically solved. Sync from peer node\n'
    + '[ 20.0] block drbd4: Split-Brain detected, manually solved. Sync from this node\n';
  assert.deepEqual(parseSplitBrainLog(text).value.map((e) => [e.minor, e.unresolved]), [[3, false], [4, false]]);
});
