import type { BackupRun } from '../../ops/backup/backup.js';
import type { BackupRow } from '../../ops/backup/list.js';
import type { VerifyRow } from '../../ops/backup/verify.js';
import type { RestoreData } from '../../ops/backup/restore.js';
import type { ViewOptions } from '../output.js';
import { renderTable, type Column } from '../table.js';
import { formatBytes } from '../../util/units.js';
import { applyView } from './plan.js';

/** Each backup run: the plan (dry run), or what was written, how big, how fast. */
export function backupRunsView(runs: BackupRun[], opts: ViewOptions): string {
  return runs.map((run) => {
    if (run.apply.status !== 'applied' || !run.manifest) return applyView(run.apply, opts);
    const m = run.manifest;
    const rate = run.seconds > 0 ? ` (${formatBytes(m.data.bytes / run.seconds)}/s)` : '';
    return [
      ...run.apply.plan.notes.map((n) => `note: ${n}`),
      opts.style.ok(`done: ${m.type} backup of ${m.vm} on ${m.node}: ${m.file.name}`),
      `  data ${formatBytes(m.data.bytes)} sha256 ${m.data.sha256}`,
      `  file ${formatBytes(m.file.bytes)}${m.base ? `, needs the full image ${m.base}` : ''}; ${m.consistency}; ${run.seconds.toFixed(1)} s${rate}`,
    ].join('\n');
  }).join('\n');
}

export const BACKUP_COLUMNS: Column<BackupRow>[] = [
  { field: 'vm', header: 'VM', value: (r) => r.vm },
  { field: 'time', header: 'TIME', value: (r) => r.stamp },
  { field: 'type', header: 'TYPE', value: (r) => (r.compression ? `${r.type} (${r.compression})` : r.type) },
  { field: 'node', header: 'NODE', value: (r) => r.node },
  { field: 'size', header: 'SIZE', value: (r) => formatBytes(r.bytes), align: 'right' },
  { field: 'needs', header: 'NEEDS', value: (r) => r.needs ?? '-' },
  { field: 'age', header: 'AGE', value: (r) => r.age, align: 'right' },
  {
    field: 'consistency',
    header: 'CONSISTENCY',
    value: (r) => r.consistency,
    paint: (r, t, s) => (r.consistency === 'not verified' || r.problem ? s.warn(t) : t),
  },
  { field: 'path', header: 'PATH', value: (r) => r.path, optional: true },
  { field: 'sha256', header: 'DATA SHA256', value: (r) => r.dataSha256 ?? '-', optional: true },
];

export function backupListView(rows: BackupRow[], opts: ViewOptions): string {
  if (rows.length === 0) return 'no backups';
  const table = renderTable(rows, BACKUP_COLUMNS, { fields: opts.fields, headers: opts.headers, style: opts.style });
  const problems = rows.filter((r) => r.problem).map((r) => opts.style.warn(`${r.node}:${r.path}: ${r.problem}`));
  return [table, ...problems].join('\n');
}

export function backupVerifyView(rows: VerifyRow[], opts: ViewOptions): string {
  const s = opts.style;
  const lines = rows.map((r) => `${r.status === 'bad' ? s.bad('BAD ') : r.status === 'good' ? s.ok('good') : s.warn('read')} ${r.node}:${r.path}: ${r.detail}`);
  const bad = rows.filter((r) => r.status === 'bad').length;
  const summary = `${rows.length} backups checked: ${bad} bad`;
  lines.push(bad > 0 ? s.bad(summary) : s.ok(summary));
  return lines.join('\n');
}

export function restoreView(data: RestoreData, opts: ViewOptions): string {
  if (data.apply.status !== 'applied') return applyView(data.apply, opts);
  const b = data.backup;
  const check = data.expectedSha256 ? 'matches the manifest'
    : b.type === 'incremental' ? 'no manifest (old tool): xdelta3\'s checksums passed' : 'no manifest (old tool): nothing to compare with';
  return [
    ...data.apply.plan.notes.map((n) => `note: ${n}`),
    opts.style.ok(`done: ${data.target} holds ${data.vm}'s ${b.type} backup ${b.stamp} from ${b.node}`),
    `  read back: sha256 ${data.restoredSha256 ?? '?'}, ${check}`,
  ].join('\n');
}
