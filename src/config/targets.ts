import type { SshTarget } from '../ssh/types.js';
import { PmcError } from '../util/errors.js';
import type { Config, NodeConfig } from './load.js';

/** Resolves the SSH settings of every node: defaults, then the node's own overrides. */
export function sshTargets(config: Config, env: NodeJS.ProcessEnv = process.env): SshTarget[] {
  return config.nodes.map((n) => sshTarget(config, n, env));
}

function sshTarget(config: Config, node: NodeConfig, env: NodeJS.ProcessEnv): SshTarget {
  const d = config.ssh;
  const o = node.ssh ?? {};
  const user = o.user ?? d.user;
  const useAgent = o.agent ?? d.agent;
  const knownHostsFiles = o.knownHosts ?? d.knownHosts;
  const jumpHost = o.jumpHost ?? d.jumpHost;
  const base = {
    user,
    identityFiles: o.identityFiles ?? d.identityFiles,
    agentSocket: useAgent ? env.SSH_AUTH_SOCK || undefined : undefined,
    knownHostsFiles,
    connectTimeoutMs: (o.connectTimeout ?? d.connectTimeout) * 1000,
    keepaliveIntervalMs: (o.keepaliveInterval ?? d.keepaliveInterval) * 1000,
  };
  return {
    ...base,
    name: node.name,
    host: node.address ?? node.name,
    port: o.port ?? d.port,
    sudo: o.sudo ?? d.sudo,
    jump: jumpHost ? {
      ...base,
      name: `${jumpHost.host} (jump host)`,
      host: jumpHost.host,
      port: jumpHost.port,
      user: jumpHost.user ?? user,
      sudo: false,
      jump: undefined,
    } : undefined,
  };
}

/** The node entries named on the command line, in config order; unknown names are an error. */
export function selectNodes(config: Config, names: readonly string[]): NodeConfig[] {
  const known = new Set(config.nodes.map((n) => n.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new PmcError('PMC_E_NODE_UNKNOWN', `node ${unknown.map((n) => JSON.stringify(n)).join(', ')} is not in ${config.file}`,
      `known nodes: ${[...known].join(', ')}; add it under "nodes:" first`);
  }
  return names.length === 0 ? config.nodes : config.nodes.filter((n) => names.includes(n.name));
}
