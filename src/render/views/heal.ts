import type { HealOutcome, HealResult } from '../../ops/cluster/heal.js';
import { describePlan } from '../../ops/engine/plan.js';
import type { ViewOptions } from '../output.js';
import { applyView } from './plan.js';

/** One block per node: what was (or would be) done, or why nothing was and what to do. */
export function healView(result: HealResult, opts: ViewOptions): string {
  const s = opts.style;
  if (result.healthy) return s.ok('cluster healthy: every node answers, and none holds a copy a failover made stale; nothing to do');
  const blocks = result.outcomes.map((o) => outcomeLines(o, result.mode === 'dry-run', opts).join('\n'));
  return [...(result.mode === 'dry-run' ? [s.bold('dry run, nothing changed:')] : []), ...blocks].join('\n\n');
}

function outcomeLines(outcome: HealOutcome, dryRun: boolean, opts: ViewOptions): string[] {
  const s = opts.style;
  const a = outcome.action;
  switch (a.kind) {
    case 'down':
      return [s.warn(`${a.node}: ${a.reason}`)];
    case 'blocked':
      return [s.bad(`${a.node}: NOT HEALED: ${a.reason}`), `  ${s.dim('fix:')} ${a.fix}`, ...a.notes.map((n) => `  note: ${n}`)];
    case 'failover':
    case 'rejoin': {
      const what = a.kind === 'failover' ? `${a.node} does not answer: fence it, fail ${a.vms.join(', ')} over` : `${a.node} is back: rejoin it (${a.vms.join(', ')})`;
      if (dryRun) return [s.bold(what), describePlan(a.plan)];
      if (outcome.error) return [s.bold(what), s.bad(`not done: ${outcome.error}`)];
      return [s.bold(what), applyView(outcome.result!, opts)];
    }
  }
}
