/**
 * Reading the backups off the nodes (read-only), for every backup command.
 */
import type { OpContext } from '../engine/context.js';
import type { ClusterState } from '../../model/cluster.js';
import { PmcError } from '../../util/errors.js';
import { describeFailure } from '../engine/execute.js';
import { listingCommand, parseListing, type BackupEntry } from './catalog.js';

export interface BackupInventory {
  entries: BackupEntry[];
  /** Nodes whose backups are not in the list, and why. */
  warnings: string[];
}

/** Every backup on the given nodes (default: every node that answered the probe), in one round trip each. */
export async function readBackups(ctx: OpContext, state: ClusterState, nodes?: readonly string[]): Promise<BackupInventory> {
  const asked = nodes ?? state.nodes.filter((n) => n.reachable).map((n) => n.name);
  const warnings = state.nodes.filter((n) => !n.reachable && asked.includes(n.name))
    .map((n) => `${n.name}: not reachable, its backups are not listed (${n.error?.message ?? 'no answer'})`);
  const reachable = asked.filter((n) => state.nodes.find((s) => s.name === n)?.reachable);
  const directory = ctx.config.backups.directory;
  const outcomes = await ctx.pool.forEachNode(reachable, async (node) => {
    const result = await ctx.pool.run(node, listingCommand(directory), { timeoutMs: 120_000 });
    if (result.exitCode !== 0) throw new PmcError('PMC_E_REMOTE', `${node}: cannot list ${directory}: ${describeFailure(result)}`);
    return parseListing(node, directory, result.stdout);
  });
  const entries: BackupEntry[] = [];
  for (const o of outcomes) {
    if (!o.ok) {
      warnings.push(`${o.node}: its backups are not listed: ${o.error.message}`);
      continue;
    }
    entries.push(...o.value.entries);
    warnings.push(...o.value.problems);
  }
  return { entries, warnings };
}
