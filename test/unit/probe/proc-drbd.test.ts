import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProcDrbd } from '../../../src/probe/parsers/proc-drbd.js';
import { fixture, real, scenario } from './helpers.js';

test('connected primary (pm-2): minor 10, Primary/Secondary, UpToDate/UpToDate', () => {
  const { value, problems } = parseProcDrbd(real('proc-drbd.connected-primary.txt'));
  assert.deepEqual(problems, []);
  assert.equal(value.version, '8.4.11');
  assert.deepEqual(value.devices, [{
    minor: 10, connection: 'Connected', replication: 'Established', role: 'Primary', peerRole: 'Secondary',
    diskState: 'UpToDate', peerDiskState: 'UpToDate', syncPercent: undefined, outOfSyncBytes: 0,
  }]);
});

test('connected secondary (pm-1)', () => {
  const [device] = parseProcDrbd(real('proc-drbd.connected-secondary.txt')).value.devices;
  assert.equal(device?.role, 'Secondary');
  assert.equal(device?.peerRole, 'Primary');
});

test('resync: sync\'ed percentage and out-of-sync amount on both sides', () => {
  const target = parseProcDrbd(scenario('resync.synctarget.pm-1.txt').procDrbd);
  assert.deepEqual(target.problems, []);
  assert.deepEqual(target.value.devices[0], {
    minor: 10, connection: 'Connected', replication: 'SyncTarget', role: 'Secondary', peerRole: 'Primary',
    diskState: 'Inconsistent', peerDiskState: 'UpToDate', syncPercent: 49.1, outOfSyncBytes: 106496 * 1024,
  });
  const source = parseProcDrbd(scenario('resync.syncsource.pm-2.txt').procDrbd).value.devices[0];
  assert.equal(source?.replication, 'SyncSource');
  assert.equal(source?.syncPercent, 76.5);
  assert.equal(source?.peerDiskState, 'Inconsistent');
});

test('8.4 cs: words become DRBD 9 connection + replication', () => {
  const standalone = parseProcDrbd(scenario('disconnected.standalone.pm-1.txt').procDrbd).value.devices[0];
  assert.equal(standalone?.connection, 'StandAlone');
  assert.equal(standalone?.replication, 'Off');
  assert.equal(standalone?.peerRole, 'Unknown');
  assert.equal(standalone?.peerDiskState, 'DUnknown');
  const waiting = parseProcDrbd(scenario('disconnected.wfconnection.pm-2.txt').procDrbd).value.devices[0];
  assert.equal(waiting?.connection, 'Connecting');
  assert.equal(waiting?.role, 'Primary');
});

test('split brain looks like a plain StandAlone here (10 MiB out of sync on pm-1)', () => {
  const device = parseProcDrbd(scenario('splitbrain.pm-1.txt').procDrbd).value.devices[0];
  assert.equal(device?.connection, 'StandAlone');
  assert.equal(device?.diskState, 'UpToDate');
  assert.equal(device?.outOfSyncBytes, 10240 * 1024);
});

test('DRBD 9 /proc/drbd: version only, no devices (hand-written fixture)', () => {
  const { value, problems } = parseProcDrbd(fixture('drbd9/proc-drbd.txt'));
  assert.deepEqual(problems, []);
  assert.equal(value.version, '9.2.8');
  assert.deepEqual(value.devices, []);
});

test('unconfigured minors are left out; malformed lines and unknown words are problems', () => {
  const text = 'version: 8.4.11 (api:1/proto:86-101)\n'
    + ' 3: cs:Unconfigured\n'
    + ' 4: cs:Connected\n'
    + ' 5: cs:Connected ro:Primary/Secondary ds:UpToDate/Wobbly C r-----\n';
  const { value, problems } = parseProcDrbd(text);
  assert.deepEqual(value.devices.map((d) => d.minor), [5]);
  assert.equal(value.devices[0]?.peerDiskState, 'DUnknown');
  assert.match(problems.join('\n'), /minor 4: no ro:\/ds:/);
  assert.match(problems.join('\n'), /unknown DRBD disk state "Wobbly"/);
});
