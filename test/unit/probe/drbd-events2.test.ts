import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDrbdEvents2 } from '../../../src/probe/parsers/drbd-events2.js';
import { fixture, real, scenario } from './helpers.js';

test('8.4 connected (pm-2): Primary, minor 10, peer Secondary Established UpToDate', () => {
  const { value, problems } = parseDrbdEvents2(real('drbdsetup-events2-now-statistics.84.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value, [{
    name: 'test-vm',
    role: 'Primary',
    devices: [{
      volume: 0, minor: 10, diskState: 'UpToDate', sizeBytes: 1048508 * 1024, backingDisk: undefined, open: undefined,
    }],
    connections: [{
      name: 'peer', peerNodeId: 0, connection: 'Connected', role: 'Secondary', splitBrainReported: false,
      peerDevices: [{ volume: 0, replication: 'Established', diskState: 'UpToDate', syncPercent: undefined, outOfSyncBytes: 0 }],
    }],
  }]);
});

test('8.4 StandAlone has no conn-name; the peer-device still joins its connection', () => {
  const [resource] = parseDrbdEvents2(scenario('disconnected.standalone.pm-1.txt').events2).value;
  assert.equal(resource?.connections.length, 1);
  assert.equal(resource?.connections[0]?.name, undefined);
  assert.equal(resource?.connections[0]?.connection, 'StandAlone');
  assert.equal(resource?.connections[0]?.role, 'Unknown');
  assert.deepEqual(resource?.connections[0]?.peerDevices.map((p) => [p.replication, p.diskState]), [['Off', 'DUnknown']]);
});

test('8.4 WFConnection is printed as Connecting', () => {
  const [resource] = parseDrbdEvents2(scenario('disconnected.wfconnection.pm-2.txt').events2).value;
  assert.equal(resource?.role, 'Primary');
  assert.equal(resource?.connections[0]?.connection, 'Connecting');
});

test('8.4 resync: SyncTarget, Inconsistent, out-of-sync, but no done: on 8.4', () => {
  const [resource] = parseDrbdEvents2(scenario('resync.synctarget.pm-1.txt').events2).value;
  assert.equal(resource?.devices[0]?.diskState, 'Inconsistent');
  const peer = resource?.connections[0]?.peerDevices[0];
  assert.equal(peer?.replication, 'SyncTarget');
  assert.equal(peer?.diskState, 'UpToDate');
  assert.equal(peer?.syncPercent, undefined);
  assert.equal(peer?.outOfSyncBytes, 98304 * 1024);
});

test('8.4 split brain: StandAlone / UpToDate, nothing says split brain', () => {
  const [pm2] = parseDrbdEvents2(scenario('splitbrain.pm-2.txt').events2).value;
  assert.equal(pm2?.role, 'Primary');
  assert.equal(pm2?.devices[0]?.diskState, 'UpToDate');
  assert.equal(pm2?.connections[0]?.connection, 'StandAlone');
  assert.equal(pm2?.connections[0]?.splitBrainReported, false);
  const [pm1] = parseDrbdEvents2(scenario('splitbrain.pm-1.txt').events2).value;
  assert.equal(pm1?.connections[0]?.peerDevices[0]?.outOfSyncBytes, 10240 * 1024);
});

test('DRBD 9 (hand-written): several peers, done:, backing_dev, open, sync-state:SplitBrain', () => {
  const { value, problems } = parseDrbdEvents2(fixture('drbd9/events2.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value.map((r) => r.name), ['db-1', 'test-vm', 'web-1']);
  const testVm = value.find((r) => r.name === 'test-vm')!;
  assert.equal(testVm.devices[0]?.backingDisk, '/dev/vg-pmc/test-vm');
  assert.equal(testVm.devices[0]?.open, true);
  assert.deepEqual(testVm.connections.map((c) => [c.name, c.peerNodeId, c.connection, c.role]), [
    ['pm-2', 1, 'Connected', 'Secondary'], ['pm-3', 2, 'Connected', 'Secondary'],
  ]);
  const pm3 = testVm.connections[1]?.peerDevices[0];
  assert.equal(pm3?.replication, 'SyncSource');
  assert.equal(pm3?.diskState, 'Inconsistent');
  assert.equal(pm3?.syncPercent, 45.1);
  const web = value.find((r) => r.name === 'web-1')!;
  assert.equal(web.connections[0]?.connection, 'StandAlone');
  assert.equal(web.connections[0]?.splitBrainReported, true);
  assert.equal(value.find((r) => r.name === 'db-1')?.connections[0]?.connection, 'Connecting');
});

test('lines that are not events2 --now output are problems, the rest still parses', () => {
  const text = 'garbage here\nchange resource name:x role:Primary\nexists resource role:Primary\n'
    + real('drbdsetup-events2-now-statistics.84.txt');
  const { value, problems } = parseDrbdEvents2(text);
  assert.equal(value[0]?.name, 'test-vm');
  assert.equal(problems.length, 3);
});
