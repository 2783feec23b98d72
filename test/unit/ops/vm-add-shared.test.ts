// vm add --shared: the disk is one raw file on the shared file system, the domain is defined on
// every node, and the VM starts on the placed node. What it refuses, where it goes, the plan.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describePlan, type Plan } from '../../../src/ops/engine/plan.js';
import { checkVmAdd, planVmAdd, type ImageFacts, type VmAddRequest } from '../../../src/ops/vm/add-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { pairedVm, SHARED_DIR, sharedFacts, sharedMounts, sharedVm } from '../model/factory.js';
import { cluster, config, facts, GiB, MiB, NODES, request, UUID, withNodeDown } from './vm-add-helpers.js';
import { refuses } from '../refusal.js';

const CFG = config('', NODES, ['  shared:', `    directory: ${SHARED_DIR}`]);
const MOUNTED = sharedMounts(NODES);


const shared = (parts: Partial<VmAddRequest> = {}) => request({ nodes: [], shared: true, ...parts });

function plan(parts: Partial<VmAddRequest> = {}, ...state: Record<string, Partial<NodeFacts>>[]): Plan {
  return planVmAdd(cluster(CFG, MOUNTED, ...state), CFG, shared(parts), facts());
}

const commands = (p: Plan) => p.steps.map((s) => `[${s.node}] ${s.command}`);

describe('vm add --shared', () => {
  test('placed on the least loaded node: the file is created there, the domain defined everywhere, started there', () => {
    const p = plan({}, sharedVm('db', NODES, ['pm-1'], GiB), pairedVm('app', 'pm-3', 'pm-1', 100, 512 * MiB));
    const file = `${SHARED_DIR}/web.img`;
    assert.equal(p.title, `add web on pm-2, disk ${file} on the shared file system, defined on pm-2, pm-1, pm-3: 1 GiB disk, 128 MiB memory, 1 vCPU, MAC 52:54:00:aa:bb:cc`);
    assert.deepEqual(commands(p), [
      `[pm-2] set -C && : > ${file} && { truncate -s 1073741824 ${file} || { rc=$?; rm -f ${file}; exit $rc; }; }`,
      `[pm-2] f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`,
      `[pm-1] f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`,
      `[pm-3] f=$(mktemp) && trap 'rm -f "$f"' EXIT && cat > "$f" && virsh define "$f"`,
      `[pm-2] virsh start ${UUID}`,
    ]);
    assert.deepEqual(p.steps.slice(2, 4).map((s) => s.input), [1, 2].map(() => ({ fromNode: 'pm-2', command: `virsh dumpxml --inactive --security-info ${UUID}` })));
    assert.deepEqual(p.steps.map((s) => s.undo?.command), [
      `rm -f ${file}`, `virsh undefine ${UUID}`, `virsh undefine ${UUID}`, `virsh undefine ${UUID}`, `virsh destroy ${UUID}`,
    ]);
    const xml = (p.steps[1]!.input as { text: string }).text;
    assert.match(xml, new RegExp(`<disk type="file" device="disk">\\s*<driver name="qemu" type="raw" cache="none" io="native"/>\\s*<source file="${file}"/>`));
    assert.ok(!commands(p).some((c) => /lvcreate|drbdadm/.test(c)), 'no LV, no DRBD');
    assert.match(p.notes.join('\n'), /can run on any node, never on two at once/);
    assert.match(describePlan(p), /1\. \[pm-2\] create the raw disk file \/var\/lib\/pmc-shared\/web\.img \(1 GiB\) on the shared file system, from pm-2/);
  });

  test('-p names the node it starts on; a node without a volume group can hold it', () => {
    const target = checkVmAdd(cluster(CFG, MOUNTED, { 'pm-3': { vg: undefined } }), CFG, shared({ nodes: ['pm-3'] }));
    assert.deepEqual(target.nodes, ['pm-3', 'pm-1', 'pm-2']);
    assert.deepEqual(target.shared, { file: `${SHARED_DIR}/web.img` });
    assert.equal(target.drbd, undefined);
  });

  test('refused: storage.shared unset, two -p, a node down, without the shared mount or without libvirt, a name taken by a file', () => {
    refuses('PMC_E_STATE', /pm-3 cannot hold the VM: libvirtd does not answer/,
      () => checkVmAdd(cluster(CFG, MOUNTED, { 'pm-3': { libvirt: { active: false, version: undefined, nodeInfo: undefined } } }), CFG, shared({ nodes: ['pm-1'] })));
    refuses('PMC_E_USAGE', /needs storage\.shared in pmc\.yaml/, () => checkVmAdd(cluster(config(), MOUNTED), config(), shared()));
    refuses('PMC_E_USAGE', /starts on one node/, () => checkVmAdd(cluster(CFG, MOUNTED), CFG, shared({ nodes: ['pm-1', 'pm-2'] })));
    refuses('PMC_E_NODE_UNREACHABLE', /needs every node, and pm-3 could not be asked/, () => checkVmAdd(withNodeDown(CFG, 'pm-3', MOUNTED), CFG, shared({ nodes: ['pm-1'] })));
    refuses('PMC_E_STATE', /pm-2: \/var\/lib\/pmc-shared lacks the marker the other nodes see there/,
      () => checkVmAdd(cluster(CFG, MOUNTED, { 'pm-2': { shared: sharedFacts({ id: undefined }) } }), CFG, shared()));
    refuses('PMC_E_VM_EXISTS', /the file \/var\/lib\/pmc-shared\/web\.img/,
      () => checkVmAdd(cluster(CFG, sharedMounts(NODES, [{ name: 'web.img', sizeBytes: GiB }])), CFG, shared()));
  });

  test('--clone copies a shut-off shared VM\'s file into the new one, holes kept; a running or DRBD source is refused', () => {
    const source = [sharedMounts(NODES, [{ name: 'tmpl.img', sizeBytes: GiB }]), sharedVm('tmpl', NODES, [])] as const;
    const p = planVmAdd(cluster(CFG, ...source), CFG, shared({ nodes: ['pm-1'], sizeBytes: 2 * GiB, clone: { vm: 'tmpl', from: undefined } }), facts());
    assert.equal(commands(p)[1], `[pm-1] dd if=${SHARED_DIR}/tmpl.img bs=4M iflag=count_bytes count=${GiB} status=progress of=${SHARED_DIR}/web.img conv=sparse,notrunc,fsync`);
    assert.equal(commands(p)[0], `[pm-1] set -C && : > ${SHARED_DIR}/web.img && { truncate -s ${2 * GiB} ${SHARED_DIR}/web.img || { rc=$?; rm -f ${SHARED_DIR}/web.img; exit $rc; }; }`);
    refuses('PMC_E_STATE', /tmpl runs on pm-2: a shared VM is cloned only while it is shut off/,
      () => checkVmAdd(cluster(CFG, source[0], sharedVm('tmpl', NODES, ['pm-2'])), CFG, shared({ clone: { vm: 'tmpl', from: undefined } })));
    refuses('PMC_E_STATE', /app is a DRBD VM/,
      () => checkVmAdd(cluster(CFG, MOUNTED, pairedVm('app', 'pm-1', 'pm-2', 100)), CFG, shared({ clone: { vm: 'app', from: undefined } })));
    refuses('PMC_E_SIZE_INVALID', /more than/, () => checkVmAdd(cluster(CFG, ...source), CFG, shared({ sizeBytes: GiB / 2, clone: { vm: 'tmpl', from: undefined } })));
  });

  test('--image: a raw image is written into the file without cutting it to the image\'s size', () => {
    const image: ImageFacts = { localFile: '/srv/images/debian.raw', name: 'debian.raw', format: 'raw', fileBytes: 512 * MiB, virtualBytes: 512 * MiB };
    const p = planVmAdd(cluster(CFG, MOUNTED), CFG, shared({ nodes: ['pm-1'], image: 'debian.raw' }), facts({ image }));
    assert.equal(commands(p)[1], `[pm-1] dd of=${SHARED_DIR}/web.img bs=4M iflag=fullblock conv=notrunc,fsync status=none`);
    assert.deepEqual(p.steps[1]!.input, { localFile: '/srv/images/debian.raw' });
  });
});
