/**
 * What `pmc cluster heal` does, as a pure function of the cluster state: what cherrypop's
 * daemons did when a node vanished, without a daemon. A node that does not answer and has a
 * fence command has its VMs failed over (the checks and plan of `pmc pm failover`); one
 * without a fence command is left alone, and the operator is told what to do: an unattended
 * run has nobody to type the node's name, and the fence command is the only proof it accepts.
 * A node that answers and holds copies made stale by a failover rejoins (`pmc pm rejoin`).
 */
import type { Config } from '../../config/load.js';
import type { ClusterState } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import type { Plan } from '../engine/plan.js';
import { planRejoin } from '../pm/rejoin.js';
import { planFailover, selectFailovers } from '../vm/failover.js';

export type HealAction =
  /** A dead node with a fence command: fence it, then start its VMs on their peers. */
  | { kind: 'failover'; node: string; fence: string; vms: string[]; plan: Plan }
  /** A node back after a failover: its stale copies resync from the survivors. */
  | { kind: 'rejoin'; node: string; vms: string[]; plan: Plan }
  /** Something heal must not do alone; nothing changes, the operator acts (exit 1). */
  | { kind: 'blocked'; node: string; reason: string; fix: string; notes: string[] }
  /** A dead node with nothing (left) to fail over: nothing to do until it is back. */
  | { kind: 'down'; node: string; reason: string };

/** The actions, failovers first (VMs that are down matter most), then rejoins; [] when healthy. */
export function planHeal(state: ClusterState, config: Config): HealAction[] {
  const down = state.nodes.filter((n) => !n.reachable).map((n) => downAction(state, config, n.name));
  const back = state.nodes.filter((n) => n.reachable).flatMap((n) => rejoinAction(state, config, n.name));
  return [...down, ...back];
}

function downAction(state: ClusterState, config: Config, node: string): HealAction {
  let selected: ReturnType<typeof selectFailovers>;
  try {
    selected = selectFailovers(state, config, node);
  } catch (err) {
    if (!(err instanceof PmcError)) throw err;
    return { kind: 'down', node, reason: `${node} does not answer; ${err.message}` };
  }
  const vms = selected.targets.map((t) => t.vm);
  const fence = config.nodes.find((n) => n.name === node)?.fence;
  if (!fence) {
    return {
      kind: 'blocked', node,
      reason: `${node} does not answer and has no fence command: its VMs ${vms.join(', ')} stay down`,
      fix: `make sure it is off, then: pmc pm failover ${node}`,
      notes: selected.skipped,
    };
  }
  const plan = planFailover(selected.targets, selected.skipped);
  plan.notes.unshift(`${node} is fenced first (its fence command in pmc.yaml); nothing changes unless it exits 0`);
  return { kind: 'failover', node, fence, vms, plan };
}

/** Only copies a failover made stale (the survivor's record says so); a split brain is left to the operator. */
function rejoinAction(state: ClusterState, config: Config, node: string): HealAction[] {
  const stale = state.vms.filter((v) => !v.ignored && v.authority?.lostNode === node && v.replicas.some((r) => r.node === node)).map((v) => v.name);
  if (stale.length === 0) return [];
  const plan = planRejoin(state, config, node);
  if (!plan.notes.some((n) => n.includes('is discarded'))) {
    return [{
      kind: 'blocked', node,
      reason: `${node} holds stale copies of ${stale.join(', ')}, but none can resync now`,
      fix: `see the notes; once the survivors are up and UpToDate, heal rejoins ${node} (or: pmc pm rejoin ${node})`,
      notes: plan.notes,
    }];
  }
  return [{ kind: 'rejoin', node, vms: stale, plan }];
}
