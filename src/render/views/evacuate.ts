import { describePlan } from '../../ops/engine/plan.js';
import type { EvacuateReport, EvacuationOutcome } from '../../ops/pm/evacuate.js';
import type { ViewOptions } from '../output.js';
import type { Style } from '../style.js';
import { outcomeLines } from './migrate.js';
import { applyView } from './plan.js';

/**
 * Dry run: what moves where, then every plan. Otherwise a line per VM (migrations as vm mv
 * shows them) and, after a failure, what moved and what did not.
 */
export function evacuateView(report: EvacuateReport, opts: ViewOptions): string {
  const s = opts.style;
  const { node, outcomes } = report;
  const dryRun = outcomes.some((o) => o.status === 'dry-run');
  const lines: string[] = [];
  if (outcomes.length === 0) lines.push(`${node}: nothing to evacuate: it runs none of pmc's VMs and is DRBD Primary for none`);
  else if (dryRun) lines.push(`${s.bold('dry run, nothing changed:')} evacuate ${node}: ${counts(outcomes)}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  if (dryRun) {
    for (const o of outcomes) lines.push('', describePlan(o.plan));
    return lines.join('\n');
  }
  for (const o of outcomes) lines.push(...outcomeText(o, report.checksMs, opts, s));
  if (outcomes.length === 0) return lines.join('\n');
  const moved = outcomes.filter((o) => o.status === 'done');
  if (moved.length === outcomes.length) {
    lines.push(s.ok(`${node} evacuated: it runs none of pmc's VMs and is DRBD Primary for none`));
  } else {
    lines.push(s.bad(`${node} NOT evacuated`));
    lines.push(`  moved: ${moved.length ? moved.map(describe).join(', ') : 'nothing'}`);
    lines.push(`  not moved: ${outcomes.filter((o) => o.status !== 'done').map((o) => `${describe(o)} (${o.status})`).join(', ')}`);
    lines.push(`  ${s.dim('then:')} fix what failed and run pmc pm evacuate ${node} again; what moved is not moved twice`);
  }
  return lines.join('\n');
}

function counts(outcomes: readonly EvacuationOutcome[]): string {
  const n = (action: EvacuationOutcome['action']) => outcomes.filter((o) => o.action === action).length;
  const parts = [
    [n('migrate'), 'migration', 'migrations'],
    [n('demote'), 'demotion', 'demotions'],
    [n('move copy'), 'standby copy moved', 'standby copies moved'],
  ] as const;
  return parts.filter(([count]) => count > 0).map(([count, one, many]) => `${count} ${count === 1 ? one : many}`).join(', ');
}

function describe(o: EvacuationOutcome): string {
  switch (o.action) {
    case 'migrate': return `${o.vm} (migrate ${o.from} -> ${o.to})`;
    case 'demote': return `${o.vm} (demote on ${o.from})`;
    case 'move copy': return `${o.vm} (copy ${o.from} -> ${o.to})`;
  }
}

function outcomeText(o: EvacuationOutcome, checksMs: number, opts: ViewOptions, s: Style): string[] {
  if (o.status === 'not started') return [s.warn(`${describe(o)}: not started (an earlier step failed or was interrupted)`)];
  if (o.migration) return outcomeLines(o.migration, checksMs, opts, s);
  if (o.status === 'done') {
    return [s.ok(o.action === 'demote'
      ? `${o.vm}: demoted on ${o.from} (shut off; ${o.to} holds its other copy, UpToDate)`
      : `${o.vm}: standby copy moved ${o.from} -> ${o.to}, resynced in full`)];
  }
  return [s.bad(`${describe(o)}: FAILED`), ...(o.result ? applyView(o.result, opts).split('\n').map((l) => `  ${l}`) : [])];
}
