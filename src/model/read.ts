import type { Config } from '../config/load.js';
import type { SshPool } from '../ssh/pool.js';
import { parseProbeOutput } from '../probe/gather.js';
import { buildProbeScript } from '../probe/script.js';
import type { ProbeOptions } from '../probe/types.js';
import { buildCluster, type ClusterState, type NodeProbe } from './cluster.js';

/**
 * Reads the live cluster: the probe script on every node at once, one round trip each.
 * Unreachable nodes become part of the state, never a failure of the whole read.
 */
export async function readCluster(ctx: { config: Config; pool: SshPool }): Promise<ClusterState> {
  const opts: ProbeOptions = {
    volumeGroup: ctx.config.storage.volumeGroup,
    bridge: ctx.config.network.bridge,
    backupDir: ctx.config.backups.directory,
    sharedDir: ctx.config.storage.shared?.directory,
  };
  const script = buildProbeScript(opts);
  const outcomes = await ctx.pool.forEachNode(ctx.config.nodes.map((n) => n.name), async (node) => {
    const result = await ctx.pool.run(node, script, { timeoutMs: 120_000 });
    return parseProbeOutput(result.stdout, opts);
  });
  const probes: NodeProbe[] = outcomes.map((o) => (o.ok
    ? { node: o.node, ok: true, value: o.value }
    : { node: o.node, ok: false, error: { code: o.error.code, message: o.error.message, hint: o.error.hint } }));
  return buildCluster(ctx.config, probes);
}

/** Warnings for a listing: one line per node that could not be asked. */
export function unreachableWarnings(state: ClusterState): string[] {
  return state.nodes.filter((n) => !n.reachable).map((n) => `${n.error?.message ?? `${n.name}: not reachable`}`);
}
