/**
 * What the vm add tests share: a pmc.yaml for the three lab nodes (DRBD minors 100-199, ports
 * 7900-7999), requests, and the facts the handler would have read, from the real cluster's
 * `virsh capabilities` and `virsh cpu-baseline --migratable`.
 */
import { parseConfig, type Config } from '../../../src/config/load.js';
import { buildCluster, type ClusterState, type NodeProbe } from '../../../src/model/cluster.js';
import { parseCapabilities } from '../../../src/ops/vm/domain-xml.js';
import type { VmAddFacts, VmAddRequest } from '../../../src/ops/vm/add-plan.js';
import type { NodeFacts } from '../../../src/probe/types.js';
import { ADDRESSES, probes } from '../model/factory.js';
import { real } from '../probe/helpers.js';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const NODES = ['pm-1', 'pm-2', 'pm-3'];

export const CAPABILITIES_XML = real('virsh-capabilities.xml');
export const CPU_BASELINE_XML = real('virsh-cpu-baseline-migratable.xml');

export function config(extra = '', nodes = NODES, storage: string[] = []): Config {
  const yaml = [
    'nodes:',
    ...nodes.flatMap((n) => [`  - name: ${n}`, `    address: ${ADDRESSES[n] ?? n}`]),
    'storage:',
    '  drbd:',
    '    minors: { first: 100, last: 199 }',
    '    ports: { first: 7900, last: 7999 }',
    ...storage,
    'domainType: qemu',
    extra,
  ].join('\n');
  return parseConfig(yaml, '/etc/pmc/pmc.yaml', {});
}

export function cluster(cfg: Config, ...parts: Record<string, Partial<NodeFacts>>[]): ClusterState {
  return buildCluster(cfg, probes(cfg.nodes.map((n) => n.name), ...parts));
}

export function withNodeDown(cfg: Config, node: string, ...parts: Record<string, Partial<NodeFacts>>[]): ClusterState {
  const all: NodeProbe[] = probes(cfg.nodes.map((n) => n.name), ...parts).map((p) => (p.node === node
    ? { node, ok: false, error: { code: 'PMC_E_NODE_UNREACHABLE', message: `${node}: no answer from ${ADDRESSES[node]}:22 within 10 s` } }
    : p));
  return buildCluster(cfg, all);
}

export function request(parts: Partial<VmAddRequest> = {}): VmAddRequest {
  return {
    name: 'web',
    nodes: ['pm-1', 'pm-2'],
    sizeBytes: GiB,
    memoryBytes: 128 * MiB,
    vcpus: 1,
    iso: undefined,
    ip: undefined,
    mac: undefined,
    clone: undefined,
    image: undefined,
    start: true,
    force: false,
    shared: false,
    ...parts,
  };
}

export const UUID = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';

export function facts(parts: Partial<VmAddFacts> = {}): VmAddFacts {
  const capabilities = Object.fromEntries(NODES.map((n) => [n, parseCapabilities(CAPABILITIES_XML, n)]));
  return {
    uuid: UUID,
    mac: '52:54:00:aa:bb:cc',
    cpu: CPU_BASELINE_XML,
    capabilities,
    addresses: { ...ADDRESSES },
    iso: undefined,
    image: undefined,
    ...parts,
  };
}
