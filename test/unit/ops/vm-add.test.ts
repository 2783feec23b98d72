// The vm add planner on cluster states built from probe facts: what it refuses before anything
// changes, where it puts the VM, which DRBD minor and port it takes, and the exact plan.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dependencies, describePlan, type Plan } from '../../../src/ops/engine/plan.js';
import { parseVmAddArgs, type VmAddArgs } from '../../../src/ops/vm/add-args.js';
import { readLocalImage } from '../../../src/ops/vm/add.js';
import {
  checkVmAdd, chooseMac, drbdMetadataBytes, drbdUsableBytes, HOST_RESERVED_MEMORY, planVmAdd, type ImageFacts, type VmAddRequest,
} from '../../../src/ops/vm/add-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { PmcError } from '../../../src/util/errors.js';
import { domain, lv, nodeFacts, pairedVm, resource } from '../model/factory.js';
import { cluster, config, facts, GiB, MiB, request, UUID, withNodeDown } from './vm-add-helpers.js';
import { fixturePath } from '../probe/helpers.js';
import { tempDirFor } from '../../temp-dir.js';
import { refuses } from '../refusal.js';

const CFG = config();


function plan(parts: Partial<VmAddRequest> = {}, ...state: Record<string, Partial<NodeFacts>>[]): Plan {
  return planVmAdd(cluster(CFG, ...state), CFG, request(parts), facts());
}

function commands(p: Plan): string[] {
  return p.steps.map((s) => `[${s.node}] ${s.command}`);
}

const memory = (totalGiB: number) => ({ memory: { totalBytes: totalGiB * GiB, availableBytes: totalGiB * GiB - 256 * MiB } });

describe('vm add: the name', () => {
  const args = (vm: string): VmAddArgs => ({ vm, pm: ['pm-1'], size: '1', memory: '128M', cpus: 1, start: true, force: false, shared: false, dryRun: false });

  test('a hostile, too long, upper-case or reserved name is refused before any node is asked', () => {
    for (const bad of ['x;touch /tmp/p', 'a'.repeat(49), 'Web', '-web', 'all', '']) {
      refuses('PMC_E_NAME_INVALID', /VM name/, () => parseVmAddArgs(args(bad)));
    }
  });

  test('the planner refuses a hostile name too, whoever calls it', () => {
    refuses('PMC_E_NAME_INVALID', /x;touch/, () => plan({ name: 'x;touch /tmp/p' }));
  });

  test('a name that exists anywhere is refused: domain, LV or resource file, on any node', () => {
    refuses('PMC_E_VM_EXISTS', /web exists already: a domain on pm-3/, () => plan({}, { 'pm-3': { domains: [domain('web', 'shut off')] } }));
    refuses('PMC_E_VM_EXISTS', /the LV vg-pmc\/web on pm-2/, () => plan({}, { 'pm-2': { lvs: [lv('web')] } }));
    refuses('PMC_E_VM_EXISTS', /\/etc\/drbd\.d\/web\.res on pm-1/, () => plan({}, { 'pm-1': { drbdResourceFiles: ['/etc/drbd.d/web.res'] } }));
  });

  test('a name with the ignore prefix is refused', () => {
    refuses('PMC_E_VM_IGNORED', /ignore-me/, () => plan({ name: 'ignore-me' }));
  });
});

describe('vm add: arguments', () => {
  const base: VmAddArgs = { vm: 'web', size: '1', memory: '256M', cpus: 1, start: true, force: false, shared: false, dryRun: false };

  test('sizes are GiB by default and take units', () => {
    const r = parseVmAddArgs({ ...base, size: '1', memory: '256M' });
    assert.equal(r.sizeBytes, GiB);
    assert.equal(r.memoryBytes, 256 * MiB);
    assert.equal(parseVmAddArgs({ ...base, memory: '2' }).memoryBytes, 2 * GiB);
  });

  test('IP and MAC syntax is checked; -i names an image, never a path', () => {
    refuses('PMC_E_ADDRESS_INVALID', /not an IP address/, () => parseVmAddArgs({ ...base, ip: '10.0.0.300' }));
    refuses('PMC_E_ADDRESS_INVALID', /not six hex bytes/, () => parseVmAddArgs({ ...base, mac: '52:54:00:12:34' }));
    refuses('PMC_E_ADDRESS_INVALID', /multicast/, () => parseVmAddArgs({ ...base, mac: '01:00:5e:00:00:01' }));
    assert.equal(parseVmAddArgs({ ...base, mac: '52-54-00-AB-CD-EF' }).mac, '52:54:00:ab:cd:ef');
    assert.equal(parseVmAddArgs({ ...base, iso: 'ubuntu-2020' }).iso, 'ubuntu-2020.iso');
    assert.equal(parseVmAddArgs({ ...base, iso: 'ubuntu-2020.iso' }).iso, 'ubuntu-2020.iso');
    refuses('PMC_E_ISO_UNKNOWN', /not a path/, () => parseVmAddArgs({ ...base, iso: '../etc/shadow' }));
  });

  test('-c must be a whole number, --from needs --clone', () => {
    refuses('PMC_E_USAGE', /-c "0": must be a whole number of vCPUs/, () => parseVmAddArgs({ ...base, cpus: 0 }));
    refuses('PMC_E_USAGE', /--clone is missing/, () => parseVmAddArgs({ ...base, from: 'pm-1' }));
  });

  test('-p names known nodes, at most two, different', () => {
    refuses('PMC_E_NODE_UNKNOWN', /pm-9/, () => plan({ nodes: ['pm-9'] }));
    refuses('PMC_E_USAGE', /two different ones/, () => plan({ nodes: ['pm-1', 'pm-1'] }));
    refuses('PMC_E_USAGE', /two different ones/, () => plan({ nodes: ['pm-1', 'pm-2', 'pm-3'] }));
  });
});

describe('vm add: DRBD minor and port', () => {
  test('the lowest minor and port in range that no node uses, including nodes outside the pair and kernel-only minors', () => {
    const state = cluster(CFG,
      pairedVm('a', 'pm-1', 'pm-2', 100), // port 7878, outside the range
      pairedVm('b', 'pm-2', 'pm-3', 122), // port 7900
      { 'pm-3': { drbdResources: [resource('c', 'pm-3', ['pm-3', 'pm-2'], 123)], drbd: { ...nodeFacts('pm-3').drbd, minorsInKernel: [101] } } });
    const target = checkVmAdd(state, CFG, request({ nodes: ['pm-1', 'pm-2'] }));
    assert.deepEqual(target.drbd, { minor: 102, port: 7902 });
  });

  test('an exhausted range is refused', () => {
    const small = config('', ['pm-1', 'pm-2']);
    small.storage.drbd.minors = { first: 100, last: 100 };
    refuses('PMC_E_RANGE_EXHAUSTED', /every DRBD minor from 100 to 100/, () => checkVmAdd(cluster(small, pairedVm('a', 'pm-1', 'pm-2', 100)), small, request()));
  });
});

describe('vm add: placement without -p', () => {
  test('the two nodes with the most free memory (every defined VM counted), the first one primary', () => {
    const state = cluster(CFG,
      { 'pm-1': memory(4), 'pm-2': memory(2), 'pm-3': memory(4) },
      pairedVm('big', 'pm-1', 'pm-2', 100, GiB));
    const target = checkVmAdd(state, CFG, request({ nodes: [] }));
    assert.deepEqual(target.nodes, ['pm-3', 'pm-1']);
    assert.match(target.placement!, /placed on pm-3 \(3\.5 GiB memory, 6 GiB disk free\) and pm-1 \(2\.5 GiB memory/);
  });

  test('equal memory: the most free disk decides', () => {
    const vg = (freeGiB: number) => ({ vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: freeGiB * GiB, extentSizeBytes: 4 * MiB } });
    const target = checkVmAdd(cluster(CFG, { 'pm-1': vg(2), 'pm-2': vg(6), 'pm-3': vg(4) }), CFG, request({ nodes: [] }));
    assert.deepEqual(target.nodes, ['pm-2', 'pm-3']);
  });

  test('nodes that cannot hold it are passed over: too little memory, no bridge, not reachable', () => {
    const state = withNodeDown(CFG, 'pm-3', { 'pm-1': { bridge: { name: 'br0', present: false, isBridge: false, up: false, carrier: false, operState: undefined } } });
    refuses('PMC_E_CAPACITY', /no two nodes can hold web: pm-1: it has no bridge br0/, () => checkVmAdd(state, CFG, request({ nodes: [] })));
    const ok = checkVmAdd(withNodeDown(CFG, 'pm-2', { 'pm-1': memory(1) }), config(), request({ nodes: [], memoryBytes: 256 * MiB }));
    assert.ok(!ok.nodes.includes('pm-2'));
  });

  test('a one-node cluster gets a one-node VM, without DRBD', () => {
    const single = config('', ['pm-1']);
    const target = checkVmAdd(cluster(single), single, request({ nodes: [] }));
    assert.deepEqual(target.nodes, ['pm-1']);
    assert.equal(target.drbd, undefined);
  });
});

describe('vm add: capacity', () => {
  test('memory counts every VM defined for the node, running or not (the old tool counted none)', () => {
    // 2 GiB, of which 1.5 GiB are available right now: the shut-off VM does not use any yet.
    const state = cluster(CFG, pairedVm('idle', 'pm-3', 'pm-1', 100, GiB),
      { 'pm-3': { domains: [domain('idle', 'shut off', { minor: 100, memoryBytes: GiB })] } });
    const node = state.nodes.find((n) => n.name === 'pm-1')!;
    assert.equal(node.facts!.memory!.availableBytes, 1536 * MiB);
    refuses('PMC_E_CAPACITY', /pm-1 has 512 MiB of memory left for VMs \(2 GiB less 512 MiB for itself and 1 GiB for the VMs defined there\), 768 MiB needed/,
      () => checkVmAdd(state, CFG, request({ memoryBytes: 768 * MiB })));
    assert.equal(HOST_RESERVED_MEMORY, 512 * MiB);
  });

  test('too little space in the volume group, too many vCPUs', () => {
    const state = cluster(CFG, { 'pm-2': { vg: { name: 'vg-pmc', sizeBytes: 8 * GiB, freeBytes: 512 * MiB, extentSizeBytes: 4 * MiB } } });
    refuses('PMC_E_CAPACITY', /pm-2's volume group vg-pmc has 512 MiB free, 1 GiB needed/, () => checkVmAdd(state, CFG, request()));
    refuses('PMC_E_CAPACITY', /pm-1 has 2 CPUs, 4 vCPUs asked/, () => checkVmAdd(cluster(CFG), CFG, request({ vcpus: 4 })));
  });

  test('--force overrides the capacity checks, and the plan says which', () => {
    const p = plan({ memoryBytes: 4 * GiB, force: true });
    assert.ok(p.notes.some((n) => /^--force: pm-1 has .* 4 GiB needed/.test(n)), p.notes.join('\n'));
    assert.ok(p.steps.length > 0);
  });

  test('--force does not override anything else', () => {
    refuses('PMC_E_VM_EXISTS', /exists already/, () => plan({ force: true }, { 'pm-1': { lvs: [lv('web')] } }));
    refuses('PMC_E_STATE', /drbd kernel module is not loaded/,
      () => plan({ force: true }, { 'pm-2': { drbd: { moduleLoaded: false, kernelVersion: undefined, utilsVersion: undefined, minorsInKernel: [] } } }));
  });

  test('the size is rounded up to whole extents', () => {
    assert.equal(checkVmAdd(cluster(CFG), CFG, request({ sizeBytes: 1000 * MiB + 1 })).lvBytes, 1004 * MiB);
  });
});

describe('vm add: unreachable nodes', () => {
  test('a node of the pair that cannot be asked is refused', () => {
    refuses('PMC_E_NODE_UNREACHABLE', /pm-2 could not be asked/, () => planVmAdd(withNodeDown(CFG, 'pm-2'), CFG, request(), facts()));
  });

  test('another node that cannot be asked is named in the plan as not checked', () => {
    const p = planVmAdd(withNodeDown(CFG, 'pm-3'), CFG, request(), facts());
    assert.ok(p.notes.some((n) => /pm-3 could not be asked: the name web, minor 100 and port 7900 were not checked/.test(n)));
  });
});

describe('vm add: the plan for a new blank disk on two nodes', () => {
  const p = plan();

  test('each node\'s LV, resource file, metadata and up depend only on that node\'s previous step; the wait for the connection on both; the rest in order', () => {
    const deps = dependencies(p);
    const at = (node: string, what: string) => p.steps.findIndex((s) => s.node === node && s.command.includes(what));
    for (const node of ['pm-1', 'pm-2']) {
      assert.deepEqual(deps[at(node, 'lvcreate')], []);
      assert.deepEqual(deps[at(node, 'cat >')], [at(node, 'lvcreate')]);
      assert.deepEqual(deps[at(node, 'create-md')], [at(node, 'cat >')]);
      assert.deepEqual(deps[at(node, 'drbdadm up')], [at(node, 'create-md')]);
    }
    const wait = at('pm-1', 'cstate');
    assert.deepEqual(deps[wait], [at('pm-1', 'drbdadm up'), at('pm-2', 'drbdadm up')]);
    assert.deepEqual(deps[wait + 1], [...Array(wait + 1).keys()]);
    const view = describePlan(p);
    assert.match(view, /  5\. \[pm-2\] create the LV \/dev\/vg-pmc\/web \(1 GiB\) on pm-2, zeroed so that both copies start with the same bytes \(after nothing\)/);
    assert.match(view, /  9\. \[pm-1\] wait until pm-1 and pm-2 connect for web \(after 4, 8\)/);
    assert.match(view, / 10\. \[pm-1\] .* \(after every step above\)/);
  });

  test('LV, resource file, metadata and up on each node; connect; skip the initial sync; primary; define on both; start', () => {
    const expected = [
      '[pm-1] lvcreate -q -y -W y -Z y -L 1073741824b -n web -- vg-pmc',
      '[pm-1] cat > /etc/drbd.d/web.res.tmp && mv -f /etc/drbd.d/web.res.tmp /etc/drbd.d/web.res',
      '[pm-1] drbdadm -- --force create-md web',
      '[pm-1] drbdadm up web',
      '[pm-2] lvcreate -q -y -W y -Z y -L 1073741824b -n web -- vg-pmc',
      '[pm-2] cat > /etc/drbd.d/web.res.tmp && mv -f /etc/drbd.d/web.res.tmp /etc/drbd.d/web.res',
      '[pm-2] drbdadm -- --force create-md web',
      '[pm-2] drbdadm up web',
      '[pm-1] i=0; while [ "$(drbdadm cstate web)" != Connected ]; do i=$((i + 1)); if [ "$i" -ge 120 ]; then',
      '[pm-1] drbdadm -- --clear-bitmap new-current-uuid web',
      '[pm-1] drbdadm primary web',
      `[pm-1] f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`,
      `[pm-2] f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`,
      `[pm-1] virsh start ${UUID}`,
    ];
    // Both start UpToDate without a sync: both LVs are zeroed first, or they would differ wherever the guest never wrote.
    for (const node of ['pm-1', 'pm-2']) {
      const lv = p.steps.find((s) => s.node === node && s.command.startsWith('lvcreate'))!;
      assert.ok(lv.command.includes(' && { blkdiscard -f -z /dev/vg-pmc/web 2>/dev/null || blkdiscard -z /dev/vg-pmc/web 2>/dev/null || dd if=/dev/zero of=/dev/vg-pmc/web bs=16M iflag=count_bytes count=1073741824 oflag=direct conv=fsync status=none || { rc=$?; lvremove -q -y -- vg-pmc/web; exit $rc; }; }'), lv.command);
    }
    const actual = commands(p);
    assert.equal(actual.length, expected.length, actual.join('\n'));
    expected.forEach((start, i) => assert.ok(actual[i]!.startsWith(start), `step ${i + 1}: ${actual[i]}`));
    assert.match(p.title, /add web on pm-1 \(primary\) and pm-2, DRBD minor 100 port 7900: 1 GiB disk, 128 MiB memory, 1 vCPU, MAC 52:54:00:aa:bb:cc/);
  });

  test('the resource file: minor, port, both addresses, resync rate, no allow-two-primaries', () => {
    const res = p.steps[1]!.input;
    assert.ok(res && 'text' in res);
    assert.equal(res.text, [
      '# Written by pmc vm add: DRBD resource, LV /dev/vg-pmc/web and libvirt domain are all named web.',
      'resource web {',
      '  device /dev/drbd100 minor 100;',
      '  disk /dev/vg-pmc/web;',
      '  meta-disk internal;',
      '  on pm-1 {',
      '    address 10.99.0.11:7900;',
      '  }',
      '  on pm-2 {',
      '    address 10.99.0.12:7900;',
      '  }',
      '  disk {',
      '    resync-rate 100M;',
      '    c-plan-ahead 0;',
      '  }',
      '  net {',
      '    protocol C;',
      '  }',
      '}',
      '',
    ].join('\n'));
    assert.doesNotMatch(res.text, /allow-two-primaries/);
  });

  test('storage.drbd.pingTimeout (seconds) becomes ping-timeout in tenths in the net section', () => {
    const withPing = { ...CFG, storage: { ...CFG.storage, drbd: { ...CFG.storage.drbd, pingTimeout: 2.5 } } };
    const res = planVmAdd(cluster(withPing), withPing, request(), facts()).steps[1]!.input;
    assert.ok(res && 'text' in res);
    assert.match(res.text, /  net \{\n    protocol C;\n    ping-timeout 25;\n  \}/);
  });

  test('the peer is defined from the primary\'s dumpxml --inactive --security-info, so it gets the same UUID', () => {
    const peerDefine = p.steps[12]!;
    assert.equal(peerDefine.node, 'pm-2');
    assert.deepEqual(peerDefine.input, { fromNode: 'pm-1', command: `virsh dumpxml --inactive --security-info ${UUID}` });
    const primaryDefine = p.steps[11]!.input;
    assert.ok(primaryDefine && 'text' in primaryDefine && primaryDefine.text.includes(`<uuid>${UUID}</uuid>`));
  });

  test('every step that creates something has an undo on the same node, and the undos take it all back', () => {
    const creating = /lvcreate|cat > \/etc\/drbd\.d|drbdadm up|virsh define|virsh start/;
    for (const step of p.steps.filter((s) => creating.test(s.command))) assert.ok(step.undo, `no undo for: ${step.command}`);
    const undos = p.steps.filter((s) => s.undo).reverse().map((s) => `[${s.node}] ${s.undo!.command}`);
    assert.deepEqual(undos, [
      `[pm-1] virsh destroy ${UUID}`,
      `[pm-2] virsh undefine ${UUID}`,
      `[pm-1] virsh undefine ${UUID}`,
      '[pm-2] drbdadm down web',
      '[pm-2] rm -f /etc/drbd.d/web.res',
      '[pm-2] lvremove -q -y -- vg-pmc/web',
      '[pm-1] drbdadm down web',
      '[pm-1] rm -f /etc/drbd.d/web.res',
      '[pm-1] lvremove -q -y -- vg-pmc/web',
    ]);
  });

  test('every command and undo is valid sh', () => {
    for (const command of [...p.steps.map((s) => s.command), ...p.steps.flatMap((s) => (s.undo ? [s.undo.command] : []))]) {
      const r = spawnSync('sh', ['-n', '-c', command], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${command}\n${r.stderr}`);
    }
  });

  test('--no-start defines it without starting it', () => {
    assert.ok(!commands(plan({ start: false })).some((c) => c.includes('virsh start')));
  });
});

describe('vm add: one node', () => {
  test('its LV is its disk: no DRBD, no resource file', () => {
    const p = plan({ nodes: ['pm-3'] });
    assert.deepEqual(commands(p), [
      '[pm-3] lvcreate -q -y -W y -Z y -L 1073741824b -n web -- vg-pmc',
      `[pm-3] f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`,
      `[pm-3] virsh start ${UUID}`,
    ]);
    const xml = p.steps[1]!.input;
    assert.ok(xml && 'text' in xml && xml.text.includes('<source dev="/dev/vg-pmc/web"/>'));
    assert.ok(p.notes.some((n) => /web lives on pm-3 alone: its disk is the LV \/dev\/vg-pmc\/web without DRBD/.test(n)));
  });

  test('the DRBD module is not needed for it', () => {
    const p = plan({ nodes: ['pm-3'] }, { 'pm-3': { drbd: { moduleLoaded: false, kernelVersion: undefined, utilsVersion: undefined, minorsInKernel: [] } } });
    assert.equal(p.steps.length, 3);
  });
});

describe('vm add: --clone', () => {
  const DRBD_1G = drbdUsableBytes(GiB);
  const source = pairedVm('src', 'pm-1', 'pm-2', 110);
  source['pm-1']!.drbdResources![0]!.sizeBytes = DRBD_1G;
  source['pm-2']!.drbdResources![0]!.sizeBytes = DRBD_1G;

  test('DRBD 8.4 internal metadata of 1 GiB is 68 KiB, as events2 showed on the real cluster', () => {
    assert.equal(drbdMetadataBytes(GiB), 68 * 1024);
    assert.equal(DRBD_1G, 1048508 * 1024);
  });

  test('from the running source\'s primary, node to node: overwrite the peer, dd over ssh, wait for the resync', () => {
    const p = plan({ nodes: ['pm-2', 'pm-3'], clone: { vm: 'src', from: undefined } }, source);
    const c = commands(p);
    assert.ok(!c.some((x) => x.includes('new-current-uuid')), 'a clone is not a blank disk');
    assert.ok(c.includes('[pm-2] drbdadm -- --overwrite-data-of-peer primary web'));
    const dd = p.steps.find((s) => s.command.includes('dd '))!;
    assert.equal(dd.node, 'pm-2');
    assert.ok(dd.progress);
    assert.ok(dd.command.includes(`ssh -o BatchMode=yes -- 10.99.0.11 'dd if=/dev/drbd110 bs=4M iflag=count_bytes count=${DRBD_1G} status=progress'`), dd.command);
    assert.ok(dd.command.includes('dd of=/dev/drbd100 bs=4M iflag=fullblock conv=fsync status=none'));
    const wait = p.steps[p.steps.indexOf(dd) + 1]!;
    assert.ok(wait.progress && wait.command.includes('UpToDate/UpToDate'));
    assert.ok(p.notes.some((n) => /src is running: the copy is only crash-consistent/.test(n)));
  });

  test('from a Secondary: its LV, only the data part; on the same node: a plain dd', () => {
    const p = plan({ nodes: ['pm-2', 'pm-3'], clone: { vm: 'src', from: 'pm-2' } }, source);
    const dd = p.steps.find((s) => s.command.includes('dd '))!;
    assert.equal(dd.command, `dd if=/dev/vg-pmc/src bs=4M iflag=count_bytes count=${DRBD_1G} status=progress of=/dev/drbd100 conv=fsync`);
  });

  test('a source larger than the new disk is refused with the size that fits', () => {
    const small = () => plan({ nodes: ['pm-2', 'pm-3'], sizeBytes: 512 * MiB, clone: { vm: 'src', from: undefined } }, source);
    refuses('PMC_E_SIZE_INVALID', /src's disk holds 1073672192 bytes \(1024 MiB\), more than the 536817664 bytes web's disk of 512 MiB has room for/, small);
    assert.throws(small, (err: PmcError) => err.hint === 'give -s 1024M or more');
    const whole = pairedVm('whole', 'pm-1', 'pm-2', 111);
    refuses('PMC_E_SIZE_INVALID', /holds 1073741824 bytes/, () => plan({ nodes: ['pm-2', 'pm-3'], clone: { vm: 'whole', from: undefined } }, whole));
  });

  test('an unknown source, or a node without its disk, is refused', () => {
    refuses('PMC_E_VM_UNKNOWN', /no VM named "nope"/, () => plan({ clone: { vm: 'nope', from: undefined } }));
    refuses('PMC_E_STATE', /src has no disk on pm-3/, () => plan({ clone: { vm: 'src', from: 'pm-3' } }, source));
  });
});

describe('vm add: --image', () => {
  const image = (format: 'raw' | 'qcow2', virtualBytes: number): ImageFacts => ({ localFile: `/srv/images/disk.${format}`, name: `disk.${format}`, format, fileBytes: 10 * MiB, virtualBytes });
  const withImage = (img: ImageFacts, parts: Partial<VmAddRequest> = {}) => planVmAdd(cluster(CFG), CFG, request({ image: img.name, ...parts }), facts({ image: img }));

  test('a raw image is streamed from the manager onto the new primary\'s DRBD device, both disks UpToDate first so every write reaches the peer', () => {
    const p = withImage(image('raw', 64 * MiB));
    const c = commands(p);
    const write = p.steps.find((s) => s.input && 'localFile' in s.input)!;
    assert.equal(`[${write.node}] ${write.command}`, '[pm-1] dd of=/dev/drbd100 bs=4M iflag=fullblock conv=fsync status=none');
    assert.deepEqual(write.input, { localFile: '/srv/images/disk.raw' });
    assert.ok(write.progress);
    assert.ok(c.indexOf('[pm-1] drbdadm primary web') < p.steps.indexOf(write), 'written through the Primary');
    assert.ok(c.some((x) => x.includes('new-current-uuid')), 'no full resync: the peer receives the writes');
    assert.ok(p.steps.indexOf(write) < c.findIndex((x) => x.includes('virsh start')), 'written before the VM starts');
  });

  test('a qcow2 image is converted on the node with qemu-img', () => {
    const write = withImage(image('qcow2', 200 * MiB)).steps.find((s) => s.input && 'localFile' in s.input)!;
    assert.match(write.command, /cat > "\$tmp" && qemu-img convert -q -n -f qcow2 -O raw -t none "\$tmp" \/dev\/drbd100$/);
  });

  test('an image larger than the disk is refused before anything changes, with the size that fits', () => {
    refuses('PMC_E_SIZE_INVALID', /the image disk\.qcow2 fills 2147483648 bytes \(2 GiB\), more than the 1073672192 bytes web's disk of 1 GiB has room for/,
      () => withImage(image('qcow2', 2 * GiB)));
    refuses('PMC_E_SIZE_INVALID', /more than the 1073741824 bytes/, () => withImage(image('raw', GiB + 1), { nodes: ['pm-1'] }));
  });

  test('the manager reads the format and virtual size of a real qcow2 image, and a raw file\'s size', (t) => {
    const dir = tempDirFor(t, 'image');
    copyFileSync(fixturePath('images/empty-300M.qcow2'), join(dir, 'd.qcow2'));
    assert.deepEqual(readLocalImage(dir, 'd.qcow2'), { localFile: join(dir, 'd.qcow2'), name: 'd.qcow2', format: 'qcow2', fileBytes: 196616, virtualBytes: 300 * MiB });
    writeFileSync(join(dir, 'd.raw'), Buffer.alloc(3 * MiB));
    assert.equal(readLocalImage(dir, 'd.raw').format, 'raw');
    assert.equal(readLocalImage(dir, 'd.raw').virtualBytes, 3 * MiB);
    refuses('PMC_E_IMAGE_UNKNOWN', /nope\.img is not in the image store/, () => readLocalImage(dir, 'nope.img'));
  });

  test('--image names a file of the store, never a path; not together with --clone', () => {
    const base: VmAddArgs = { vm: 'web', size: '1', memory: '128M', cpus: 1, start: true, force: false, shared: false, dryRun: false };
    refuses('PMC_E_IMAGE_UNKNOWN', /--image "\.\.\/etc\/shadow": name a file of the store/, () => parseVmAddArgs({ ...base, image: '../etc/shadow' }));
    refuses('PMC_E_IMAGE_UNKNOWN', /--image "-oops"/, () => parseVmAddArgs({ ...base, image: '-oops' }));
    refuses('PMC_E_USAGE', /--image and --clone/, () => parseVmAddArgs({ ...base, image: 'a.raw', clone: 'src' }));
    assert.equal(parseVmAddArgs({ ...base, image: 'debian-12.qcow2' }).image, 'debian-12.qcow2');
  });
});

describe('vm add: MAC addresses', () => {
  const state = cluster(CFG, pairedVm('a', 'pm-1', 'pm-2', 100)); // its MAC: 52:54:00:12:34:56

  test('--mac is used when no domain has it', () => {
    assert.equal(chooseMac(state, CFG, request({ mac: '52:54:00:00:00:01' }), () => new Uint8Array(3)), '52:54:00:00:00:01');
    refuses('PMC_E_MAC_IN_USE', /52:54:00:12:34:56 is used by a on pm-[12]/, () => chooseMac(state, CFG, request({ mac: '52:54:00:12:34:56' }), () => new Uint8Array(3)));
  });

  test('with network.macFromIp the old scheme: prefix, byte 4, IP octets 3 and 4 in hex', () => {
    const old = config('network:\n  macFromIp: true\n  macByte4: "01"');
    assert.equal(chooseMac(state, old, request({ ip: '10.0.10.254' }), () => new Uint8Array(3)), '52:54:00:01:0a:fe');
    refuses('PMC_E_ADDRESS_INVALID', /IPv4/, () => chooseMac(state, old, request({ ip: 'fd00::1' }), () => new Uint8Array(3)));
  });

  test('otherwise the prefix and random bytes, drawn again while a domain has them', () => {
    const draws = [[0x12, 0x34, 0x56], [0xab, 0xcd, 0xef]];
    assert.equal(chooseMac(state, CFG, request(), () => Uint8Array.from(draws.shift()!)), '52:54:00:ab:cd:ef');
    assert.equal(draws.length, 0);
  });
});

describe('vm add: ISO images', () => {
  const iso = { localFile: '/opt/pmc/iso/ubuntu-2020.iso', name: 'ubuntu-2020.iso', sizeBytes: 2 * GiB, sha256: 'ab'.repeat(32), presentOn: [], differentOn: [] };

  test('copied to both nodes with progress and checked by sha256; removed again by the undo', () => {
    const p = planVmAdd(cluster(CFG), CFG, request({ iso: 'ubuntu-2020.iso' }), facts({ iso }));
    const copies = p.steps.filter((s) => s.input && 'localFile' in s.input);
    assert.deepEqual(copies.map((s) => s.node), ['pm-1', 'pm-2']);
    for (const s of copies) {
      assert.ok(s.progress);
      assert.ok(s.command.includes(`= '${'ab'.repeat(32)}  -'`));
      assert.equal(s.undo?.command, 'rm -f /var/lib/libvirt/images/pmc-iso/ubuntu-2020.iso');
    }
    const xml = p.steps.find((s) => s.command.includes('virsh define') && s.input && 'text' in s.input)!.input as { text: string };
    assert.ok(xml.text.includes('<source file="/var/lib/libvirt/images/pmc-iso/ubuntu-2020.iso"/>'));
  });

  test('an identical copy is not sent again; a different one is replaced, and not removed by an undo', () => {
    const p = planVmAdd(cluster(CFG), CFG, request({ iso: 'ubuntu-2020.iso' }), facts({ iso: { ...iso, presentOn: ['pm-1'], differentOn: ['pm-2'] } }));
    const copies = p.steps.filter((s) => s.input && 'localFile' in s.input);
    assert.deepEqual(copies.map((s) => s.node), ['pm-2']);
    assert.equal(copies[0]!.undo, undefined);
    assert.ok(p.notes.some((n) => /pm-1 has an identical ubuntu-2020.iso already/.test(n)));
    assert.ok(p.notes.some((n) => /pm-2 has a different ubuntu-2020.iso: it is replaced/.test(n)));
  });
});

describe('vm add: the domain type', () => {
  const qemuOnly = { arch: 'x86_64', domainTypes: ['qemu'] };
  const typeOf = (p: Plan) => /<domain type="(\w+)">/.exec((p.steps.find((s) => s.input && 'text' in s.input && s.command.includes('virsh define'))!.input as { text: string }).text)![1];
  const withType = (domainType: 'auto' | 'kvm' | 'qemu') => Object.assign(config(), { domainType });

  test('auto: kvm where both nodes offer it, as the real cluster\'s libvirt does', () => {
    const auto = withType('auto');
    assert.equal(typeOf(planVmAdd(cluster(auto), auto, request(), facts())), 'kvm');
  });

  test('auto: software emulation when a node offers no kvm, and the plan says so', () => {
    const auto = withType('auto');
    const p = planVmAdd(cluster(auto), auto, request(), facts({ capabilities: { 'pm-1': facts().capabilities['pm-1']!, 'pm-2': qemuOnly } }));
    assert.equal(typeOf(p), 'qemu');
    assert.ok(p.notes.some((n) => /libvirt on pm-2 offers no KVM: the VM runs under software emulation/.test(n)));
  });

  test('kvm asked for is refused on nodes whose libvirt does not offer it', () => {
    const kvm = withType('kvm');
    refuses('PMC_E_STATE', /pm-1 cannot run kvm domains \(libvirt offers qemu\)/,
      () => planVmAdd(cluster(kvm), kvm, request(), facts({ capabilities: { 'pm-1': qemuOnly, 'pm-2': qemuOnly } })));
  });

  test('nodes of different architectures are not paired', () => {
    refuses('PMC_E_STATE', /pm-1 is x86_64 but pm-2 is aarch64/,
      () => planVmAdd(cluster(CFG), CFG, request(), facts({ capabilities: { 'pm-1': qemuOnly, 'pm-2': { arch: 'aarch64', domainTypes: ['qemu'] } } })));
  });
});
