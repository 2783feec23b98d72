import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProbeOutput } from '../../../src/probe/gather.js';
import type { ProbeOptions } from '../../../src/probe/types.js';
import { fixture, frame, lvmFullreport, real, scenario } from './helpers.js';

const OPTS: ProbeOptions = { volumeGroup: 'vg-pmc', bridge: 'br0', backupDir: '/pmc-vm-backup' };
const BRIDGE_JSON = '[{"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP","linkinfo":{"info_kind":"bridge"}}]\n';

interface NodeState {
  hostname: string;
  procDrbd: string;
  events2: string;
  kernelLog?: string;
  show?: string;
  dump?: string;
  domainState: string;
  dominfo: string;
  list: string;
}

/** A node's full probe output, section by section, from the real files. */
function probeOutput(node: NodeState, replace: Record<string, string> = {}): string {
  const sections: [string, string][] = [
    ['hostname', `${node.hostname}\n`],
    ['kernel-release', '6.1.0-18-cloud-amd64\n'],
    ['meminfo', real('proc-meminfo.txt')],
    ['cpus', '2\n'],
    ['tools', 'xdelta3 yes\nrsync yes\nzstd no\n'],
    ['backup-dir', ''],
    ['authority', ''],
    ['lvm', lvmFullreport()],
    ['bridge', BRIDGE_JSON],
    ['proc-drbd', node.procDrbd],
    ['drbdadm-version', real('drbdadm-version.txt')],
    ['drbd-events2', node.events2],
    ['drbdsetup-show', node.show ?? real('drbdsetup-show.84.txt')],
    ['kernel-log', node.kernelLog ?? ''],
    ['drbd-res-files', '/etc/drbd.d/test-vm.res\n'],
    ['drbdadm-dump', node.dump ?? real('drbdadm-dump.txt')],
    ['virsh-version', real('virsh-version.txt')],
    ['virsh-nodeinfo', real('virsh-nodeinfo.txt')],
    ['virsh-list', node.list],
    ['virsh-names', real('virsh-list-all-name.txt')],
    ['domain-xml:test-vm', real('virsh-dumpxml.inactive.xml')],
    ['domain-info:test-vm', node.dominfo],
    ['domain-state:test-vm', node.domainState],
  ];
  return sections.map(([name, body]) => replace[name] ?? frame(name, body)).join('');
}

const PM2: NodeState = {
  hostname: 'pm-2',
  procDrbd: real('proc-drbd.connected-primary.txt'),
  events2: real('drbdsetup-events2-now-statistics.84.txt'),
  domainState: real('virsh-domstate-reason.running.txt'),
  dominfo: real('virsh-dominfo.running.txt'),
  list: real('virsh-list-all.pm-2.txt'),
};

function pm1(file: string): NodeState {
  const parts = scenario(file);
  return {
    hostname: 'pm-1',
    procDrbd: parts.procDrbd,
    events2: parts.events2,
    kernelLog: parts.kernelLog.split('\n').filter((l) => l.includes('Split-Brain')).map((l) => `${l}\n`).join(''),
    domainState: real('virsh-domstate-reason.shutoff.txt'),
    dominfo: real('virsh-dominfo.shutoff.txt'),
    list: real('virsh-list-all.pm-1.txt'),
  };
}

test('pm-2 running test-vm: every fact, and no problems', () => {
  const facts = parseProbeOutput(probeOutput(PM2), OPTS);
  assert.deepEqual(facts.problems, []);
  assert.equal(facts.hostname, 'pm-2');
  assert.equal(facts.kernelRelease, '6.1.0-18-cloud-amd64');
  assert.deepEqual(facts.memory, { totalBytes: 2027016 * 1024, availableBytes: 1724508 * 1024 });
  assert.equal(facts.cpus, 2);
  assert.deepEqual(facts.vg, { name: 'vg-pmc', sizeBytes: 4290772992, freeBytes: 3217031168, extentSizeBytes: undefined });
  assert.deepEqual(facts.lvs.map((lv) => [lv.path, lv.sizeBytes, lv.open]), [['/dev/vg-pmc/test-vm', 1073741824, true]]);
  assert.deepEqual(facts.bridge, { name: 'br0', present: true, isBridge: true, up: true, carrier: true, operState: 'UP' });
  assert.deepEqual(facts.drbd, { moduleLoaded: true, kernelVersion: '8.4.11', utilsVersion: '9.22.0', minorsInKernel: [10] });
  assert.deepEqual(facts.drbdResourceFiles, ['/etc/drbd.d/test-vm.res']);
  assert.deepEqual(facts.splitBrainMinors, []);
  assert.deepEqual(facts.tools, { xdelta3: true, rsync: true, zstd: false });
  assert.equal(facts.backupDirExists, true);
  assert.deepEqual(facts.libvirt, {
    active: true,
    version: { library: '9.0.0', hypervisor: { name: 'QEMU', version: '7.2.22' } },
    nodeInfo: {
      cpuModel: 'x86_64', cpus: 2, cpuMhz: 2596, sockets: 1, coresPerSocket: 2, threadsPerCore: 1, numaCells: 1, memoryBytes: 2027016 * 1024,
    },
  });

  assert.deepEqual(facts.drbdResources, [{
    name: 'test-vm',
    configured: true,
    up: true,
    configFile: '/etc/drbd.d/test-vm.res',
    minor: 10,
    device: '/dev/drbd10',
    disk: '/dev/vg-pmc/test-vm',
    address: '10.99.0.12',
    port: 7788,
    hosts: [
      { name: 'pm-1', nodeId: undefined, address: '10.99.0.11', port: 7788, device: '/dev/drbd10', minor: 10, disk: '/dev/vg-pmc/test-vm' },
      { name: 'pm-2', nodeId: undefined, address: '10.99.0.12', port: 7788, device: '/dev/drbd10', minor: 10, disk: '/dev/vg-pmc/test-vm' },
    ],
    allowTwoPrimaries: true,
    allowTwoPrimariesLive: true,
    role: 'Primary',
    diskState: 'UpToDate',
    sizeBytes: 1048508 * 1024,
    peers: [{
      node: 'pm-1', nodeId: 0, connection: 'Connected', role: 'Secondary', replication: 'Established', diskState: 'UpToDate',
      syncPercent: undefined, outOfSyncBytes: 0, splitBrainReported: false,
    }],
    splitBrain: false,
    lastConnectionLoss: undefined,
  }]);

  assert.deepEqual(facts.domains, [{
    name: 'test-vm',
    uuid: 'd2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab',
    state: 'running',
    stateReason: 'migrated',
    memoryBytes: 64 * 1024 * 1024,
    vcpus: 1,
    disks: [{ device: 'disk', type: 'block', source: '/dev/drbd10', target: 'vda', bus: 'virtio' }],
    interfaces: [{ type: 'bridge', mac: '52:54:00:ff:00:0a', bridge: 'br0', network: undefined, model: 'virtio' }],
    autostart: false,
    persistent: true,
    xml: real('virsh-dumpxml.inactive.xml'),
  }]);
});

test('pm-1 after the real split brain: StandAlone + kernel log = split brain on minor 10', () => {
  const facts = parseProbeOutput(probeOutput(pm1('splitbrain.pm-1.txt')), OPTS);
  assert.deepEqual(facts.problems, []);
  assert.deepEqual(facts.splitBrainMinors, [10]);
  const [resource] = facts.drbdResources;
  assert.equal(resource?.splitBrain, true);
  assert.equal(resource?.address, '10.99.0.11');
  assert.equal(resource?.role, 'Secondary');
  assert.deepEqual(resource?.peers.map((p) => [p.node, p.connection, p.role, p.diskState, p.outOfSyncBytes]), [
    ['pm-2', 'StandAlone', 'Unknown', 'DUnknown', 10240 * 1024],
  ]);
  assert.deepEqual(facts.domains.map((d) => [d.name, d.state, d.stateReason]), [['test-vm', 'shut off', 'migrated']]);
});

test('a plain disconnect is StandAlone too, but without a logged split brain it is not one', () => {
  const facts = parseProbeOutput(probeOutput(pm1('disconnected.standalone.pm-1.txt')), OPTS);
  assert.equal(facts.drbdResources[0]?.peers[0]?.connection, 'StandAlone');
  assert.equal(facts.drbdResources[0]?.splitBrain, false);
});

test('an old split brain that was resolved (connected again) is not a split brain now', () => {
  const node = {
    ...pm1('splitbrain.pm-1.txt'),
    procDrbd: real('proc-drbd.connected-secondary.txt'),
    events2: real('drbdsetup-events2-now-statistics.84.txt'),
  };
  const facts = parseProbeOutput(probeOutput(node), OPTS);
  assert.deepEqual(facts.splitBrainMinors, [10], 'the log still has it');
  assert.equal(facts.drbdResources[0]?.peers[0]?.connection, 'Connected');
  assert.equal(facts.drbdResources[0]?.splitBrain, false);
});

test('pm-1 during the resync: SyncTarget, Inconsistent, 49.1 % from /proc/drbd (8.4 events2 has no done:)', () => {
  const facts = parseProbeOutput(probeOutput(pm1('resync.synctarget.pm-1.txt')), OPTS);
  const [resource] = facts.drbdResources;
  assert.equal(resource?.diskState, 'Inconsistent');
  assert.deepEqual(resource?.peers.map((p) => [p.node, p.replication, p.diskState, p.syncPercent, p.outOfSyncBytes]), [
    ['pm-2', 'SyncTarget', 'UpToDate', 49.1, 98304 * 1024],
  ]);
});

test('events2 failing: the state comes from /proc/drbd alone, and the failure is a problem', () => {
  const output = probeOutput(pm1('resync.synctarget.pm-1.txt'), {
    'drbd-events2': frame('drbd-events2', '', 20, "Couldn't connect to the drbd netlink family\n"),
  });
  const facts = parseProbeOutput(output, OPTS);
  const [resource] = facts.drbdResources;
  assert.equal(resource?.up, true);
  assert.equal(resource?.role, 'Secondary');
  assert.equal(resource?.diskState, 'Inconsistent');
  assert.deepEqual(resource?.peers.map((p) => [p.node, p.connection, p.role, p.replication, p.syncPercent]), [
    ['pm-2', 'Connected', 'Primary', 'SyncTarget', 49.1],
  ]);
  assert.deepEqual(facts.problems, ["drbd-events2: exit 20: Couldn't connect to the drbd netlink family"]);
});

test('drbdadm dump refused (one broken file): the raw .res files are read, old-tool format included', () => {
  const output = probeOutput(PM2, {
    'drbd-res-files': frame('drbd-res-files', '/etc/drbd.d/broken-vm.res\n/etc/drbd.d/test-vm.res\n'),
    'drbdadm-dump': frame('drbdadm-dump', '', 10, "/etc/drbd.d/broken-vm.res:7: Parse error: 'resource' expected,\n")
      + frame('drbd-res-file:/etc/drbd.d/broken-vm.res', fixture('prior-system/broken-vm.res'))
      + frame('drbd-res-file:/etc/drbd.d/test-vm.res', fixture('prior-system/test-vm.res')),
  });
  const facts = parseProbeOutput(output, OPTS);
  assert.deepEqual(facts.drbdResourceFiles, ['/etc/drbd.d/broken-vm.res', '/etc/drbd.d/test-vm.res']);
  const byName = new Map(facts.drbdResources.map((r) => [r.name, r]));
  const testVm = byName.get('test-vm');
  assert.deepEqual([testVm?.configFile, testVm?.minor, testVm?.port, testVm?.disk, testVm?.role, testVm?.peers[0]?.node],
    ['/etc/drbd.d/test-vm.res', 10, 7788, '/dev/vg-pmc/test-vm', 'Primary', 'pm-1']);
  const broken = byName.get('broken-vm');
  assert.deepEqual([broken?.configured, broken?.up, broken?.minor, broken?.configFile], [true, false, 12, '/etc/drbd.d/broken-vm.res']);
  const problems = facts.problems.join('\n');
  assert.match(problems, /drbdadm-dump: exit 10: \/etc\/drbd.d\/broken-vm.res:7: Parse error.*reading the .res files directly/);
  assert.match(problems, /broken-vm\.res: missing "}"/);
  assert.match(problems, /resource broken-vm has no "on pm-2" section/);
});

test('a resource the kernel runs but no file describes, and a minor nobody claims', () => {
  const events2 = real('drbdsetup-events2-now-statistics.84.txt').replace(/test-vm/g, 'ghost');
  const procDrbd = `${real('proc-drbd.connected-primary.txt')} 11: cs:StandAlone ro:Secondary/Unknown ds:UpToDate/DUnknown   r-----\n`;
  const facts = parseProbeOutput(probeOutput({ ...PM2, events2, procDrbd }), OPTS);
  const ghost = facts.drbdResources.find((r) => r.name === 'ghost');
  assert.deepEqual([ghost?.configured, ghost?.up, ghost?.minor, ghost?.role, ghost?.peers[0]?.node], [false, true, 10, 'Primary', undefined]);
  const testVm = facts.drbdResources.find((r) => r.name === 'test-vm');
  assert.deepEqual([testVm?.configured, testVm?.up, testVm?.role, testVm?.peers], [true, false, undefined, []]);
  assert.deepEqual(facts.drbd.minorsInKernel, [10, 11]);
  assert.match(facts.problems.join('\n'), /resource ghost is up in the kernel but not in the configuration/);
  assert.match(facts.problems.join('\n'), /minor 11 is up in the kernel but no known resource uses it/);
});

test('DRBD 9 node pm-1 (hand-written fixtures): three resources, several peers, split brain by name', () => {
  const node: NodeState = {
    ...PM2,
    hostname: 'pm-1',
    procDrbd: fixture('drbd9/proc-drbd.txt'),
    events2: fixture('drbd9/events2.txt'),
    show: fixture('drbd9/show.txt'),
    dump: fixture('drbd9/dump.txt'),
    kernelLog: fixture('drbd9/kernel-log.txt').split('\n').filter((l) => l.includes('Split-Brain')).join('\n'),
  };
  const facts = parseProbeOutput(probeOutput(node), OPTS);
  assert.deepEqual(facts.problems, []);
  assert.equal(facts.drbd.kernelVersion, '9.2.8');
  assert.deepEqual(facts.drbd.minorsInKernel, [10, 11, 12]);
  assert.deepEqual(facts.splitBrainMinors, [11]);
  const byName = new Map(facts.drbdResources.map((r) => [r.name, r]));

  const testVm = byName.get('test-vm')!;
  assert.deepEqual([testVm.minor, testVm.port, testVm.address, testVm.role, testVm.allowTwoPrimaries, testVm.allowTwoPrimariesLive, testVm.splitBrain],
    [10, 7788, '10.99.0.11', 'Primary', true, true, false]);
  assert.deepEqual(testVm.peers.map((p) => [p.node, p.nodeId, p.replication, p.diskState, p.syncPercent]), [
    ['pm-2', 1, 'Established', 'UpToDate', undefined],
    ['pm-3', 2, 'SyncSource', 'Inconsistent', 45.1],
  ]);

  const web = byName.get('web-1')!;
  assert.deepEqual([web.minor, web.port, web.disk, web.splitBrain, web.allowTwoPrimariesLive], [11, 7789, '/dev/vg-pmc/web-1', true, false]);
  assert.deepEqual(web.peers.map((p) => [p.node, p.connection, p.splitBrainReported]), [['pm-3', 'StandAlone', true]]);

  const db = byName.get('db-1')!;
  assert.deepEqual(db.peers.map((p) => [p.node, p.connection, p.role]), [['pm-2', 'Connecting', 'Unknown']]);
  assert.equal(db.splitBrain, false);
});

/** PM2's probe with `virsh version` failing as given and no other virsh section, as the probe prints it then. */
function withoutLibvirt(exitCode: number, stderr: string) {
  return parseProbeOutput(probeOutput(PM2, {
    'virsh-version': frame('virsh-version', '', exitCode, stderr),
    'virsh-nodeinfo': '', 'virsh-list': '', 'virsh-names': '', 'domain-xml:test-vm': '', 'domain-info:test-vm': '', 'domain-state:test-vm': '',
  }), OPTS);
}

test('libvirt not running: no domains, one problem, everything else still read', () => {
  const facts = withoutLibvirt(1, "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n");
  assert.equal(facts.libvirt.active, false);
  assert.equal(facts.libvirt.failure, 'exit 1: error: failed to connect to the hypervisor');
  assert.deepEqual(facts.domains, []);
  assert.deepEqual(facts.problems, ['virsh-version: exit 1: error: failed to connect to the hypervisor']);
  assert.equal(facts.drbdResources[0]?.role, 'Primary');
});

test('a virsh that gives no answer in time is told apart from a libvirtd that is down', () => {
  const facts = withoutLibvirt(124, '');
  assert.equal(facts.libvirt.active, false);
  assert.equal(facts.libvirt.failure, 'timed out');
});

test('a domain whose XML cannot be read keeps what dominfo and domstate say', () => {
  const output = probeOutput(PM2, {
    'domain-xml:test-vm': frame('domain-xml:test-vm', '', 1, "error: failed to get domain 'test-vm'\n"),
  });
  const facts = parseProbeOutput(output, OPTS);
  assert.deepEqual(facts.domains.map((d) => [d.uuid, d.state, d.memoryBytes, d.vcpus, d.disks, d.xml]), [
    ['d2fd4e59-ee6a-4d1e-aee0-f5ae227a41ab', 'running', 64 * 1024 * 1024, 1, [], undefined],
  ]);
  assert.deepEqual(facts.problems, ["domain-xml:test-vm: exit 1: error: failed to get domain 'test-vm'"]);
});

test('output cut off in the middle of the domain XML: what came is used, the cut is a problem', () => {
  const full = probeOutput(PM2);
  const facts = parseProbeOutput(full.slice(0, full.indexOf('<devices>')), OPTS);
  assert.equal(facts.hostname, 'pm-2');
  assert.equal(facts.drbdResources[0]?.role, 'Primary');
  assert.deepEqual(facts.domains, []);
  const problems = facts.problems.join('\n');
  assert.match(problems, /domain-xml:test-vm: output cut off before the command finished/);
  assert.match(problems, /domain test-vm: neither its XML nor dominfo could be read/);
});

test('empty output: NodeFacts with nothing in it and a problem per missing section', () => {
  const facts = parseProbeOutput('', OPTS);
  assert.equal(facts.hostname, '');
  assert.equal(facts.memory, undefined);
  assert.equal(facts.cpus, undefined);
  assert.deepEqual(facts.drbdResources, []);
  assert.match(facts.problems.join('\n'), /hostname: missing from the probe output/);
});

test('the failover record and the kernel log of a lost connection reach the resource', () => {
  const node = { ...pm1('disconnected.standalone.pm-1.txt'), kernelLog: '[  901.2] drbd test-vm: peer( Primary -> Unknown ) conn( Connected -> NetworkFailure ) pdsk( UpToDate -> DUnknown ) \n' };
  const facts = parseProbeOutput(probeOutput(node, { authority: frame('authority', 'test-vm pm-2 2026-12-02T09:00:00Z\n') }), OPTS);
  assert.deepEqual(facts.authority, [{ resource: 'test-vm', lostNode: 'pm-2', at: '2026-12-02T09:00:00Z' }]);
  assert.deepEqual(facts.drbdResources[0]?.lastConnectionLoss, { peerRoleBefore: 'Primary', to: 'NetworkFailure', secondsSinceBoot: 901.2 });
  const broken = parseProbeOutput(probeOutput(node, { authority: frame('authority', 'test-vm\n') }), OPTS);
  assert.deepEqual(broken.authority, []);
  assert.match(broken.problems.join('\n'), /cannot read the failover record "test-vm"/);
});

test('storage.shared as an NFS node prints it: the mount, the marker and each disk file with its size', () => {
  const opts = { ...OPTS, sharedDir: '/var/lib/pmc-shared' };
  const listing = 'fstype nfs4\nmountpoint yes\nid 6f1c2a9e0b7d4e3f8a5c1d2e3f4a5b6c\nfile 10737418240 web.img\nfile 2147483648 db 2.img\n';
  const facts = parseProbeOutput(probeOutput(PM2) + frame('shared-storage', listing), opts);
  assert.deepEqual(facts.problems, []);
  assert.deepEqual(facts.shared, {
    directory: '/var/lib/pmc-shared', present: true, mountPoint: true, fsType: 'nfs4', id: '6f1c2a9e0b7d4e3f8a5c1d2e3f4a5b6c',
    files: [{ name: 'web.img', sizeBytes: 10737418240 }, { name: 'db 2.img', sizeBytes: 2147483648 }], failure: undefined,
  });
});

test('storage.shared on a hung NFS mount: the timeout is the failure, nothing is guessed', () => {
  const opts = { ...OPTS, sharedDir: '/var/lib/pmc-shared' };
  const facts = parseProbeOutput(probeOutput(PM2) + frame('shared-storage', '', 124), opts);
  assert.equal(facts.shared?.present, false);
  assert.equal(facts.shared?.failure, 'timed out');
  assert.deepEqual(facts.problems, ['shared-storage: cannot read /var/lib/pmc-shared: timed out']);
});
