/**
 * Shared-storage VMs: their disk is one file on the network file system every node mounts, so
 * nothing but pmc keeps two nodes from running one at once and writing the file both. These
 * are the checks every operation on one makes first.
 */
import type { Config } from '../../config/load.js';
import { isActive, type ClusterState } from '../../model/cluster.js';
import { sharedId, sharedProblem } from '../../model/shared.js';
import { PmcError } from '../../util/errors.js';
import { quote } from '../../util/shell.js';

/**
 * storage.shared.directory, once it is known to be the same mounted file system on every node;
 * every node must have answered, because a shared VM is defined on all of them.
 */
export function sharedDirectory(state: ClusterState, config: Pick<Config, 'storage'>, what: string): string {
  const shared = config.storage.shared;
  if (!shared) {
    throw new PmcError('PMC_E_USAGE', `${what} needs storage.shared in pmc.yaml, and it is not set`,
      'set storage.shared.directory to the network file system every node mounts there, then run pmc pm init');
  }
  const down = state.nodes.filter((n) => !n.reachable || !n.facts);
  if (down.length > 0) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE', `${what} needs every node, and ${down.map((n) => n.name).join(', ')} could not be asked`,
      `${down[0]!.error?.message ?? `check that ${down[0]!.host} is up`}; try again once it answers`);
  }
  const clusterId = sharedId(state);
  for (const node of state.nodes) {
    const problem = sharedProblem(node, clusterId);
    if (problem) throw new PmcError('PMC_E_STATE', `${what}: ${problem.message}`, `${problem.fix}; pmc cluster verify lists every node's problem`);
  }
  return shared.directory;
}

/**
 * Never runs twice: a shared VM starts only when every node answered this run's probe and none
 * runs it, since any of them could. `fenced` nodes count as down without answering: a fence
 * command powered them off. Every start of a shared VM (vm add, vm start, failover) asks here.
 */
export function assertNotRunningElsewhere(state: ClusterState, name: string, fenced: readonly string[] = []): void {
  const silent = state.nodes.filter((n) => !n.reachable && !fenced.includes(n.name));
  if (silent.length > 0) {
    throw new PmcError('PMC_E_NODE_UNREACHABLE',
      `${name} is a shared-storage VM and ${silent.map((n) => n.name).join(', ')} could not be asked whether it runs it there`,
      `start it once every node answers (a node that is down for good: fence it, then pmc vm failover ${quote(name)})`);
  }
  const running = state.nodes.filter((n) => n.facts?.domains.some((d) => d.name === name && isActive(d)));
  if (running.length > 0) {
    throw new PmcError('PMC_E_STATE', `${name} already runs on ${running.map((n) => n.name).join(' and ')}: a shared-storage VM never runs twice`,
      `stop it there first (pmc vm stop ${quote(name)}), or move it with pmc vm mv ${quote(name)} --to <node>`);
  }
}
