import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDrbdConfig, parseDrbdsetupShow } from '../../../src/probe/parsers/drbd-config.js';
import { fixture, real } from './helpers.js';

const PM1 = { name: 'pm-1', nodeId: undefined, address: '10.99.0.11', port: 7788, device: '/dev/drbd10', minor: 10, disk: '/dev/vg-pmc/test-vm' };
const PM2 = { ...PM1, name: 'pm-2', address: '10.99.0.12' };

test('real drbdadm dump (8.4 layout): hosts, minor 10, port 7788, allow-two-primaries, file', () => {
  const { value, problems } = parseDrbdConfig(real('drbdadm-dump.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value, [{
    name: 'test-vm',
    configFile: '/etc/drbd.d/test-vm.res',
    hosts: [PM1, PM2],
    allowTwoPrimaries: true,
    volumeCount: 1,
  }]);
});

test('the old bash tool\'s .res: top-level device/disk are inherited by the on sections', () => {
  const { value, problems } = parseDrbdConfig(fixture('prior-system/test-vm.res'), '/etc/drbd.d/test-vm.res');
  assert.deepEqual(problems, []);
  assert.deepEqual(value, [{
    name: 'test-vm', configFile: '/etc/drbd.d/test-vm.res', hosts: [PM1, PM2], allowTwoPrimaries: true, volumeCount: 1,
  }]);
});

test('a single-node .res of the old tool', () => {
  const [resource] = parseDrbdConfig(fixture('prior-system/single-vm.res'), 'single-vm.res').value;
  assert.deepEqual(resource?.hosts.map((h) => [h.name, h.minor, h.port, h.disk]), [['pm-2', 20, 7798, '/dev/vg-pmc/single-vm']]);
});

test('a file cut off mid-way: what is there is read, and the cut is a problem', () => {
  const { value, problems } = parseDrbdConfig(fixture('prior-system/broken-vm.res'), '/etc/drbd.d/broken-vm.res');
  assert.equal(value[0]?.name, 'broken-vm');
  assert.deepEqual(value[0]?.hosts.map((h) => [h.name, h.address, h.port, h.minor]), [['pm-1', '10.99.0.11', 7790, 12]]);
  assert.match(problems.join('\n'), /broken-vm\.res: missing "}"/);
});

test('DRBD 9 dump (hand-written): node-id, connection-mesh, connection host addresses, volume blocks', () => {
  const { value, problems } = parseDrbdConfig(fixture('drbd9/dump.txt'));
  assert.deepEqual(problems, []);
  assert.deepEqual(value.map((r) => [r.name, r.configFile, r.allowTwoPrimaries]), [
    ['db-1', '/etc/drbd.d/db-1.res', false],
    ['test-vm', '/etc/drbd.d/test-vm.res', true],
    ['web-1', '/etc/drbd.d/web-1.res', false],
  ]);
  const testVm = value[1]!;
  assert.deepEqual(testVm.hosts.map((h) => [h.name, h.nodeId, h.address, h.port, h.minor, h.device]), [
    ['pm-1', 0, '10.99.0.11', 7788, 10, '/dev/drbd10'],
    ['pm-2', 1, '10.99.0.12', 7788, 10, '/dev/drbd10'],
    ['pm-3', 2, '10.99.0.13', 7788, 10, '/dev/drbd10'],
  ]);
  const web = value[2]!;
  assert.deepEqual(web.hosts.map((h) => [h.name, h.address, h.port, h.minor, h.disk]), [
    ['pm-1', '10.99.0.11', 7789, 11, '/dev/vg-pmc/web-1'],
    ['pm-3', '10.99.0.13', 7789, 11, '/dev/vg-pmc/web-1'],
  ]);
});

test('a host with its own minor does not keep half of the resource-level device', () => {
  const text = 'resource r { device /dev/drbd10 minor 10; disk /dev/vg/r; on a { address 10.0.0.1:7788; } on b { device minor 11; address 10.0.0.2:7788; } }';
  assert.deepEqual(parseDrbdConfig(text).value[0]?.hosts.map((h) => [h.name, h.device, h.minor, h.disk]), [
    ['a', '/dev/drbd10', 10, '/dev/vg/r'], ['b', '/dev/drbd11', 11, '/dev/vg/r'],
  ]);
});

test('allow-two-primaries: flag form, common default, and a resource saying no', () => {
  const text = `
common { net { allow-two-primaries; } }
resource a { device /dev/drbd1; disk /dev/vg/a; meta-disk internal; on n1 { address 10.0.0.1:7001; } }
resource b { device minor 2; disk /dev/vg/b; net { allow-two-primaries no; } on n1 { address [fd00::1]:7002; } }
`;
  const { value, problems } = parseDrbdConfig(text);
  assert.deepEqual(problems, []);
  assert.equal(value[0]?.allowTwoPrimaries, true);
  assert.deepEqual([value[0]?.hosts[0]?.minor, value[0]?.hosts[0]?.device], [1, '/dev/drbd1']);
  assert.equal(value[1]?.allowTwoPrimaries, false);
  assert.deepEqual([value[1]?.hosts[0]?.address, value[1]?.hosts[0]?.port, value[1]?.hosts[0]?.device], ['fd00::1', 7002, '/dev/drbd2']);
});

test('what pmc does not manage is reported: several volumes, floating, no on section', () => {
  const text = `
resource multi { on n1 { volume 0 { device minor 1; disk /dev/a; } volume 1 { device minor 2; disk /dev/b; } address 10.0.0.1:7000; } }
resource float { floating ipv4 10.0.0.1:7000 { device minor 3; disk /dev/c; } }
bogus;
`;
  const { value, problems } = parseDrbdConfig(text, 'x.res');
  assert.equal(value[0]?.volumeCount, 2);
  assert.equal(value[0]?.hosts[0]?.minor, 1);
  const all = problems.join('\n');
  assert.match(all, /multi has 2 volumes/);
  assert.match(all, /"floating" sections are not supported/);
  assert.match(all, /float has no "on <host>" section/);
  assert.match(all, /unexpected "bogus" at top level/);
});

test('drbdsetup show: the live allow-two-primaries (8.4 real, DRBD 9 hand-written)', () => {
  assert.deepEqual([...parseDrbdsetupShow(real('drbdsetup-show.84.txt')).value], [['test-vm', true]]);
  const nine = parseDrbdsetupShow(fixture('drbd9/show.txt'));
  assert.deepEqual(nine.problems, []);
  assert.deepEqual([...nine.value], [['db-1', false], ['test-vm', true], ['web-1', false]]);
});
