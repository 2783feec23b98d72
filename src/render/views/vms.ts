import type { VmDetails, VmSummary } from '../../ops/vm/list.js';
import { formatBytes } from '../../util/units.js';
import type { ViewOptions } from '../output.js';
import type { Style } from '../style.js';
import { renderTable, type Column } from '../table.js';

const bytes = (n: number | undefined) => (n === undefined ? undefined : formatBytes(n));

export function replicationText(vm: Pick<VmSummary, 'replication' | 'storage'>): string | undefined {
  // A shared VM's disk is replicated (or not) by the network file system, out of pmc's sight.
  if (vm.storage === 'shared') return 'shared';
  const r = vm.replication;
  if (!r) return undefined;
  const sync = r.syncPercent === undefined ? '' : ` ${r.syncPercent.toFixed(1)}%`;
  const link = r.connection === 'Connected' ? (r.replication === 'Established' ? '' : ` ${r.replication}`) : ` ${r.connection}`;
  return `${r.disks}${link}${sync}`;
}

function paintState(vm: VmSummary, text: string, s: Style): string {
  if (vm.state === 'running') return s.ok(text);
  if (vm.state === 'running twice' || vm.state === 'crashed') return s.bad(text);
  return text;
}

function paintFlags(vm: VmSummary, text: string, s: Style): string {
  if (vm.flags.some((f) => f === 'split-brain' || f === 'running-twice' || f === 'two-primaries')) return s.bad(text);
  return vm.flags.length ? s.warn(text) : text;
}

export const VM_COLUMNS: Column<VmSummary>[] = [
  { field: 'name', header: 'VM', value: (v) => v.name },
  { field: 'node', header: 'NODE', value: (v) => v.node },
  { field: 'peer', header: 'PEER', value: (v) => v.peer },
  { field: 'state', header: 'STATE', value: (v) => v.state, paint: paintState },
  { field: 'vcpus', header: 'CPUS', align: 'right', value: (v) => v.vcpus },
  { field: 'memory', header: 'MEM', align: 'right', value: (v) => bytes(v.memoryBytes) },
  { field: 'disk', header: 'DISK', align: 'right', value: (v) => bytes(v.diskBytes) },
  { field: 'minor', header: 'MINOR', align: 'right', value: (v) => v.minor },
  { field: 'port', header: 'PORT', align: 'right', value: (v) => v.port },
  {
    field: 'repl', header: 'REPLICATION', value: replicationText,
    paint: (v, t, s) => (v.storage === 'shared' || (v.replication?.disks === 'UpToDate/UpToDate' && v.replication.connection === 'Connected') ? s.ok(t) : s.warn(t)),
  },
  { field: 'flags', header: 'FLAGS', value: (v) => v.flags.join(','), paint: paintFlags },
  { field: 'uuid', header: 'UUID', value: (v) => v.uuid, optional: true },
  { field: 'nodes', header: 'NODES', value: (v) => v.nodes.join(','), optional: true },
  { field: 'roles', header: 'ROLES', value: (v) => v.replication?.roles, optional: true },
  { field: 'storage', header: 'STORAGE', value: (v) => v.storage, optional: true },
];

export function vmsView(rows: VmSummary[], opts: ViewOptions): string {
  return renderTable(rows, VM_COLUMNS, opts);
}

export function vmDetailsView(vm: VmDetails, opts: ViewOptions): string {
  const s = opts.style;
  const lines: string[] = [];
  const field = (key: string, value: unknown, indent = '') => {
    if (value !== undefined && value !== '') lines.push(`${indent}${s.bold(`${key}:`)} ${String(value)}`);
  };
  field('VM', vm.name);
  field('State', vm.state);
  field('Runs on', vm.runningOn.join(', ') || 'nowhere');
  field('Nodes', vm.nodes.join(', '));
  field('UUID', vm.uuid);
  field('vCPUs', vm.vcpus);
  field('Memory', bytes(vm.memoryBytes));
  field('Disk', bytes(vm.diskBytes));
  field('Storage', vm.sharedFile ? `shared, ${vm.sharedFile}` : undefined);
  field('DRBD minor', vm.minor);
  field('DRBD port', vm.port);
  field('Replication', replicationText(vm));
  field('Flags', vm.flags.join(', ') || 'none');
  field('Ignored', vm.ignored ? 'yes (pmc will not change it)' : undefined);
  for (const r of vm.replicas) {
    lines.push('', s.bold(`Node ${r.node}${r.reachable ? '' : ' (unreachable: nothing known)'}`));
    if (!r.reachable) continue;
    const d = r.domain;
    if (d) {
      field('domain', `${d.state}${d.stateReason ? ` (${d.stateReason})` : ''}, uuid ${d.uuid}, ${d.vcpus} vCPU, ${formatBytes(d.memoryBytes)}, autostart ${d.autostart ? 'on' : 'off'}`, '  ');
      for (const disk of d.disks) field(`  ${disk.device} ${disk.target}`, `${disk.type} ${disk.source ?? '(empty)'}`, '  ');
      for (const nic of d.interfaces) field('  nic', `${nic.mac ?? '?'} on ${nic.bridge ?? nic.network ?? nic.type}`, '  ');
    } else field('domain', 'not defined', '  ');
    const res = r.resource;
    // A shared VM has no DRBD resource or LV on any node: saying so per node tells nothing.
    if (vm.storage === 'shared') continue;
    if (res) {
      const peers = res.peers.map((p) => `${p.node ?? 'peer'} ${p.connection} ${p.role} ${p.diskState}${p.syncPercent === undefined ? '' : ` ${p.syncPercent}%`}`);
      field('drbd', res.up ? `${res.role} ${res.diskState}; ${peers.join('; ') || 'no peer'}` : 'down (configured, not up)', '  ');
      field('  resource', `${res.name} minor ${res.minor ?? '?'} port ${res.port ?? '?'} device ${res.device ?? '?'} on ${res.disk ?? '?'}`, '  ');
      field('  config', res.configFile, '  ');
      field('  allow-two-primaries', res.allowTwoPrimaries ? 'yes (in the file)' : undefined, '  ');
      if (res.splitBrain) field('  split brain', 'yes', '  ');
    } else field('drbd', 'no resource', '  ');
    field('lv', r.lv ? `${r.lv.path} ${formatBytes(r.lv.sizeBytes)} ${r.lv.attr}` : 'none', '  ');
  }
  return lines.join('\n');
}
