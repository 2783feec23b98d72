/**
 * The live migration of one VM to its DRBD peer, planned as a pure function of the live
 * cluster state (Ganeti's order, lib/cmdlib/instance_migration.py): every check first, then
 * two primaries allowed for this resource only and at run time, the target promoted,
 * `virsh migrate --live`, the result read back, the source demoted, two primaries off.
 * A shared-storage VM migrates to any node, with the same checks and `virsh migrate` but no
 * DRBD: only its memory moves, its disk file stays where every node reads it.
 *
 * The plan keeps its phases apart: the role changes (prepare, finish) are short and must not
 * be interrupted halfway; the migration itself is long and may be aborted; the verification
 * only reads. `pmc pm evacuate` reuses this planner per VM.
 */
import type { ClusterState, NodeState, Vm, VmReplica } from '../../model/cluster.js';
import { healthy } from '../../model/cluster.js';
import type { Domain, DomainDisk, DomainInterface, DrbdResource } from '../../probe/types.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { Plan, Step } from '../engine/plan.js';
import { definePeerStep, freeMemory, HOST_RESERVED_MEMORY, rankNodes } from './add-plan.js';
import { cpuModelOf } from './domain-xml.js';
import { demoteStep, drbdadmCommand, managedVm, nodesNotAsked, type PlannerConfig } from './lifecycle.js';

/** What the planner needs to know about a node beyond the probe: read live just before planning. */
export interface NodeMigrateFacts {
  /** Bridge name -> it exists on the node as a Linux bridge. */
  bridges: Record<string, boolean>;
  /** File path -> its sha256, or null when the node has no such file. */
  files: Record<string, string | null>;
}

/** Node name -> its facts. */
export type MigrateFacts = Record<string, NodeMigrateFacts>;

export interface MigrateOptions {
  /** Seconds after which the migration job is aborted (virsh domjobabort). */
  timeoutSeconds: number;
  facts: MigrateFacts;
  /** Memory already promised on the target to VMs migrated there earlier in the same run. */
  incomingBytes?: number;
  /**
   * `--to`: the node to migrate to. A shared VM goes to any node (default: the one with the most
   * free memory); a DRBD VM only to its peer, so this may name nothing else.
   */
  to?: string | undefined;
}

export interface VmMigration {
  vm: string;
  source: string;
  target: string;
  /** The DRBD resource; undefined for a shared-storage VM. */
  resource: string | undefined;
  uuid: string;
  memoryBytes: number;
  /** Role changes before the migration: two primaries allowed on both nodes, the target promoted. */
  prepare: Plan;
  /** `virsh migrate` on the source, polled for progress, aborted after the timeout. */
  migrate: Step;
  /** Reads only: the domain runs on the target and not on the source. */
  verify: Plan;
  /** Role changes after the migration: the source demoted, two primaries off again. */
  finish: Plan;
  notes: string[];
}

/**
 * Plans the live migration of `name` to its DRBD peer. Throws PmcError, before anything
 * changes, when any check fails: it runs on exactly one node; its resource is Connected and
 * UpToDate/UpToDate on both nodes; the peer defines it with the same UUID, disks, NICs and
 * CPU model; the peer has the memory (counting every VM defined for it), the bridges and every
 * attached ISO (same sha256); it is not ignored.
 */
export function planVmMigrate(state: ClusterState, name: string, config: PlannerConfig, opts: MigrateOptions): VmMigration {
  assertTimeout(opts.timeoutSeconds);
  const vm = managedVm(state, name, config);
  const unknown = vm.nodes.filter((n) => !state.nodes.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw refusal(vm, `its node ${unknown.join(' and ')} is not in pmc.yaml`, `add ${unknown.join(' and ')} to nodes: in pmc.yaml, or move it by hand`);
  }
  const down = nodesNotAsked(vm);
  if (down.length > 0) {
    throw refusal(vm, `${down.join(' and ')} could not be asked`, 'bring the node back (pmc pm ls shows why it does not answer)');
  }
  if (vm.runningOn.length !== 1) {
    throw vm.runningOn.length === 0
      ? refusal(vm, `it is not running (${vm.state})`, `a stopped VM needs no migration: pmc vm start -p ${vm.peer ?? 'PM'} ${vm.name} starts it on its peer`)
      : refusal(vm, `it runs on ${vm.runningOn.join(' and ')} at once`, `pmc vm mv --cleanup ${vm.name} explains what to decide`);
  }
  const source = vm.runningOn[0]!;
  if (vm.shared) return planSharedMigrate(state, vm, source, opts);
  const sourceReplica = replicaOn(vm, source);
  const sourceResource = drbdOf(vm, sourceReplica);
  const target = sourceResource.hosts.map((h) => h.name).find((h) => h !== source);
  if (!target) throw refusal(vm, `its DRBD resource ${sourceResource.name} has no peer`, 'a one-node VM cannot migrate');
  if (opts.to !== undefined && opts.to !== target) {
    throw refusal(vm, `its disk is mirrored to ${target} only, not to ${opts.to}`,
      `pmc vm mv ${vm.name} moves it to ${target}; pmc vm peer-recreate ${opts.to} ${vm.name} first moves its standby copy to ${opts.to}`);
  }
  const targetReplica = vm.replicas.find((r) => r.node === target);
  if (!targetReplica) throw refusal(vm, `${target}, the peer of its resource, holds nothing of it`, `pmc vm info ${vm.name}`);
  const targetResource = drbdOf(vm, targetReplica);
  assertReplicated(vm, sourceReplica, sourceResource, targetReplica, targetResource);

  const sourceDomain = sourceReplica.domain!;
  const targetDomain = targetReplica.domain;
  if (!targetDomain) {
    throw refusal(vm, `it is not defined on ${target}`, `define it there from ${source}'s virsh dumpxml --inactive (pmc cluster verify shows how)`);
  }
  if (targetDomain.uuid !== sourceDomain.uuid) {
    throw refusal(vm, `its UUID is ${sourceDomain.uuid} on ${source} but ${targetDomain.uuid} on ${target}: two different domains`,
      `redefine it on ${target} from ${source}'s virsh dumpxml --inactive`);
  }
  const differences = definitionDifferences(sourceDomain, targetDomain, source, target);
  if (differences.length > 0) {
    throw refusal(vm, `its definitions differ: ${differences.join('; ')}`,
      `redefine it on ${target} from ${source}'s virsh dumpxml --inactive, then run the command again`);
  }
  const targetNode = state.nodes.find((n) => n.name === target)!;
  assertMemory(vm, targetNode, sourceDomain.memoryBytes, opts.incomingBytes ?? 0);
  assertBridges(vm, sourceDomain, target, opts.facts[target]);
  assertIsos(vm, sourceDomain, source, target, opts.facts);

  const resource = sourceResource.name;
  const uuid = sourceDomain.uuid;
  const twoPrimaries = (node: string, on: boolean): Step => ({
    node,
    command: netOptionsCommand(resource, on),
    why: on
      ? `allow two primaries for ${resource} on ${node}, at run time and for this migration only (the file is not changed)`
      : `allow only one primary for ${resource} on ${node} again`,
  });
  const prepare: Plan = {
    title: `prepare ${vm.name} for its migration to ${target}`,
    steps: [
      twoPrimaries(source, true),
      twoPrimaries(target, true),
      { node: target, command: drbdadmCommand('primary', resource), why: `promote ${resource} on ${target}, so that the incoming ${vm.name} can open its disk` },
    ],
    notes: [],
  };
  const migrate = migrateStep(vm, sourceDomain, source, target, opts.timeoutSeconds);
  const verify = verifyPlan(vm, uuid, source, target, []);
  const finish: Plan = {
    title: `make ${target} the only primary of ${vm.name}`,
    steps: [
      demoteStep(source, resource, `demote ${resource} on ${source}: ${vm.name} runs on ${target} now`),
      twoPrimaries(source, false),
      twoPrimaries(target, false),
    ],
    notes: [],
  };
  const notes = [`if any step fails, pmc reads where ${vm.name} runs, makes that node its only Primary and allows one primary again (as pmc vm mv --cleanup)`];
  if (sourceResource.allowTwoPrimaries || targetResource.allowTwoPrimaries) {
    notes.push(`${sourceResource.configFile ?? 'the resource file'} says allow-two-primaries yes (the old tool's setting): pmc leaves the file alone and turns it off at run time after the migration; drbdadm adjust would turn it on again, and pmc cluster verify warns about it`);
  }
  return { vm: vm.name, source, target, resource, uuid, memoryBytes: sourceDomain.memoryBytes, prepare, migrate, verify, finish, notes };
}

/**
 * A shared-storage VM: to `--to`, else to the node with the most free memory (as vm add places
 * one). The target is checked as a DRBD peer is (UUID, definition, memory, bridges, ISOs) and
 * gets the definition from the source first when it has none; every other node that defines
 * it must still have it shut off afterwards.
 */
function planSharedMigrate(state: ClusterState, vm: Vm, source: string, opts: MigrateOptions): VmMigration {
  const sourceDomain = replicaOn(vm, source).domain!;
  const target = opts.to ?? leastLoadedOther(state, vm, source, sourceDomain);
  if (target === source) throw refusal(vm, `it runs on ${target} already`, `name another node with --to`);
  const targetNode = state.nodes.find((n) => n.name === target);
  if (!targetNode) throw refusal(vm, `${target} is not a node of pmc.yaml`, 'pmc pm ls lists the nodes');
  if (!targetNode.reachable || !targetNode.facts) {
    throw refusal(vm, `${target} could not be asked`, `${targetNode.error?.message ?? `check that ${targetNode.host} is up`}; or choose another node with --to`);
  }
  const uuid = sourceDomain.uuid;
  const targetDomain = vm.replicas.find((r) => r.node === target)?.domain;
  if (targetDomain && targetDomain.uuid !== uuid) {
    throw refusal(vm, `its UUID is ${uuid} on ${source} but ${targetDomain.uuid} on ${target}: two different domains`,
      `undefine it on ${target} (pmc vm mv defines it there again from ${source})`);
  }
  const differences = targetDomain ? definitionDifferences(sourceDomain, targetDomain, source, target) : [];
  if (differences.length > 0) {
    throw refusal(vm, `its definitions differ: ${differences.join('; ')}`,
      `redefine it on ${target} from ${source}'s virsh dumpxml --inactive, then run the command again`);
  }
  assertMemory(vm, targetNode, sourceDomain.memoryBytes, opts.incomingBytes ?? 0);
  assertBridges(vm, sourceDomain, target, opts.facts[target]);
  assertIsos(vm, sourceDomain, source, target, opts.facts);

  const others = vm.replicas.filter((r) => r.domain && r.node !== source && r.node !== target).map((r) => r.node);
  const notes = [`${vm.name}'s disk is ${vm.shared!.file} on the shared file system: only its memory moves`];
  if (!targetDomain) notes.push(`${target} does not define ${vm.name} yet: it gets ${source}'s definition first`);
  return {
    vm: vm.name,
    source,
    target,
    resource: undefined,
    uuid,
    memoryBytes: sourceDomain.memoryBytes,
    prepare: { title: `prepare ${vm.name} for its migration to ${target}`, steps: targetDomain ? [] : [definePeerStep(source, target, vm.name, uuid)], notes: [] },
    migrate: migrateStep(vm, sourceDomain, source, target, opts.timeoutSeconds),
    verify: verifyPlan(vm, uuid, source, target, others),
    finish: { title: `nothing to change after ${vm.name}'s migration`, steps: [], notes: [] },
    notes,
  };
}

/** Without --to, a shared VM goes where vm add --shared would put it: the most free memory, then disk. */
function leastLoadedOther(state: ClusterState, vm: Vm, source: string, domain: Domain): string {
  // state.nodes are in pmc.yaml's order, the tie-break rankNodes wants.
  const need = { sizeBytes: 0, memoryBytes: domain.memoryBytes, vcpus: domain.vcpus, force: false };
  const { ranked, rejected } = rankNodes(state, { nodes: state.nodes }, need, 'shared', [source]);
  if (!ranked[0]) {
    throw refusal(vm, `no other node can hold it${rejected.length ? `: ${rejected.join('; ')}` : ''}`, 'free memory on a node, or name one with --to');
  }
  return ranked[0].name;
}

function migrateStep(vm: Vm, domain: Domain, source: string, target: string, timeoutSeconds: number): Step {
  return {
    node: source,
    command: migrateCommand(domain.uuid, target, timeoutSeconds),
    why: `live-migrate ${vm.name} (${formatBytes(domain.memoryBytes)} of memory) from ${source} to ${target} (virsh domjobabort if not done within ${timeoutSeconds} s)`,
    progress: true,
    // The job is aborted on the node at the timeout; this only bounds a node that stops answering.
    timeoutMs: (timeoutSeconds + 120) * 1000,
  };
}

/** Reads only: it runs on the target, and on no other node (the source, and `others` that define it). */
function verifyPlan(vm: Vm, uuid: string, source: string, target: string, others: readonly string[]): Plan {
  return {
    title: `check that ${vm.name} runs on ${target} and not on ${[source, ...others].join(' or ')}`,
    steps: [
      { node: target, command: domainStateIs(uuid, ['running']), why: `check that ${vm.name} runs on ${target}` },
      { node: source, command: domainStateIs(uuid, ['shut off']), why: `check that ${vm.name} no longer runs on ${source}` },
      ...others.map((node) => ({ node, command: domainStateIs(uuid, ['shut off']), why: `check that ${vm.name} does not run on ${node}` })),
    ],
    notes: [],
  };
}

/** One VM's migration as planned, or why it was refused. */
export interface PlannedMigration {
  name: string;
  migration?: VmMigration;
  refusal?: PmcError;
}

/**
 * Plans the migration of each VM in turn; the memory a target is promised by the VMs before
 * it counts against it. A refusal is returned, not thrown, so the caller decides whether one
 * refuses all.
 */
export function planMigrations(state: ClusterState, names: readonly string[], config: PlannerConfig,
  opts: Omit<MigrateOptions, 'incomingBytes'> & { targets?: ReadonlyMap<string, string> }): PlannedMigration[] {
  const incoming = new Map<string, number>();
  return names.map((name) => {
    try {
      // `targets` names each VM's own target (cluster rebalance); `to` one for all (vm mv --to).
      const vmOpts = { ...opts, to: opts.targets?.get(name) ?? opts.to };
      const first = planVmMigrate(state, name, config, vmOpts);
      const before = incoming.get(first.target) ?? 0;
      const migration = before === 0 ? first : planVmMigrate(state, name, config, { ...vmOpts, incomingBytes: before });
      incoming.set(migration.target, before + migration.memoryBytes);
      return { name, migration };
    } catch (err) {
      if (!(err instanceof PmcError)) throw err;
      return { name, refusal: err };
    }
  });
}

/** The whole migration as one plan, for --dry-run and --json. */
export function migrationAsPlan(m: VmMigration): Plan {
  return {
    title: `migrate ${m.vm} from ${m.source} to ${m.target}`,
    steps: [...m.prepare.steps, m.migrate, ...m.verify.steps, ...m.finish.steps],
    notes: m.notes,
  };
}

export function assertTimeout(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds <= 0) {
    throw new PmcError('PMC_E_USAGE', `--timeout must be a whole number of seconds above 0 (got ${seconds})`, 'e.g. --timeout 900');
  }
}

/** `drbdadm net-options --allow-two-primaries=yes|no RES`: changes the running resource only, never its file. */
export function netOptionsCommand(resource: string, allow: boolean): string {
  return drbdadmCommand('net-options', resource, 'drbdadm', [`--allow-two-primaries=${allow ? 'yes' : 'no'}`]);
}

/** Exits 0 when the domain's state is one of `states`; else says which state it is in. */
export function domainStateIs(uuid: string, states: readonly string[]): string {
  const cases = states.map((s) => quote(s)).join('|');
  return `state=$(${commandLine(['virsh', 'domstate', uuid])}) && case "$state" in ${cases}) ;; *) echo "the domain is $state" >&2; exit 1;; esac`;
}

/**
 * Memory figures from `virsh domjobinfo` (human units), as one line the manager turns into
 * progress: `PMC-MIGRATE <remaining bytes> <total bytes>`.
 */
const PROGRESS_AWK = 'BEGIN { u["B"] = 1; u["KiB"] = 1024; u["MiB"] = 1048576; u["GiB"] = 1073741824; u["TiB"] = 1099511627776 }'
  + ' /^Memory remaining:/ { r = $3 * u[$4] } /^Memory total:/ { t = $3 * u[$4] }'
  + ' END { if (t > 0) printf "PMC-MIGRATE %.0f %.0f\\n", r, t }';

export const PROGRESS_PREFIX = 'PMC-MIGRATE';

/**
 * `virsh migrate` in the background with its output in a file, so that it finishes even if
 * the manager's connection is lost (the migration then completes or fails on its own and
 * `pmc vm mv --cleanup` sorts out the roles); the loop polls the job for progress and aborts
 * it at the timeout. The target's name is the one the nodes know each other by (pm init's
 * ssh trust), so the node-to-node ssh of qemu+ssh:// verifies the target's host key.
 */
function migrateCommand(uuid: string, target: string, timeoutSeconds: number): string {
  const migrate = commandLine(['virsh', 'migrate', '--live', '--persistent', '--verbose', uuid, `qemu+ssh://${target}/system`]);
  return [
    `log=$(mktemp) && trap 'rm -f "$log"' EXIT`,
    `${migrate} >"$log" 2>&1 & pid=$!`,
    `end=$(( $(date +%s) + ${timeoutSeconds} )); aborted=`,
    `while kill -0 "$pid" 2>/dev/null; do sleep 1; ${commandLine(['virsh', 'domjobinfo', uuid])} 2>/dev/null | awk ${quote(PROGRESS_AWK)};`
      + ` if [ -z "$aborted" ] && [ "$(date +%s)" -ge "$end" ]; then ${commandLine(['virsh', 'domjobabort', uuid])} >/dev/null 2>&1; aborted=1; fi; done`,
    'wait "$pid"; rc=$?',
    `if [ -n "$aborted" ]; then echo ${quote(`not finished after ${timeoutSeconds} s (--timeout): aborted with virsh domjobabort`)} >&2; tr '\\r' '\\n' < "$log" | tail -n 3 >&2; exit 124; fi`,
    `[ "$rc" = 0 ] || tr '\\r' '\\n' < "$log" | grep -v '^Migration: \\[' | tail -n 3 >&2; exit "$rc"`,
  ].join('\n');
}

function refusal(vm: Vm, why: string, hint: string): PmcError {
  return new PmcError('PMC_E_STATE', `${vm.name} cannot migrate: ${why}; nothing was changed`, hint);
}

function replicaOn(vm: Vm, node: string): VmReplica {
  return vm.replicas.find((r) => r.node === node)!;
}

function drbdOf(vm: Vm, replica: VmReplica): DrbdResource {
  const res = replica.resource;
  if (!res?.configured) throw refusal(vm, `it has no DRBD resource on ${replica.node}`, 'only a VM whose disk DRBD mirrors to its peer can migrate');
  if (!res.up) throw refusal(vm, `its DRBD resource ${res.name} is down on ${replica.node}`, `pmc pm drbd-up ${replica.node}`);
  return res;
}

/** Connected and UpToDate/UpToDate seen from both sides, source Primary, target Secondary: checked before any promotion. */
function assertReplicated(vm: Vm, source: VmReplica, sourceRes: DrbdResource, target: VmReplica, targetRes: DrbdResource): void {
  if (vm.flags.includes('split-brain')) {
    throw refusal(vm, `its resource ${sourceRes.name} is in split brain`, 'resolve the split brain first (pmc cluster verify says how)');
  }
  for (const [replica, res] of [[source, sourceRes], [target, targetRes]] as const) {
    if (healthy(res)) continue;
    const peer = res.peers[0];
    const syncing = res.peers.some((p) => /Sync/.test(p.replication));
    throw refusal(vm, `${res.name} on ${replica.node} is ${peer?.connection ?? 'without a peer'} with disks ${res.diskState ?? 'DUnknown'}/${peer?.diskState ?? 'DUnknown'}; a migration needs Connected and UpToDate/UpToDate on both nodes`,
      syncing ? `wait for the resync to finish (pmc vm ls shows its progress)` : 'pmc cluster verify says how to repair it');
  }
  if (sourceRes.role !== 'Primary') throw refusal(vm, `it runs on ${source.node} but ${sourceRes.name} is ${sourceRes.role} there`, 'pmc cluster verify');
  if (targetRes.role !== 'Secondary') {
    throw refusal(vm, `${targetRes.name} is already ${targetRes.role} on ${target.node}: an earlier migration was interrupted`, `pmc vm mv --cleanup ${vm.name}`);
  }
}

/** What a live migration needs alike on both nodes, named difference by difference. */
export function definitionDifferences(a: Domain, b: Domain, nodeA: string, nodeB: string): string[] {
  const out: string[] = [];
  const diskKey = (d: DomainDisk) => `${d.device} ${d.type} ${d.source ?? '(empty)'} bus ${d.bus ?? '-'}`;
  compareBy(a.disks, b.disks, (d) => d.target, diskKey, 'disk', nodeA, nodeB, out);
  const nicKey = (n: DomainInterface) => `${n.type} ${n.bridge ?? n.network ?? '-'} model ${n.model ?? '-'}`;
  compareBy(a.interfaces, b.interfaces, (n) => n.mac ?? '(no MAC)', nicKey, 'NIC', nodeA, nodeB, out);
  const cpuA = cpuModelOf(a.xml);
  const cpuB = cpuModelOf(b.xml);
  if (cpuA !== cpuB) out.push(`CPU ${cpuA ?? 'unreadable'} on ${nodeA}, ${cpuB ?? 'unreadable'} on ${nodeB}`);
  return out;
}

function compareBy<T>(a: readonly T[], b: readonly T[], key: (x: T) => string, describe: (x: T) => string,
  what: string, nodeA: string, nodeB: string, out: string[]): void {
  const mapB = new Map(b.map((x) => [key(x), x]));
  for (const x of a) {
    const y = mapB.get(key(x));
    if (!y) out.push(`${what} ${key(x)} (${describe(x)}) only on ${nodeA}`);
    else if (describe(x) !== describe(y)) out.push(`${what} ${key(x)} is ${describe(x)} on ${nodeA} but ${describe(y)} on ${nodeB}`);
  }
  const keysA = new Set(a.map(key));
  for (const y of b) if (!keysA.has(key(y))) out.push(`${what} ${key(y)} (${describe(y)}) only on ${nodeB}`);
}

/**
 * The target must be able to hold every VM defined for it (this one included: it is defined
 * there) and have the memory free now to receive it.
 */
function assertMemory(vm: Vm, target: NodeState, memoryBytes: number, incomingBytes: number): void {
  const mem = target.facts?.memory;
  if (!mem) throw refusal(vm, `the memory of ${target.name} is unknown`, `check /proc/meminfo on ${target.name}`);
  if (freeMemory(target) < 0) {
    throw refusal(vm, `${target.name} has ${formatBytes(mem.totalBytes)} of memory, less ${formatBytes(HOST_RESERVED_MEMORY)} for itself, `
      + `and the VMs defined for it need ${formatBytes(target.usage.definedMemoryBytes)}`, `move or remove VMs defined on ${target.name} first (pmc pm ls)`);
  }
  if (memoryBytes + incomingBytes > mem.availableBytes) {
    throw refusal(vm, `${target.name} has ${formatBytes(mem.availableBytes)} of memory available now, ${formatBytes(memoryBytes + incomingBytes)} needed`
      + (incomingBytes ? ` (with the VMs migrated there before it)` : ''), `free memory on ${target.name} first`);
  }
}

function assertBridges(vm: Vm, domain: Domain, target: string, facts: NodeMigrateFacts | undefined): void {
  for (const nic of domain.interfaces) {
    if (nic.bridge === undefined) continue;
    if (facts?.bridges[nic.bridge] !== true) {
      throw refusal(vm, `${target} has no bridge ${nic.bridge} for its NIC ${nic.mac ?? ''}`.trim(), `create the bridge on ${target} (pmc pm init ${target} checks it)`);
    }
  }
}

function assertIsos(vm: Vm, domain: Domain, source: string, target: string, facts: MigrateFacts): void {
  for (const disk of attachedFiles(domain, vm)) {
    const here = facts[source]?.files[disk];
    const there = facts[target]?.files[disk];
    if (there === null || there === undefined) {
      throw refusal(vm, `${target} has no ${disk}, which is attached to it`, `copy it to ${target}, or eject it on ${source}: virsh change-media ${vm.name} --eject <target>`);
    }
    if (here !== there) {
      throw refusal(vm, `${disk} differs between ${source} and ${target} (sha256)`, `copy ${source}'s file to ${target}`);
    }
  }
}

/**
 * Files the domain has attached (ISO images): they must be identical on the target. A shared
 * VM's disk file is not one of them: it is the same file for every node, and it changes.
 */
export function attachedFiles(domain: Domain, vm: Pick<Vm, 'shared'>): string[] {
  return domain.disks.filter((d) => d.type === 'file' && d.source !== undefined && d.source !== vm.shared?.file).map((d) => d.source!);
}
