// The domain XML vm add defines, read back with an XML parser (and with the probe's own
// parser, so pmc reads what it writes), with the CPU from the real cluster's cpu-baseline.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { domainXml, parseCapabilities, PMC_METADATA_NS, type DomainSpec } from '../../../src/ops/vm/domain-xml.js';
import { planVmAdd } from '../../../src/ops/vm/add-plan.js';
import { parseDomainXml } from '../../../src/probe/parsers/virsh.js';
import { PmcError } from '../../../src/util/errors.js';
import { CAPABILITIES_XML, cluster, config, CPU_BASELINE_XML, facts, MiB, request, UUID } from './vm-add-helpers.js';

const SPEC: DomainSpec = {
  name: 'web',
  uuid: UUID,
  type: 'qemu',
  arch: 'x86_64',
  memoryBytes: 128 * MiB,
  vcpus: 2,
  disk: { type: 'block', dev: '/dev/drbd100' },
  cdrom: '/var/lib/libvirt/images/pmc-iso/debian-12.iso',
  bridge: 'br0',
  mac: '52:54:00:aa:bb:cc',
  cpu: CPU_BASELINE_XML,
  ip: '10.0.0.21',
};

function parse(xml: string): Element {
  return new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
}

function all(root: Element, tag: string): Element[] {
  return Array.from(root.getElementsByTagName(tag));
}

function one(root: Element, path: string): Element {
  let node = root;
  for (const tag of path.split('/')) {
    const next = Array.from(node.childNodes).find((n) => n.nodeName === tag) as Element | undefined;
    assert.ok(next, `no <${tag}> in <${node.nodeName}> (path ${path})`);
    node = next;
  }
  return node;
}

describe('domain XML', () => {
  const root = parse(domainXml(SPEC));

  test('name, UUID, type, memory in KiB, vCPUs', () => {
    assert.equal(root.getAttribute('type'), 'qemu');
    assert.equal(one(root, 'name').textContent, 'web');
    assert.equal(one(root, 'uuid').textContent, UUID);
    assert.equal(one(root, 'memory').getAttribute('unit'), 'KiB');
    assert.equal(one(root, 'memory').textContent, String(128 * 1024));
    assert.equal(one(root, 'currentMemory').textContent, String(128 * 1024));
    assert.equal(one(root, 'vcpu').textContent, '2');
  });

  test('the DRBD device as a virtio disk, raw, without host caching', () => {
    const disk = all(root, 'disk').find((d) => d.getAttribute('device') === 'disk')!;
    assert.equal(disk.getAttribute('type'), 'block');
    assert.equal(one(disk, 'source').getAttribute('dev'), '/dev/drbd100');
    assert.equal(one(disk, 'target').getAttribute('bus'), 'virtio');
    assert.equal(one(disk, 'target').getAttribute('dev'), 'vda');
    assert.equal(one(disk, 'driver').getAttribute('type'), 'raw');
    assert.equal(one(disk, 'driver').getAttribute('cache'), 'none');
  });

  test('a shared VM\'s disk: a raw file, uncached (libvirt migrates a shared disk only then), read back as the probe sees it', () => {
    const xml = domainXml({ ...SPEC, disk: { type: 'file', file: '/var/lib/pmc-shared/web.img' } });
    const disk = all(parse(xml), 'disk').find((d) => d.getAttribute('device') === 'disk')!;
    assert.equal(disk.getAttribute('type'), 'file');
    assert.equal(one(disk, 'source').getAttribute('file'), '/var/lib/pmc-shared/web.img');
    assert.equal(one(disk, 'source').getAttribute('dev'), null);
    assert.deepEqual(['type', 'cache', 'io'].map((a) => one(disk, 'driver').getAttribute(a)), ['raw', 'none', 'native']);
    assert.deepEqual(parseDomainXml(xml).value?.disks[0], { device: 'disk', type: 'file', source: '/var/lib/pmc-shared/web.img', target: 'vda', bus: 'virtio' });
  });

  test('the ISO as a read-only CD-ROM, booted from after the (blank) disk', () => {
    const cdrom = all(root, 'disk').find((d) => d.getAttribute('device') === 'cdrom')!;
    assert.equal(one(cdrom, 'source').getAttribute('file'), SPEC.cdrom);
    assert.ok(all(cdrom, 'readonly').length === 1);
    assert.deepEqual(all(one(root, 'os'), 'boot').map((b) => b.getAttribute('dev')), ['hd', 'cdrom']);
    const without = parse(domainXml({ ...SPEC, cdrom: undefined }));
    assert.equal(all(without, 'disk').length, 1);
    assert.deepEqual(all(one(without, 'os'), 'boot').map((b) => b.getAttribute('dev')), ['hd']);
  });

  test('a virtio NIC on the bridge with the MAC', () => {
    const nic = one(root, 'devices/interface');
    assert.equal(nic.getAttribute('type'), 'bridge');
    assert.equal(one(nic, 'source').getAttribute('bridge'), 'br0');
    assert.equal(one(nic, 'mac').getAttribute('address'), '52:54:00:aa:bb:cc');
    assert.equal(one(nic, 'model').getAttribute('type'), 'virtio');
  });

  test('a serial console, and VNC on 127.0.0.1 only', () => {
    assert.equal(one(root, 'devices/serial').getAttribute('type'), 'pty');
    assert.equal(one(root, 'devices/console/target').getAttribute('type'), 'serial');
    const vnc = one(root, 'devices/graphics');
    assert.equal(vnc.getAttribute('type'), 'vnc');
    assert.equal(vnc.getAttribute('listen'), '127.0.0.1');
    assert.equal(one(vnc, 'listen').getAttribute('address'), '127.0.0.1');
  });

  test('the CPU is the one virsh cpu-baseline --migratable printed for both nodes', () => {
    const cpu = one(root, 'cpu');
    assert.equal(cpu.getAttribute('mode'), 'custom');
    assert.equal(cpu.getAttribute('match'), 'exact');
    assert.equal(one(cpu, 'model').textContent, 'qemu64');
    assert.equal(one(cpu, 'vendor').textContent, 'AMD');
    assert.deepEqual(all(cpu, 'feature').map((f) => `${f.getAttribute('policy')}:${f.getAttribute('name')}`),
      ['require:ht', 'require:hypervisor', 'require:lahf_lm', 'require:cmp_legacy']);
  });

  test('-a IP is kept in pmc\'s namespace under <metadata>', () => {
    const ip = root.getElementsByTagNameNS(PMC_METADATA_NS, 'ip')[0];
    assert.equal(ip?.textContent, '10.0.0.21');
    assert.equal(all(parse(domainXml({ ...SPEC, ip: undefined })), 'metadata').length, 0);
  });

  test('values are escaped by the serializer, never pasted: they read back unchanged', () => {
    const odd = `a<b>&"c'`;
    const back = parse(domainXml({ ...SPEC, ip: odd, cdrom: `/isos/${odd}.iso` }));
    assert.equal(back.getElementsByTagNameNS(PMC_METADATA_NS, 'ip')[0]?.textContent, odd);
    assert.equal(one(all(back, 'disk')[1]!, 'source').getAttribute('file'), `/isos/${odd}.iso`);
  });

  test('the probe reads it back as pmc wrote it', () => {
    const parsed = parseDomainXml(domainXml(SPEC));
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.value?.uuid, UUID);
    assert.equal(parsed.value?.memoryBytes, 128 * MiB);
    assert.equal(parsed.value?.vcpus, 2);
    assert.deepEqual(parsed.value?.disks.map((d) => `${d.device}:${d.source}:${d.bus}`),
      ['disk:/dev/drbd100:virtio', `cdrom:${SPEC.cdrom}:ide`]);
    assert.deepEqual(parsed.value?.interfaces, [{ type: 'bridge', mac: '52:54:00:aa:bb:cc', bridge: 'br0', network: undefined, model: 'virtio' }]);
  });

  test('cpu-baseline output that is not a <cpu> element is refused', () => {
    assert.throws(() => domainXml({ ...SPEC, cpu: '<capabilities/>' }), (err: PmcError) => err.code === 'PMC_E_REMOTE' && /not <cpu>/.test(err.message));
    assert.throws(() => domainXml({ ...SPEC, cpu: 'error: failed to get emulator capabilities' }), (err: PmcError) => err.code === 'PMC_E_REMOTE');
  });

  test('the plan defines the domain on the VM\'s own DRBD device and bridge', () => {
    const cfg = config();
    const plan = planVmAdd(cluster(cfg), cfg, request(), facts());
    const input = plan.steps.find((s) => s.input && 'text' in s.input && s.command.includes('virsh define'))!.input as { text: string };
    const defined = parse(input.text);
    assert.equal(defined.getAttribute('type'), 'qemu');
    assert.equal(one(all(defined, 'disk')[0]!, 'source').getAttribute('dev'), '/dev/drbd100');
    assert.equal(one(defined, 'devices/interface/source').getAttribute('bridge'), 'br0');
  });
});

describe('virsh capabilities', () => {
  test('the real node\'s: x86_64, with qemu and kvm domains', () => {
    assert.deepEqual(parseCapabilities(CAPABILITIES_XML, 'pm-1'), { arch: 'x86_64', domainTypes: ['qemu', 'kvm'] });
  });

  test('output without a host architecture is refused', () => {
    assert.throws(() => parseCapabilities('<capabilities><host/></capabilities>', 'pm-1'),
      (err: PmcError) => err.code === 'PMC_E_REMOTE' && /pm-1: virsh capabilities names no host architecture/.test(err.message));
  });
});
