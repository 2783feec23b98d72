/**
 * `pmc pm init`: is a node ready to hold VMs? Every check is PASS, WARN or FAIL with the fix;
 * `--fix` applies the safe fixes (backup directory, drbd module, libvirtd, root's SSH key and
 * node-to-node trust) and checks again. Creating volume groups or bridges, or installing
 * packages, is left to the operator: the check says the exact command.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { Config } from '../../config/load.js';
import { selectNodes, sshTargets } from '../../config/targets.js';
import type { ClusterState, NodeState } from '../../model/cluster.js';
import { readCluster } from '../../model/read.js';
import { sharedId, sharedProblem } from '../../model/shared.js';
import { SHARED_ID_FILE } from '../../probe/script.js';
import type { NodeFacts } from '../../probe/types.js';
import type { RemoteResult, SshTarget } from '../../ssh/types.js';
import { isPmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import { describeFailure, type StepRecord } from '../engine/execute.js';
import { underLock } from '../engine/mutate.js';
import type { Plan, Step } from '../engine/plan.js';
import {
  analyzeTrust, AUTHORIZED_KEYS, describeKey, keyGenerationStep, KNOWN_HOSTS, readTrustFacts,
  type TrustFacts, type TrustNode, type TrustPair,
} from './ssh-trust.js';

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL' | 'FIXED';

export interface InitCheck {
  /** The node the check is about; for SSH trust, the node that connects. */
  node: string;
  /** Stable name: `hostname`, `drbd`, `vg`, ..., `ssh to pm-2`. */
  check: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What the operator should do, for WARN and FAIL. */
  fix: string | undefined;
  /** The safe fix `--fix` runs. */
  steps: Step[];
  /** Read-only commands, run on `node`, that must succeed for a PASS (SSH trust is proven, not assumed). */
  proofs: string[];
}

/** What pm init knows about a node beyond the probe. */
export interface InitFacts {
  trust: TrustFacts;
  /** `modinfo -F version drbd`: the module the kernel would load; undefined when there is none. */
  drbdModuleVersion: string | undefined;
}

export interface InitResult {
  checks: InitCheck[];
  mode: 'check' | 'dry-run' | 'fix';
  /** The safe fixes, as --dry-run shows them and --fix runs them. */
  plan: Plan;
  /** With --fix: every fix step and how it went. */
  applied: StepRecord[];
}

/** A little less than one small VM disk: below this, a new VM will not fit. */
const LOW_VG_FREE_BYTES = 1024 ** 3;

const check = (node: string, name: string, status: CheckStatus, detail: string, fix?: string, steps: Step[] = []): InitCheck => (
  { node, check: name, status, detail, fix, steps, proofs: [] }
);

/** The node checks, from the probe's facts and the extra facts pm init reads. */
export function nodeChecks(node: NodeState, target: SshTarget, extra: InitFacts | undefined, config: Pick<Config, 'storage' | 'backups'>): InitCheck[] {
  const name = node.name;
  const f = node.facts;
  if (!node.reachable || !f) {
    return [check(name, 'ssh', 'FAIL', `${node.error?.message ?? 'not reachable'}; no other check could run`,
      node.error?.hint ?? `check that ${node.host} is up and that pmc can log in as ${target.user}`)];
  }
  const checks = [
    check(name, 'hostname', f.hostname === name ? 'PASS' : 'FAIL', f.hostname === name ? name : `calls itself "${f.hostname}"; DRBD names nodes by host name`,
      f.hostname === name ? undefined : `on ${node.host}: hostnamectl set-hostname ${name} (or rename the node in pmc.yaml)`),
    check(name, 'ssh', 'PASS', describeTarget(target)),
    drbdCheck(name, f, extra?.drbdModuleVersion),
    f.drbd.utilsVersion
      ? check(name, 'drbd-utils', 'PASS', `drbdadm ${f.drbd.utilsVersion}`)
      : check(name, 'drbd-utils', 'FAIL', 'drbdadm not found', 'apt-get install drbd-utils'),
    libvirtCheck(name, f),
    bridgeCheck(name, f),
    vgCheck(name, f, config.storage.volumeGroup),
    f.backupDirExists
      ? check(name, 'backup-dir', 'PASS', config.backups.directory)
      : check(name, 'backup-dir', 'FAIL', `${config.backups.directory} does not exist`, commandLine(['mkdir', '-p', config.backups.directory]),
        [{ node: name, command: commandLine(['mkdir', '-p', config.backups.directory]), why: `create the backup directory ${config.backups.directory}` }]),
    ...(['xdelta3', 'rsync'] as const).map((tool) => (f.tools[tool]
      ? check(name, tool, 'PASS', 'installed')
      : check(name, tool, 'FAIL', 'not installed', `apt-get install ${tool}`))),
  ];
  if (extra) {
    const key = extra.trust.rootKeys[0];
    checks.push(key
      ? check(name, 'root-key', 'PASS', `${key.file} (${describeKey(key.key)})`)
      : check(name, 'root-key', 'FAIL', 'root has no SSH key pair for node-to-node SSH', 'generate one (ssh-keygen -t ed25519)', [keyGenerationStep(name)]));
  }
  return checks;
}

function describeTarget(t: SshTarget): string {
  return `${t.user}@${t.host}:${t.port}${t.jump ? ` via ${t.jump.host}` : ''}${t.sudo ? ' with sudo' : ''}`;
}

function drbdCheck(node: string, f: NodeFacts, moduleVersion: string | undefined): InitCheck {
  if (!f.drbd.moduleLoaded) {
    return moduleVersion
      ? check(node, 'drbd', 'FAIL', `module ${moduleVersion} is not loaded`, 'modprobe drbd',
        [{ node, command: 'modprobe drbd', why: 'load the drbd kernel module' }])
      : check(node, 'drbd', 'FAIL', 'no drbd kernel module', 'boot a kernel that has the drbd module (Debian\'s kernels ship DRBD 8.4)');
  }
  const version = f.drbd.kernelVersion ?? moduleVersion ?? 'unknown';
  if (version.startsWith('8.4.')) return check(node, 'drbd', 'PASS', `module ${version} loaded`);
  if (version.startsWith('9.')) {
    return check(node, 'drbd', 'WARN', `module ${version} loaded; pmc is made and tested for DRBD 8.4`, 'use the DRBD 8.4 module of the distribution kernel');
  }
  return check(node, 'drbd', 'FAIL', `module ${version} loaded; pmc needs DRBD 8.4`, 'boot a kernel with DRBD 8.4 (Debian\'s kernels ship it)');
}

function libvirtCheck(node: string, f: NodeFacts): InitCheck {
  const hypervisor = f.libvirt.version?.hypervisor;
  if (f.libvirt.active && hypervisor?.name === 'QEMU') {
    return check(node, 'libvirt', 'PASS', `libvirt ${f.libvirt.version?.library ?? '?'}, QEMU ${hypervisor.version}`);
  }
  if (f.libvirt.active) {
    return check(node, 'libvirt', 'FAIL', `libvirtd answers but runs ${hypervisor?.name ?? 'no hypervisor'}, not QEMU`,
      'apt-get install libvirt-daemon-driver-qemu qemu-system-x86');
  }
  const why = f.problems.find((p) => p.startsWith('virsh-version'));
  return check(node, 'libvirt', 'FAIL', `libvirtd does not answer on qemu:///system${why ? ` (${why})` : ''}`, 'systemctl start libvirtd',
    [{ node, command: 'systemctl start libvirtd', why: 'start libvirtd' }]);
}

function bridgeCheck(node: string, f: NodeFacts): InitCheck {
  const b = f.bridge;
  if (b.present && b.isBridge && b.up) return check(node, 'bridge', 'PASS', `${b.name} up${b.carrier ? '' : ' (no carrier yet)'}`);
  if (b.present && b.isBridge) return check(node, 'bridge', 'FAIL', `${b.name} is down`, `ip link set ${b.name} up (and bring it up at boot)`);
  if (b.present) return check(node, 'bridge', 'FAIL', `${b.name} exists but is not a bridge`, `name the bridge that holds the uplink in network.bridge of pmc.yaml`);
  return check(node, 'bridge', 'FAIL', `no bridge ${b.name}`,
    `make ${b.name} hold the uplink NIC and the node's address, persistently (Debian, /etc/network/interfaces: "auto ${b.name}", ` +
    `"iface ${b.name} inet static", "bridge_ports <nic>", the address lines); by hand: ip link add ${b.name} type bridge && ` +
    `ip link set <nic> master ${b.name} && ip link set ${b.name} up, then move the address from <nic> to ${b.name}`);
}

function vgCheck(node: string, f: NodeFacts, vgName: string): InitCheck {
  if (!f.vg) {
    return check(node, 'vg', 'FAIL', `no volume group ${vgName}`,
      `on an empty disk or partition: pvcreate <device> && vgcreate ${vgName} <device> (or set storage.volumeGroup in pmc.yaml)`);
  }
  const detail = `${vgName}: ${formatBytes(f.vg.sizeBytes)}, ${formatBytes(f.vg.freeBytes)} free`;
  return f.vg.freeBytes < LOW_VG_FREE_BYTES
    ? check(node, 'vg', 'WARN', `${detail}: no room for new VM disks`, `add a disk: pvcreate <device> && vgextend ${vgName} <device>`)
    : check(node, 'vg', 'PASS', detail);
}

/**
 * storage.shared: mounted, and the same file system as on the other nodes (the marker's id).
 * When no node has a marker yet, the first node in scope that mounts the directory gets the
 * step that writes it: one node, so that one id wins.
 */
function sharedCheck(node: NodeState, state: ClusterState, scope: readonly string[]): InitCheck | undefined {
  const s = node.facts?.shared;
  if (!s) return undefined;
  const clusterId = sharedId(state);
  const problem = sharedProblem(node, clusterId);
  if (!problem) return check(node.name, 'shared', 'PASS', `${s.directory}: ${s.fsType ?? 'unknown file system'}, marker ${s.id}`);
  const writer = state.nodes.find((n) => scope.includes(n.name) && n.facts?.shared?.present && n.facts.shared.mountPoint && n.facts.shared.failure === undefined);
  const steps = clusterId === undefined && s.present && s.mountPoint && writer === node ? [sharedMarkerStep(node.name, s.directory)] : [];
  return check(node.name, 'shared', 'FAIL', problem.message.replace(`${node.name}: `, ''), problem.fix, steps);
}

/**
 * Writes the marker with a fresh random id, atomically and never over another one: the id goes
 * to a temporary file that is then hard-linked to the marker's name (link(2) fails where the
 * name exists, on NFS too, unlike mv). Two inits racing end up with the one id that linked first.
 */
export function sharedMarkerStep(node: string, directory: string): Step {
  const marker = quote(`${directory}/${SHARED_ID_FILE}`);
  const tmp = `${quote(`${directory}/${SHARED_ID_FILE}.`)}$$`;
  return {
    node,
    command: `umask 022 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > ${tmp} && echo >> ${tmp} && `
      + `{ ln ${tmp} ${marker} || test -s ${marker}; }; pmc_rc=$?; rm -f ${tmp}; test $pmc_rc = 0`,
    why: `mark ${directory} as the shared file system (${SHARED_ID_FILE}), so every node can prove it mounts the same one`,
  };
}

/** The check of one direction of node-to-node SSH, from the trust analysis. */
export function trustCheck(pair: TrustPair, to: TrustNode): InitCheck {
  const name = `ssh to ${pair.to}`;
  if (to.facts.hostKeys.length === 0) {
    return check(pair.from, name, 'FAIL', `cannot read ${pair.to}'s host keys (/etc/ssh/ssh_host_*_key.pub)`, `check sshd's host keys on ${pair.to}`);
  }
  if (pair.conflicts.length > 0) {
    const where = pair.conflicts.map((c) => `${c.host} (${c.lines.join(', ')})`).join(', ');
    const hosts = pair.conflicts.map((c) => c.host);
    return check(pair.from, name, 'FAIL', `${pair.from} knows a different host key for ${where}; pmc does not replace it`,
      `make sure ${pair.to}'s key really changed (its keys: ${to.facts.hostKeys.map(describeKey).join(', ')}), then on ${pair.from}: ` +
      `${hosts.map((h) => `ssh-keygen -R ${h} -f ${KNOWN_HOSTS}`).join('; ')}; and run pmc pm init --fix`, pair.steps);
  }
  const missing = [
    ...(pair.authorized ? [] : [`${pair.keyMissing ? `${pair.from} has no root key` : `${pair.from}'s root key is not`} in ${pair.to}'s ${AUTHORIZED_KEYS}`]),
    ...(pair.unknownHosts.length ? [`${pair.from} does not know ${pair.to}'s host key as ${pair.unknownHosts.join(', ')}`] : []),
  ];
  if (missing.length > 0) return check(pair.from, name, 'FAIL', missing.join('; '), pair.steps.map((s) => s.why).join('; '), pair.steps);
  return { ...check(pair.from, name, 'PASS', `key authorized, host key known as ${to.hosts.join(', ')}`), proofs: pair.proofs };
}

export interface InitInput {
  config: Pick<Config, 'storage' | 'backups'>;
  state: ClusterState;
  targets: readonly SshTarget[];
  facts: ReadonlyMap<string, InitFacts>;
  /** Nodes to check: their own checks, and trust both ways between each of them and every reachable node. */
  scope: readonly string[];
}

/** Every check for the nodes in scope, as a pure function of what was read. */
export function evaluateInit(input: InitInput): InitCheck[] {
  const checks: InitCheck[] = [];
  const targetOf = (name: string) => input.targets.find((t) => t.name === name)!;
  for (const name of input.scope) {
    const node = input.state.nodes.find((n) => n.name === name)!;
    checks.push(...nodeChecks(node, targetOf(name), input.facts.get(name), input.config));
    const shared = node.reachable ? sharedCheck(node, input.state, input.scope) : undefined;
    if (shared) checks.push(shared);
  }
  const trustNodes = input.state.nodes.flatMap((n): TrustNode[] => {
    const facts = input.facts.get(n.name);
    if (!n.reachable || !facts) return [];
    const hosts = n.host === n.name ? [n.name] : [n.name, n.host];
    return [{ name: n.name, hosts, port: targetOf(n.name).port, facts: facts.trust }];
  });
  for (const from of trustNodes) {
    for (const to of trustNodes) {
      if (from === to || !(input.scope.includes(from.name) || input.scope.includes(to.name))) continue;
      checks.push(trustCheck(analyzeTrust(from, to), to));
    }
  }
  return checks;
}

/** The fix plan: every safe fix of a failed check, each step once, in check order. */
export function fixPlan(checks: readonly InitCheck[]): Plan {
  const steps: Step[] = [];
  const same = (a: Step, b: Step) => a.node === b.node && a.command === b.command && JSON.stringify(a.input) === JSON.stringify(b.input);
  for (const c of checks) {
    if (c.status !== 'FAIL') continue;
    for (const step of c.steps) {
      if (!steps.some((s) => same(s, step))) steps.push(step);
    }
  }
  const nodes = [...new Set(steps.map((s) => s.node))];
  return {
    title: steps.length ? `apply the safe fixes on ${nodes.join(', ')}` : 'nothing that pmc may fix safely',
    steps,
    notes: [],
  };
}

/** Marks as FIXED what failed before and passes now. */
export function markFixed(before: readonly InitCheck[], after: readonly InitCheck[]): InitCheck[] {
  return after.map((c) => {
    const earlier = before.find((b) => b.node === c.node && b.check === c.check);
    return earlier?.status === 'FAIL' && c.status === 'PASS' ? { ...c, status: 'FIXED' } : c;
  });
}

export interface PmInitOptions {
  nodes: readonly string[];
  fix: boolean;
  dryRun: boolean;
}

export async function pmInit(ctx: OpContext, opts: PmInitOptions): Promise<Report<InitResult>> {
  const scope = selectNodes(ctx.config, opts.nodes).map((n) => n.name);
  if (!opts.fix || opts.dryRun) {
    const before = await checkNodes(ctx, scope);
    return report({ checks: before, mode: opts.dryRun ? 'dry-run' : 'check', plan: fixPlan(before), applied: [] });
  }
  // The trust fixes write to the other nodes too (known_hosts, authorized_keys): all are locked.
  return underLock(ctx, { lock: ctx.config.nodes.map((n) => n.name) }, async (run) => {
    const before = await checkNodes(ctx, scope);
    const plan = fixPlan(before);
    if (plan.steps.length === 0) return report({ checks: before, mode: 'fix', plan, applied: [] });
    const applied = await run.applyEach(plan);
    const after = markFixed(before, await checkNodes(ctx, scope));
    return report({ checks: after, mode: 'fix', plan, applied });
  });
}

function report(result: InitResult): Report<InitResult> {
  return { data: result, status: result.checks.some((c) => c.status === 'FAIL') ? 'failed' : 'ok', warnings: [] };
}

/** Reads everything (the probe and the extra facts at once), evaluates, and runs the proofs. */
async function checkNodes(ctx: OpContext, scope: readonly string[]): Promise<InitCheck[]> {
  const [state, extra] = await Promise.all([
    readCluster(ctx),
    ctx.pool.forEachNode(ctx.config.nodes.map((n) => n.name), (node) => readInitFacts(ctx, node)),
  ]);
  const facts = new Map(extra.flatMap((o) => (o.ok ? [[o.node, o.value] as const] : [])));
  const checks = evaluateInit({ config: ctx.config, state, targets: sshTargets(ctx.config), facts, scope });
  return Promise.all(checks.map((c) => prove(ctx, c)));
}

async function readInitFacts(ctx: OpContext, node: string): Promise<InitFacts> {
  const [trust, modinfo] = await Promise.all([
    readTrustFacts(ctx.pool, node),
    ctx.pool.run(node, 'PATH=$PATH:/usr/sbin:/sbin modinfo -F version drbd', { timeoutMs: 60_000 }),
  ]);
  return { trust, drbdModuleVersion: modinfo.exitCode === 0 ? modinfo.stdout.trim() || undefined : undefined };
}

/** Runs a passing check's proofs; the first that fails turns it into a FAIL that says why. */
async function prove(ctx: OpContext, c: InitCheck): Promise<InitCheck> {
  for (const proof of c.proofs) {
    let result: RemoteResult;
    try {
      result = await ctx.pool.run(c.node, proof, { timeoutMs: 60_000 });
    } catch (err) {
      if (!isPmcError(err)) throw err;
      return { ...c, status: 'FAIL', detail: `${c.detail}, but ${c.node} could not be asked to prove it: ${err.message}`, fix: err.hint ?? 'run pmc pm init again' };
    }
    if (result.exitCode === 0) continue;
    return { ...c, status: 'FAIL', detail: `${c.detail}, but on ${c.node} "${proof}" failed: ${describeFailure(result)}`, fix: proofFix(c.node, result.stderr) };
  }
  return c;
}

/** What to look at when ssh fails although the files say it should work. */
function proofFix(node: string, stderr: string): string {
  if (/Could not resolve hostname/i.test(stderr)) return `make the name resolve on ${node} (DNS, or a line "<address> <name>" in /etc/hosts)`;
  if (/Host key verification failed/i.test(stderr)) {
    return `ssh on ${node} reads other known_hosts files than ${KNOWN_HOSTS} (UserKnownHostsFile, GlobalKnownHostsFile in /etc/ssh/ssh_config), or they changed meanwhile: check them, then run pmc pm init again`;
  }
  if (/Permission denied/i.test(stderr)) return `the target's sshd refuses root's key: check PermitRootLogin and AuthorizedKeysFile in its /etc/ssh/sshd_config`;
  return `check sshd on the target and the network from ${node}`;
}
