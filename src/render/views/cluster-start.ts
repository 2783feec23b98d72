import type { ClusterStartResult, VmStartOutcome } from '../../ops/cluster/start.js';
import { describePlan } from '../../ops/engine/plan.js';
import type { ViewOptions } from '../output.js';
import type { Style } from '../style.js';
import { drbdTable } from './drbd-up.js';

/** What DRBD did, then one line per VM: started where and why, skipped, refused with the fix, or failed. */
export function clusterStartView(result: ClusterStartResult, opts: ViewOptions): string {
  const s = opts.style;
  const lines: string[] = [];
  const dryRun = result.mode === 'dry-run';
  if (dryRun) lines.push(`${s.bold('dry run, nothing changed:')} ${describePlan(result.plan)}`, '');
  const changed = result.drbd.resources.filter((r) => r.action !== 'already up' && r.action !== 'ignored');
  if (changed.length > 0 || result.drbd.records.some((r) => !r.ok)) {
    lines.push(s.bold('DRBD'), drbdTable({ resources: changed, records: result.drbd.records }, opts), '');
  }
  if (!dryRun && result.waitedSeconds > 0) lines.push(s.dim(`waited ${result.waitedSeconds} s for DRBD to connect`));
  lines.push(s.bold('VMs'));
  if (result.vms.length === 0) lines.push('  no VMs');
  const width = Math.max(0, ...result.vms.map((v) => v.decision.vm.length));
  for (const outcome of result.vms) lines.push(...vmLines(outcome, dryRun, width, s));
  return lines.join('\n');
}

function vmLines(outcome: VmStartOutcome, dryRun: boolean, width: number, s: Style): string[] {
  const d = outcome.decision;
  const name = `  ${d.vm.padEnd(width)}  `;
  const indent = ' '.repeat(name.length);
  switch (d.kind) {
    case 'skip':
      return [`${name}${s.dim(`skipped: ${d.reason}`)}`];
    case 'pending':
      return [`${name}${s.warn(`undecided: ${d.reason}`)}`];
    case 'refuse':
      return [`${name}${s.bad(`REFUSED: ${d.reason}`)}`, `${indent}${s.dim('fix:')} ${d.fix}`];
    case 'start': {
      const where = `${d.degraded ? 'degraded ' : ''}on ${d.node}`;
      if (dryRun) return [`${name}would start ${where}: ${d.reason}`];
      const result = outcome.result;
      if (result?.status === 'applied') return [`${name}${d.degraded ? s.warn(`started ${where}`) : s.ok(`started ${where}`)}: ${d.reason}`];
      const undone = result?.undone.map((u) => `${u.ok ? 'undone' : 'UNDO FAILED'}: ${u.step.why}`).join('; ');
      return [
        `${name}${s.bad(`FAILED to start ${where}`)}: ${result?.failed?.step.why ?? ''}: ${result?.failed?.error ?? 'not run'}`,
        ...(undone ? [`${indent}${undone}`] : []),
      ];
    }
  }
}
