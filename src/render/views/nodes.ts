import type { PmSummary } from '../../ops/pm/list.js';
import { formatBytes } from '../../util/units.js';
import type { ViewOptions } from '../output.js';
import { renderTable, type Column } from '../table.js';

const bytes = (n: number | undefined) => (n === undefined ? undefined : formatBytes(n));

export const PM_COLUMNS: Column<PmSummary>[] = [
  { field: 'name', header: 'NODE', value: (r) => r.name },
  {
    field: 'status', header: 'STATUS', value: (r) => (r.reachable ? 'up' : 'unreachable'),
    paint: (r, t, s) => (r.reachable ? s.ok(t) : s.bad(t)),
  },
  { field: 'running', header: 'RUN', align: 'right', value: (r) => (r.reachable ? r.running.length : undefined) },
  { field: 'runmem', header: 'RUN-MEM', align: 'right', value: (r) => (r.reachable ? bytes(r.runningMemoryBytes) : undefined) },
  { field: 'shutoff', header: 'OFF', align: 'right', value: (r) => (r.reachable ? r.shutOff.length : undefined) },
  { field: 'offmem', header: 'OFF-MEM', align: 'right', value: (r) => (r.reachable ? bytes(r.shutOffMemoryBytes) : undefined) },
  { field: 'memtotal', header: 'MEM', align: 'right', value: (r) => bytes(r.memoryTotalBytes) },
  { field: 'memfree', header: 'MEM-FREE', align: 'right', value: (r) => bytes(r.memoryAvailableBytes) },
  { field: 'vgsize', header: 'VG', align: 'right', value: (r) => bytes(r.vg?.sizeBytes) },
  { field: 'vgfree', header: 'VG-FREE', align: 'right', value: (r) => bytes(r.vg?.freeBytes) },
  { field: 'drbd', header: 'DRBD-DISKS', value: (r) => drbdDisks(r) },
  { field: 'vms', header: 'VMS', value: (r) => r.vms.join(',') },
  { field: 'cpus', header: 'CPUS', align: 'right', value: (r) => r.cpus, optional: true },
  { field: 'host', header: 'HOST', value: (r) => r.host, optional: true },
  { field: 'drbdversion', header: 'DRBD', value: (r) => r.drbd?.kernelVersion, optional: true },
  { field: 'error', header: 'ERROR', value: (r) => r.error, optional: true },
];

function drbdDisks(r: PmSummary): string | undefined {
  if (!r.reachable) return undefined;
  const entries = Object.entries(r.drbdDisks).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([state, n]) => `${state}:${n}`).join(',') : 'none';
}

export function nodesView(rows: PmSummary[], opts: ViewOptions): string {
  return renderTable(rows, PM_COLUMNS, opts);
}
