/**
 * `pmc pm drbd-up` (the old tool's ready-drbd), after a node boots: activate the volume group,
 * load drbd, and bring up every configured resource that is not up, one by one, so that one
 * broken resource does not keep the others down. Then it reports every resource's state.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { Config } from '../../config/load.js';
import { selectNodes } from '../../config/targets.js';
import type { ClusterState } from '../../model/cluster.js';
import { readCluster } from '../../model/read.js';
import type { DrbdResource, NodeFacts } from '../../probe/types.js';
import { PmcError } from '../../util/errors.js';
import { commandLine } from '../../util/shell.js';
import type { StepRecord } from '../engine/execute.js';
import { underLock, type LockedRun } from '../engine/mutate.js';
import type { Plan, Step } from '../engine/plan.js';

export interface DrbdResourceRow {
  node: string;
  resource: string;
  /** ignored: a VM named with the ignore prefix; pmc leaves its resource as it is. */
  action: 'already up' | 'down' | 'would bring up' | 'brought up' | 'failed' | 'ignored';
  /** Why bringing it up failed. */
  error: string | undefined;
  role: string | undefined;
  disk: string | undefined;
  connection: string | undefined;
  peer: string | undefined;
  peerDisk: string | undefined;
}

export interface DrbdUpResult {
  mode: 'dry-run' | 'applied';
  plan: Plan;
  /** Every step that ran, failed ones included. */
  records: StepRecord[];
  resources: DrbdResourceRow[];
  /** Nodes that could not be asked, and why. */
  unreachable: { node: string; error: string }[];
}

export interface DrbdUpOptions {
  nodes: readonly string[];
  /** Only these resources; empty: every configured one. */
  resources: readonly string[];
  dryRun: boolean;
}

const UP_TIMEOUT_MS = 120_000;

/** What planning drbd-up needs of pmc.yaml. */
export type DrbdUpConfig = Pick<Config, 'ignorePrefix' | 'storage'>;

export function upStep(node: string, resource: string): Step {
  return { node, command: commandLine(['drbdadm', 'up', resource]), why: `bring up DRBD resource ${resource}`, timeoutMs: UP_TIMEOUT_MS };
}

/** Resources of the node that have an `on <its host name>` section and are wanted (`only` undefined: all). */
function localResources(state: ClusterState, node: string, only: readonly string[] | undefined): DrbdResource[] {
  const facts = state.nodes.find((n) => n.name === node)?.facts;
  if (!facts) return [];
  return facts.drbdResources.filter((r) => r.configured && r.hosts.some((h) => h.name === facts.hostname)
    && (only === undefined || only.includes(r.name)));
}

/** What must happen on a node before a resource can come up: the VG active, the module loaded. */
export function drbdPrelude(facts: NodeFacts, node: string, volumeGroup: string): Step[] {
  const steps: Step[] = [];
  if (!facts.vg || facts.lvs.some((lv) => !lv.active)) {
    steps.push({ node, command: commandLine(['vgchange', '-ay', '--', volumeGroup]), why: `activate the volume group ${volumeGroup}, so DRBD can attach its LVs`, timeoutMs: UP_TIMEOUT_MS });
  }
  if (!facts.drbd.moduleLoaded) steps.push({ node, command: 'modprobe drbd', why: 'load the drbd kernel module' });
  return steps;
}

/** Resources of VMs named with the ignore prefix: shown, never brought up (cherrypop's rule). */
export function isIgnored(resource: Pick<DrbdResource, 'name'>, ignorePrefix: string): boolean {
  return ignorePrefix !== '' && resource.name.startsWith(ignorePrefix);
}

/** What drbd-up would run on these nodes: only what is missing, in the order it must happen. */
export function planDrbdUp(state: ClusterState, nodes: readonly string[], config: DrbdUpConfig, only?: readonly string[]): Plan {
  const steps: Step[] = [];
  const volumeGroup = config.storage.volumeGroup;
  for (const node of nodes) {
    const facts = state.nodes.find((n) => n.name === node)?.facts;
    if (!facts) continue;
    const down = localResources(state, node, only).filter((r) => !r.up && !isIgnored(r, config.ignorePrefix));
    if (down.length === 0) continue;
    steps.push(...drbdPrelude(facts, node, volumeGroup), ...down.map((r) => upStep(node, r.name)));
  }
  return { title: steps.length ? `bring up DRBD on ${[...new Set(steps.map((s) => s.node))].join(', ')}` : 'every DRBD resource is up', steps, notes: [] };
}

/**
 * One row per resource: what drbd-up did (from `records`, or what it would do when there are
 * none) and the state it is in now.
 */
export function drbdUpRows(state: ClusterState, nodes: readonly string[], plan: Plan, records: readonly StepRecord[] | undefined, ignorePrefix: string, only?: readonly string[]): DrbdResourceRow[] {
  return nodes.flatMap((node) => localResources(state, node, only).map((r): DrbdResourceRow => {
    const command = upStep(node, r.name).command;
    const planned = plan.steps.some((s) => s.node === node && s.command === command);
    const record = records?.find((x) => x.step.node === node && x.step.command === command);
    const action = isIgnored(r, ignorePrefix) ? 'ignored'
      : !planned ? (r.up ? 'already up' : 'down') : !records ? 'would bring up' : record?.ok && r.up ? 'brought up' : 'failed';
    const peer = r.peers[0];
    return {
      node,
      resource: r.name,
      action,
      error: action === 'failed' ? record?.error ?? 'an earlier step failed' : undefined,
      role: r.role,
      disk: r.up ? r.diskState : 'down',
      connection: peer?.connection ?? (r.up ? 'StandAlone' : undefined),
      peer: peer?.node,
      peerDisk: peer?.diskState,
    };
  }));
}

/** Unreachable nodes among `nodes`. */
export function unreachableNodes(state: ClusterState, nodes: readonly string[]): DrbdUpResult['unreachable'] {
  return state.nodes.filter((n) => nodes.includes(n.name) && !n.reachable)
    .map((n) => ({ node: n.name, error: n.error?.message ?? 'not reachable' }));
}

/** Reads only the given nodes: drbd-up on one node must not wait for another one that is down. */
export function readNodes(ctx: Pick<OpContext, 'config' | 'pool'>, nodes: readonly string[]): Promise<ClusterState> {
  return readCluster({ pool: ctx.pool, config: { ...ctx.config, nodes: ctx.config.nodes.filter((n) => nodes.includes(n.name)) } });
}

export async function pmDrbdUp(ctx: OpContext, opts: DrbdUpOptions): Promise<Report<DrbdUpResult>> {
  const nodes = selectNodes(ctx.config, opts.nodes).map((n) => n.name);
  if (opts.dryRun) return drbdUp(ctx, nodes, opts, undefined);
  return underLock(ctx, { lock: nodes }, (run) => drbdUp(ctx, nodes, opts, run));
}

/** Reads, plans and (given the lock, `run`) applies. */
async function drbdUp(ctx: OpContext, nodes: string[], opts: DrbdUpOptions, run: LockedRun | undefined): Promise<Report<DrbdUpResult>> {
  const state = await readNodes(ctx, nodes);
  const unknown = opts.resources.filter((name) => !nodes.some((node) => localResources(state, node, [name]).length > 0));
  // On a node that could not be asked, the resource may well exist.
  if (unknown.length > 0 && state.nodes.every((n) => n.reachable)) {
    throw new PmcError('PMC_E_USAGE', `no DRBD resource ${unknown.join(', ')} on ${nodes.join(', ')}`, 'pmc vm ls shows the resources (resource = VM name)');
  }
  const only = opts.resources.length ? opts.resources : undefined;
  const plan = planDrbdUp(state, nodes, ctx.config, only);
  const unreachable = unreachableNodes(state, nodes);
  if (!run) {
    return report({ mode: 'dry-run', plan, records: [], resources: drbdUpRows(state, nodes, plan, undefined, ctx.config.ignorePrefix, only), unreachable });
  }
  const records = await run.applyEach(plan);
  const after = plan.steps.length ? await readNodes(ctx, nodes) : state;
  return report({ mode: 'applied', plan, records, resources: drbdUpRows(after, nodes, plan, records, ctx.config.ignorePrefix, only), unreachable });
}

function report(result: DrbdUpResult): Report<DrbdUpResult> {
  const failed = result.records.some((r) => !r.ok) || result.resources.some((r) => r.action === 'failed');
  return {
    data: result,
    status: failed ? 'failed' : result.unreachable.length ? 'partial' : 'ok',
    warnings: result.unreachable.map((u) => u.error),
  };
}
