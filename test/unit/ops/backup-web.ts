/**
 * The cluster and config the backup shell tests and the backup pipeline benchmark plan against:
 * one VM "web" on pm-1 and pm-2 whose disk is `dataBytes` long, backed up into `directory`.
 */
import { buildCluster, type ClusterState } from '../../../src/model/cluster.js';
import { CONFIG, domain, pairedVm, probes } from '../model/factory.js';

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

/**
 * A shared-storage VM "files" whose disk is the file `file` (and an empty CD-ROM drive), defined
 * on pm-1, pm-2 and pm-3, running on `runningOn` or shut off everywhere.
 */
export function sharedCluster(file: string, runningOn: string | undefined): ClusterState {
  const disks = () => [
    { device: 'disk', type: 'file', source: file, target: 'vda', bus: 'virtio' },
    { device: 'cdrom', type: 'file', source: undefined, target: 'sda', bus: 'sata' },
  ];
  const nodes = ['pm-1', 'pm-2', 'pm-3'];
  const parts = Object.fromEntries(nodes.map((n) => [n, { domains: [domain('files', n === runningOn ? 'running' : 'shut off', { disks: disks() })] }]));
  const state = buildCluster(CONFIG, probes(nodes, parts));
  // The shared-storage branch's model marks it from the disk's place; here the test does.
  state.vms.find((v) => v.name === 'files')!.shared = { file };
  return state;
}
