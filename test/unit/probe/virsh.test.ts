import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  memoryToBytes, parseDomainXml, parseDominfo, parseDomstateReason, parseVirshListAll, parseVirshNodeinfo,
  parseVirshVersion,
} from '../../../src/probe/parsers/virsh.js';
import { real } from './helpers.js';

const TEST_VM = {
  name: 'test-vm',
  uuid: 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab',
  memoryBytes: 64 * 1024 * 1024,
  vcpus: 1,
  disks: [{ device: 'disk', type: 'block', source: '/dev/drbd10', target: 'vda', bus: 'virtio' }],
  interfaces: [{ type: 'bridge', mac: '52:54:00:ff:00:0a', bridge: 'br0', network: undefined, model: 'virtio' }],
};

test('real inactive and running domain XML: UUID, 64 MiB, disk /dev/drbd10, MAC on br0', () => {
  const inactive = parseDomainXml(real('virsh-dumpxml.inactive.xml'));
  assert.deepEqual(inactive, { value: TEST_VM, problems: [] });
  assert.deepEqual(parseDomainXml(real('virsh-dumpxml.running.xml')).value, TEST_VM);
});

test('cdrom without media, file and network disks, vcpu current, memory units', () => {
  const xml = `<domain type='kvm'>
  <name>web-1</name><uuid>00000000-0000-0000-0000-000000000001</uuid>
  <metadata><app:x xmlns:app="urn:x"><name>not me</name></app:x></metadata>
  <memory unit='GiB'>2</memory><vcpu current='2'>4</vcpu>
  <devices>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/a.qcow2'/><target dev='vdb'/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
  </devices>
</domain>`;
  const { value, problems } = parseDomainXml(xml);
  assert.deepEqual(problems, []);
  assert.equal(value?.name, 'web-1');
  assert.equal(value?.memoryBytes, 2 * 1024 ** 3);
  assert.equal(value?.vcpus, 2);
  assert.deepEqual(value?.disks, [
    { device: 'cdrom', type: 'file', source: undefined, target: 'sda', bus: 'sata' },
    { device: 'disk', type: 'file', source: '/var/lib/libvirt/images/a.qcow2', target: 'vdb', bus: undefined },
  ]);
  assert.deepEqual(value?.interfaces, [{ type: 'network', mac: '52:54:00:00:00:01', bridge: undefined, network: 'default', model: undefined }]);
  assert.equal(memoryToBytes('1', 'MB'), 1e6);
  assert.equal(memoryToBytes('1', null), 1024);
  assert.equal(memoryToBytes('1', 'parsecs'), undefined);
});

test('broken or foreign XML: undefined and a problem, no throw', () => {
  for (const xml of ['<domain><name>x</name>', 'error: failed to get domain', '<network><name>default</name></network>', '<domain/>']) {
    const { value, problems } = parseDomainXml(xml);
    assert.equal(value, undefined, xml);
    assert.equal(problems.length > 0, true, xml);
  }
});

test('real dominfo: running and shut off, autostart disabled, persistent', () => {
  const running = parseDominfo(real('virsh-dominfo.running.txt'));
  assert.deepEqual(running, {
    value: {
      name: 'test-vm', uuid: 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab', state: 'running', vcpus: 1,
      maxMemoryBytes: 65536 * 1024, persistent: true, autostart: false,
    },
    problems: [],
  });
  assert.equal(parseDominfo(real('virsh-dominfo.shutoff.txt')).value.state, 'shut off');
  const odd = parseDominfo('State: dancing\nAutostart: maybe\n');
  assert.equal(odd.value.state, undefined);
  assert.equal(odd.problems.length, 3);
});

test('real domstate --reason: running (migrated), shut off (migrated)', () => {
  assert.deepEqual(parseDomstateReason(real('virsh-domstate-reason.running.txt')).value, { state: 'running', reason: 'migrated' });
  assert.deepEqual(parseDomstateReason(real('virsh-domstate-reason.shutoff.txt')).value, { state: 'shut off', reason: 'migrated' });
  assert.deepEqual(parseDomstateReason('paused (I/O error)\n').value, { state: 'paused', reason: 'I/O error' });
  assert.equal(parseDomstateReason('shut off\n').value?.reason, undefined);
  assert.match(parseDomstateReason('error: no domain').problems[0] ?? '', /not understood/);
});

test('real virsh list --all on both nodes, and a name with spaces', () => {
  assert.deepEqual(parseVirshListAll(real('virsh-list-all.pm-1.txt')), { value: [{ id: undefined, name: 'test-vm', state: 'shut off' }], problems: [] });
  assert.deepEqual(parseVirshListAll(real('virsh-list-all.pm-2.txt')).value, [{ id: 1, name: 'test-vm', state: 'running' }]);
  const spaced = ' Id   Name          State\n-----------------------------\n 7    my web vm 1   in shutdown\n';
  assert.deepEqual(parseVirshListAll(spaced).value, [{ id: 7, name: 'my web vm 1', state: 'in shutdown' }]);
  assert.match(parseVirshListAll('error: failed to connect').problems[0] ?? '', /no "Id Name State" header/);
});

test('real virsh nodeinfo and virsh version', () => {
  assert.deepEqual(parseVirshNodeinfo(real('virsh-nodeinfo.txt')).value, {
    cpuModel: 'x86_64', cpus: 2, cpuMhz: 2596, sockets: 1, coresPerSocket: 2, threadsPerCore: 1, numaCells: 1,
    memoryBytes: 2027016 * 1024,
  });
  assert.deepEqual(parseVirshVersion(real('virsh-version.txt')), {
    value: { library: '9.0.0', hypervisor: { name: 'QEMU', version: '7.2.22' } }, problems: [],
  });
});
