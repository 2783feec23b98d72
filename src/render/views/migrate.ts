import { describePlan } from '../../ops/engine/plan.js';
import type { MigrationOutcome, MoveReport } from '../../ops/vm/mv.js';
import type { ViewOptions } from '../output.js';
import type { Style } from '../style.js';
import { applyView } from './plan.js';

/** Dry run: each VM's plan. Otherwise one line per VM, with the time split; a failure says where, why and how pmc recovered. */
export function moveView(report: MoveReport, opts: ViewOptions): string {
  const s = opts.style;
  const lines: string[] = [];
  for (const name of report.skipped) lines.push(s.dim(`${name}: skipped (ignore prefix)`));
  if (report.outcomes.length === 0) lines.push('no VM to migrate');
  for (const o of report.outcomes) lines.push(...outcomeLines(o, report.checksMs, opts, s));
  return lines.join('\n');
}

/** One migration's outcome (pm evacuate shows its migrations the same way). */
export function outcomeLines(o: MigrationOutcome, checksMs: number, opts: ViewOptions, s: Style): string[] {
  switch (o.status) {
    case 'dry-run':
      return [`${s.bold('dry run, nothing changed:')} ${describePlan(o.plan!)}`, ''];
    case 'refused':
      return [s.bad(`${o.vm}: REFUSED: ${o.error}`), ...(o.hint ? [`  ${s.dim('fix:')} ${o.hint}`] : [])];
    case 'not started':
      return [s.warn(`${o.vm}: not started (an earlier migration failed; --keep-going goes on)`)];
    case 'migrated': {
      const t = o.timings!;
      return [s.ok(`${o.vm}: migrated ${o.source} -> ${o.target} in ${seconds(t.totalMs)}`)
        + s.dim(` (virsh migrate ${seconds(t.migrateMs)}, role changes and checks ${seconds(t.roleChangesMs)}, reading the cluster ${seconds(checksMs)})`)];
    }
    case 'failed': {
      const lines = [s.bad(`${o.vm}: FAILED migrating ${o.source} -> ${o.target}: ${o.error}`)];
      const r = o.recovery;
      if (r?.refused) lines.push(`  ${s.bad('not recovered:')} ${r.refused}`, ...(r.hint ? [`  ${s.dim('fix:')} ${r.hint}`] : []));
      else if (r?.result) {
        const recovered = applyView(r.result, opts).split('\n').map((l) => `    ${l}`);
        lines.push(`  ${r.result.status === 'applied' ? 'recovered' : s.bad('recovery failed')}: ${r.result.title}`, ...recovered);
      }
      return lines;
    }
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
