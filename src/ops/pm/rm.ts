/**
 * `pmc pm rm`: a node leaves. Refused while it holds any VM's copy (or runs a shared-storage
 * VM); otherwise the shared VMs it defines are undefined there, the other nodes stop trusting it
 * (the reverse of what pm init set up: its root key leaves their authorized_keys, its names
 * leave their known_hosts), then it leaves pmc.yaml.
 */
import { sshTargets } from '../../config/targets.js';
import type { ClusterState } from '../../model/cluster.js';
import { entryMatches, hostLookupName } from '../../ssh/known-hosts.js';
import { PmcError } from '../../util/errors.js';
import { commandLine, quote } from '../../util/shell.js';
import type { OpContext, Report } from '../engine/context.js';
import type { ApplyResult } from '../engine/execute.js';
import { mutate } from '../engine/mutate.js';
import type { Plan, Step } from '../engine/plan.js';
import { virshCommand } from '../vm/lifecycle.js';
import { editConfigFile } from './config-file.js';
import { removeNodeFromYaml } from './nodes-yaml.js';
import {
  AUTHORIZED_KEYS, describeKey, KNOWN_HOSTS, readTrustFacts, sameKey, type PublicKey, type TrustFacts,
} from './ssh-trust.js';

export interface PmRmInput {
  state: ClusterState;
  node: string;
  /** The port the other nodes reach it on (its known_hosts names are [host]:port otherwise). */
  port: number;
  /** Trust facts of every node that answered, the removed one included when it did. */
  trust: ReadonlyMap<string, TrustFacts>;
  configFile: string;
}

/**
 * The VMs with a copy on the node: a domain or DRBD resource on it, or a resource on another
 * node that names it as its peer (all that is known of a node that did not answer). A shared
 * VM's definition is no copy (its disk is on the shared file system) unless it runs there.
 */
export function copiesOn(state: ClusterState, node: string): string[] {
  return state.vms.filter((vm) => vm.nodes.includes(node) && (!vm.shared || vm.runningOn.includes(node))).map((vm) => vm.name);
}

/** Plans the removal as a pure function of what was read; refuses while the node holds a copy. */
export function planPmRm(input: PmRmInput): Plan {
  const { state, node } = input;
  const me = state.nodes.find((n) => n.name === node)!;
  const held = copiesOn(state, node);
  if (held.length > 0) {
    const where = me.reachable ? `${node} holds a copy of ${held.join(', ')}` : `${node} does not answer, and the other nodes name it as the DRBD peer of ${held.join(', ')}`;
    throw new PmcError('PMC_E_STATE', `${where}; nothing was changed`,
      `move them off first: pmc pm evacuate --secondaries ${quote(node)} (or pmc vm peer-recreate per VM${me.reachable ? '' : ', from its surviving copy'})`);
  }
  // A key pair copied to several nodes is also the others' key: removing it would cut them off too.
  const sharedWith = (key: PublicKey) => [...input.trust].filter(([name, f]) => name !== node && f.rootKeys.some((k) => sameKey(k.key, key))).map(([name]) => name);
  const nodeKeys = input.trust.get(node)?.rootKeys.map((k) => k.key) ?? [];
  const rootKeys = nodeKeys.filter((k) => sharedWith(k).length === 0);
  const names = [...new Set([node, me.host].map((h) => hostLookupName(h, input.port)))];
  const steps: Step[] = [];
  // Nothing would keep a definition left on a node pmc no longer asks from starting the VM twice.
  for (const vm of state.vms.filter((v) => v.shared)) {
    const domain = vm.replicas.find((r) => r.node === node)?.domain;
    if (domain) steps.push({ node, command: virshCommand('undefine', domain), why: `undefine the shared-storage VM ${vm.name} on ${node} (its disk stays on the shared file system)` });
  }
  for (const other of state.nodes) {
    const facts = input.trust.get(other.name);
    if (other.name === node || !facts) continue;
    for (const key of rootKeys.filter((k) => facts.authorizedKeys.some((a) => sameKey(a, k)))) {
      steps.push({
        node: other.name,
        // '|' is not in base64: the key is matched as a fixed string inside the line, whatever options precede it.
        command: commandLine(['sed', '-i', '-e', `\\|${key.type} ${key.base64}|d`, AUTHORIZED_KEYS]),
        why: `stop root from ${node} logging in to ${other.name}: remove its ${key.type} key from ${AUTHORIZED_KEYS}`,
      });
    }
    const known = names.filter((name) => facts.knownHosts.some((e) => e.file === KNOWN_HOSTS && entryMatches(e, [name])));
    for (const name of known) {
      steps.push({
        node: other.name,
        command: commandLine(['ssh-keygen', '-R', name, '-f', KNOWN_HOSTS]),
        why: `forget ${node}'s host key as ${name} in ${other.name}'s ${KNOWN_HOSTS} (ssh-keygen keeps the old file as known_hosts.old)`,
      });
    }
  }
  const notes = [`then remove ${node} from ${input.configFile} (its comments and the other entries stay as they are)`];
  for (const key of nodeKeys.filter((k) => sharedWith(k).length > 0)) {
    notes.push(`${node}'s root key (${describeKey(key)}) is also the root key of ${sharedWith(key).join(', ')}: it stays in the others' ${AUTHORIZED_KEYS}`);
  }
  if (!me.reachable) notes.push(`${node} does not answer; no VM on the other nodes names it as a DRBD peer, so it may go`);
  if (!input.trust.has(node)) notes.push(`${node}'s root key could not be read: any entry for it in the others' ${AUTHORIZED_KEYS} stays (remove it by hand)`);
  for (const other of state.nodes.filter((n) => n.name !== node && !n.reachable)) {
    notes.push(`${other.name} could not be asked: its trust of ${node} stays (${AUTHORIZED_KEYS}, ${KNOWN_HOSTS})`);
  }
  return { title: `remove ${node} from the cluster`, steps, notes };
}

export async function removeNode(ctx: OpContext, node: string, opts: { force: boolean; dryRun: boolean }): Promise<Report<ApplyResult>> {
  if (ctx.config.nodes.length === 1) {
    throw new PmcError('PMC_E_USAGE', `${node} is the only node in ${ctx.config.file}; pmc needs at least one`, 'add the node that replaces it first (pmc pm add)');
  }
  const port = sshTargets(ctx.config).find((t) => t.name === node)!.port;
  const report = await mutate(ctx, {
    lock: ctx.config.nodes.map((n) => n.name),
    dryRun: opts.dryRun,
    plan: async (state) => {
      const reachable = state.nodes.filter((n) => n.reachable).map((n) => n.name);
      const outcomes = await ctx.pool.forEachNode(reachable, (name) => readTrustFacts(ctx.pool, name));
      const trust = new Map(outcomes.flatMap((o) => (o.ok ? [[o.node, o.value] as const] : [])));
      return planPmRm({ state, node, port, trust, configFile: ctx.config.file });
    },
    confirm: async (_state, plan) => {
      if (!opts.force) await ctx.confirm(node, `${plan.title}: it leaves ${ctx.config.file} and the other nodes stop trusting it`, '-f');
    },
    mattering: (state) => state.nodes.map((n) => n.name).filter((n) => n !== node),
  });
  if (report.data.status === 'applied') editConfigFile(ctx.config.file, (text) => removeNodeFromYaml(text, ctx.config.file, node));
  return report;
}
