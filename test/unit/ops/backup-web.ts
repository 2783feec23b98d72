/**
 * The cluster and config the backup shell tests and the backup pipeline benchmark plan against:
 * one VM "web" on pm-1 and pm-2 whose disk is `dataBytes` long, backed up into `directory`.
 */
import { buildCluster, type ClusterState } from '../../../src/model/cluster.js';
import { CONFIG, pairedVm, probes } from '../model/factory.js';

export function webCluster(dataBytes: number): ClusterState {
  const state = buildCluster(CONFIG, probes(['pm-1', 'pm-2', 'pm-3'], pairedVm('web', 'pm-1', 'pm-2', 10)));
  for (const node of state.nodes) for (const r of node.facts!.drbdResources) r.sizeBytes = dataBytes;
  return state;
}

export function backupConfig(directory: string) {
  return {
    ignorePrefix: 'ignore',
    storage: { volumeGroup: 'vg-pmc', drbd: { minors: { first: 10, last: 99 }, ports: { first: 7788, last: 7888 }, resyncRate: '100M' } },
    backups: { directory, retention: { full: 2, incremental: 14 } },
  };
}
