import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDrbdadmStatus } from '../../../src/probe/parsers/drbdadm-status.js';
import { fixture, real, scenario } from './helpers.js';

test('8.4 primary and secondary', () => {
  const primary = parseDrbdadmStatus(real('drbdadm-status.84.primary.txt'));
  assert.deepEqual(primary.problems, []);
  assert.deepEqual(primary.value, [{
    name: 'test-vm',
    role: 'Primary',
    devices: [{ volume: 0, minor: undefined, diskState: 'UpToDate', sizeBytes: undefined, backingDisk: undefined, open: undefined }],
    connections: [{
      name: 'peer', peerNodeId: undefined, connection: 'Connected', role: 'Secondary', splitBrainReported: false,
      peerDevices: [{ volume: 0, replication: 'Established', diskState: 'UpToDate', syncPercent: undefined, outOfSyncBytes: undefined }],
    }],
  }]);
  const [secondary] = parseDrbdadmStatus(real('drbdadm-status.84.secondary.txt')).value;
  assert.equal(secondary?.role, 'Secondary');
  assert.equal(secondary?.connections[0]?.role, 'Primary');
});

test('8.4 resync shows done:', () => {
  const [resource] = parseDrbdadmStatus(scenario('resync.synctarget.pm-1.txt').status).value;
  assert.equal(resource?.devices[0]?.diskState, 'Inconsistent');
  assert.deepEqual(resource?.connections[0]?.peerDevices[0], {
    volume: 0, replication: 'SyncTarget', diskState: 'UpToDate', syncPercent: 90.62, outOfSyncBytes: undefined,
  });
  const [source] = parseDrbdadmStatus(scenario('resync.syncsource.pm-2.txt').status).value;
  assert.equal(source?.connections[0]?.peerDevices[0]?.syncPercent, 95.7);
});

test('8.4 not connected: a Connecting peer without role; StandAlone shows no peer at all', () => {
  const [waiting] = parseDrbdadmStatus(scenario('disconnected.wfconnection.pm-2.txt').status).value;
  assert.deepEqual(waiting?.connections.map((c) => [c.name, c.connection, c.role, c.peerDevices.length]), [['peer', 'Connecting', 'Unknown', 0]]);
  const [split] = parseDrbdadmStatus(scenario('splitbrain.pm-1.txt').status).value;
  assert.equal(split?.role, 'Secondary');
  assert.equal(split?.devices[0]?.diskState, 'UpToDate');
  assert.deepEqual(split?.connections, []);
});

test('DRBD 9 (hand-written): named peers, implicit Established, done:, Connecting, StandAlone', () => {
  const { value, problems } = parseDrbdadmStatus(fixture('drbd9/status.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value.map((r) => r.name), ['db-1', 'test-vm', 'web-1']);
  const testVm = value[1]!;
  assert.equal(testVm.devices[0]?.open, true);
  assert.deepEqual(testVm.connections.map((c) => [c.name, c.connection, c.role]), [
    ['pm-2', 'Connected', 'Secondary'], ['pm-3', 'Connected', 'Secondary'],
  ]);
  assert.deepEqual(testVm.connections.map((c) => [c.peerDevices[0]?.replication, c.peerDevices[0]?.diskState, c.peerDevices[0]?.syncPercent]), [
    ['Established', 'UpToDate', undefined], ['SyncSource', 'Inconsistent', 45.1],
  ]);
  assert.equal(value[0]?.connections[0]?.connection, 'Connecting');
  assert.equal(value[2]?.connections[0]?.connection, 'StandAlone');
});

test('DRBD 9 multi-volume layout and wrapped continuation lines', () => {
  const text = [
    'r0 role:Secondary suspended:user',
    '  volume:0 disk:UpToDate',
    '  volume:1 disk:Inconsistent',
    '  pm-2 node-id:1',
    '        role:Primary',
    '    volume:0 peer-disk:UpToDate',
    '    volume:1 replication:SyncTarget peer-disk:UpToDate',
    '        done:12.50',
    '',
  ].join('\n');
  const { value, problems } = parseDrbdadmStatus(text);
  assert.deepEqual(problems, []);
  assert.deepEqual(value[0]?.devices.map((d) => [d.volume, d.diskState]), [[0, 'UpToDate'], [1, 'Inconsistent']]);
  assert.equal(value[0]?.connections[0]?.peerNodeId, 1);
  assert.equal(value[0]?.connections[0]?.role, 'Primary');
  assert.deepEqual(value[0]?.connections[0]?.peerDevices.map((p) => [p.volume, p.replication, p.syncPercent]), [
    [0, 'Established', undefined], [1, 'SyncTarget', 12.5],
  ]);
});

test('no resources, and stray indented lines', () => {
  assert.deepEqual(parseDrbdadmStatus('# No currently configured DRBD found.\n').value, []);
  const { problems } = parseDrbdadmStatus('  disk:UpToDate\n');
  assert.match(problems[0] ?? '', /before any resource/);
});
