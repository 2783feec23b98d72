import type { DrbdResourceRow, DrbdUpResult } from '../../ops/pm/drbd-up.js';
import { describePlan } from '../../ops/engine/plan.js';
import type { ViewOptions } from '../output.js';
import { renderTable, type Column } from '../table.js';

const COLUMNS: Column<DrbdResourceRow>[] = [
  { field: 'node', header: 'NODE', value: (r) => r.node },
  { field: 'resource', header: 'RESOURCE', value: (r) => r.resource },
  {
    field: 'action', header: 'ACTION', value: (r) => r.action,
    paint: (r, t, s) => (r.action === 'failed' ? s.bad(t) : r.action === 'brought up' ? s.ok(t) : t),
  },
  { field: 'role', header: 'ROLE', value: (r) => r.role },
  { field: 'disk', header: 'DISK', value: (r) => r.disk },
  { field: 'connection', header: 'CONNECTION', value: (r) => r.connection },
  { field: 'peer', header: 'PEER', value: (r) => r.peer },
  { field: 'peerdisk', header: 'PEER-DISK', value: (r) => r.peerDisk },
];

/** A dry run starts with the plan; then the resources' table and what failed. */
export function drbdUpView(result: DrbdUpResult, opts: ViewOptions): string {
  const table = drbdTable(result, opts);
  return result.mode === 'dry-run' ? `${opts.style.bold('dry run, nothing changed:')} ${describePlan(result.plan)}\n\n${table}` : table;
}

/** The resources' table, then every step that failed and why. */
export function drbdTable(result: Pick<DrbdUpResult, 'resources' | 'records'>, opts: ViewOptions): string {
  const lines = [result.resources.length ? renderTable(result.resources, COLUMNS, opts) : 'no DRBD resources configured on these nodes'];
  for (const r of result.records.filter((x) => !x.ok)) lines.push(opts.style.bad(`failed on ${r.step.node}: ${r.step.why}: ${r.error}`));
  return lines.join('\n');
}
