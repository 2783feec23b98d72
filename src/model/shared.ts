import { SHARED_ID_FILE } from '../probe/script.js';
import { quote } from '../util/shell.js';
import type { ClusterState, NodeState } from './cluster.js';

/**
 * Is storage.shared.directory the one shared file system on every node? The marker file holds a
 * random id that `pm init` writes once; a node that sees another id (or none) mounts something
 * else there. pm init, cluster verify and `vm add --shared` ask the same questions here.
 */

/** A shared VM's disk: the raw file `<directory>/<vm>.img`. */
export function sharedDiskFile(directory: string, vm: string): string {
  return `${directory}/${vm}.img`;
}

/**
 * The overlay that takes a running shared VM's writes while `vm backup` reads its file: beside
 * the file on the shared file system (so the VM can still migrate meanwhile), hidden, named after
 * the VM. A domain left on it (a merge that failed) is still that VM, with the same file.
 */
export function backupOverlayFile(directory: string, vm: string): string {
  return `${directory}/.${vm}.pmc-backup.qcow2`;
}

/** The marker id most reachable nodes see (the first node's on a tie); undefined when none sees one. */
export function sharedId(state: ClusterState): string | undefined {
  const counts = new Map<string, number>();
  for (const node of state.nodes) {
    const id = node.facts?.shared?.id;
    if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  let best: [string, number] | undefined;
  for (const entry of counts) if (!best || entry[1] > best[1]) best = entry;
  return best?.[0];
}

export interface SharedProblem {
  message: string;
  fix: string;
}

/** What is wrong with the shared directory on a reachable node, or undefined when it is the shared file system. */
export function sharedProblem(node: NodeState, clusterId: string | undefined): SharedProblem | undefined {
  const s = node.facts?.shared;
  if (!s) return undefined;
  const dir = s.directory;
  const mount = `mount the shared file system at ${dir} on ${node.name} (and in /etc/fstab)`;
  if (s.failure !== undefined) {
    return { message: `${node.name}: ${dir} could not be read (${s.failure})`, fix: `check the mount on ${node.name}: findmnt ${quote(dir)}` };
  }
  if (!s.present) return { message: `${node.name}: ${dir} does not exist`, fix: mount };
  if (!s.mountPoint) {
    return { message: `${node.name}: ${dir} is not a mount point (it is on the ${s.fsType ?? 'unknown'} file system of a parent)`, fix: mount };
  }
  const marker = `${dir}/${SHARED_ID_FILE}`;
  if (s.id === undefined && clusterId === undefined) {
    return { message: `${node.name}: ${dir} has no marker ${marker}`, fix: 'pmc pm init --fix (writes the marker once, from one node)' };
  }
  if (s.id === undefined) {
    return { message: `${node.name}: ${dir} lacks the marker the other nodes see there: it is another file system`, fix: `${mount}, the same export the other nodes mount` };
  }
  if (clusterId !== undefined && s.id !== clusterId) {
    return {
      message: `${node.name}: the marker in ${dir} says ${s.id}, the other nodes' says ${clusterId}: it is another file system`,
      fix: `${mount}, the same export the other nodes mount`,
    };
  }
  return undefined;
}
