import { describePlan } from '../../ops/engine/plan.js';
import type { RebalanceOutcome, RebalanceReport } from '../../ops/cluster/rebalance.js';
import type { DiskLoad } from '../../ops/cluster/rebalance-copies.js';
import type { HeldVm, NodeLoad } from '../../ops/cluster/rebalance-plan.js';
import { applyView } from './plan.js';
import type { ViewOptions } from '../output.js';
import { outcomeLines } from './migrate.js';

/**
 * The score before and after, each move with its reason, the nodes whose load changes and the
 * VMs that cannot move. Dry run: then every plan. Otherwise a line per migration (as vm mv
 * shows them) and, after a failure, what moved and what did not (as pm evacuate). With
 * --secondaries the standby copy moves come first, with the disk score before and after.
 */
export function rebalanceView(report: RebalanceReport, opts: ViewOptions): string {
  const s = opts.style;
  const { outcomes } = report;
  const lines: string[] = [];
  const { disk } = report;
  if (outcomes.length === 0) {
    lines.push(s.ok(`the cluster is balanced: score ${score(report.scoreBefore)}; no live migration of a running VM to its DRBD peer lowers it`));
    if (disk) lines.push(s.ok(`the copies are balanced: disk score ${score(disk.scoreBefore)}; no move of a standby copy to another node lowers it`));
    lines.push(...heldLines(report.held));
    return lines.join('\n');
  }
  const dryRun = outcomes.some((o) => o.status === 'dry-run');
  const migrations = outcomes.filter((o) => o.kind === 'migrate').length;
  const copies = outcomes.length - migrations;
  const count = `${copies ? `${copies} standby cop${copies === 1 ? 'y' : 'ies'} moved, ` : ''}${migrations} migration${migrations === 1 ? '' : 's'}`;
  lines.push(`${dryRun ? `${s.bold('dry run, nothing changed:')} ` : ''}rebalance: ${count}, score ${score(report.scoreBefore)} -> ${score(report.scoreAfter)} (0: every node carries the same share)`
    + (disk ? `, disk score ${score(disk.scoreBefore)} -> ${score(disk.scoreAfter)}` : ''));
  outcomes.forEach((o, i) => lines.push(`${String(i + 1).padStart(3)}. ${describe(o)}, ${o.kind === 'migrate' ? '' : 'disk '}score ${score(o.scoreBefore)} -> ${score(o.scoreAfter)}: ${o.reason}`));
  if (copies && disk) {
    lines.push('volume groups whose copies change:');
    disk.before.forEach((b, i) => {
      const a = disk.after[i]!;
      if (a.copies !== b.copies || a.usedBytes !== b.usedBytes) lines.push(`  ${b.node}: ${diskLoad(b)} -> ${diskLoad(a)}`);
    });
  }
  if (migrations) {
    lines.push('nodes whose load changes:');
    report.before.forEach((b, i) => {
      const a = report.after[i]!;
      if (a.vms !== b.vms || a.runningMemoryBytes !== b.runningMemoryBytes) lines.push(`  ${b.node}: ${load(b)} -> ${load(a)}`);
    });
  }
  lines.push(...heldLines(report.held));
  if (dryRun) {
    for (const o of outcomes) lines.push('', describePlan(o.plan));
    return lines.join('\n');
  }
  lines.push('');
  for (const o of outcomes) {
    if (o.migration) lines.push(...outcomeLines(o.migration, report.checksMs, opts, s));
    else if (o.kind === 'move copy' && o.result && o.status === 'done') lines.push(s.ok(`${o.vm}: standby copy moved ${o.from} -> ${o.to}, resynced in full from ${o.primary}`));
    else if (o.result) lines.push(s.bad(`${describe(o)}: FAILED`), ...applyView(o.result, opts).split('\n').map((l) => `  ${l}`));
    else lines.push(s.warn(`${describe(o)}: not started (an earlier move failed or was interrupted)`));
  }
  const moved = outcomes.filter((o) => o.status === 'done');
  if (moved.length === outcomes.length) {
    lines.push(s.ok(`rebalanced: score ${score(report.scoreBefore)} -> ${score(report.scoreAfter)}`));
  } else {
    lines.push(s.bad('NOT rebalanced'));
    lines.push(`  moved: ${moved.length ? moved.map(describe).join(', ') : 'nothing'}`);
    lines.push(`  not moved: ${outcomes.filter((o) => o.status !== 'done').map((o) => `${describe(o)} (${o.status})`).join(', ')}`);
    lines.push(`  ${s.dim('then:')} fix what failed and run pmc cluster rebalance again; it plans again from where the VMs run then`);
  }
  return lines.join('\n');
}

function score(value: number): string {
  return value.toFixed(3);
}

function describe(o: RebalanceOutcome): string {
  return o.kind === 'migrate' ? `${o.vm} (migrate ${o.from} -> ${o.to})` : `${o.vm} (move standby copy ${o.from} -> ${o.to})`;
}

function diskLoad(l: DiskLoad): string {
  return `${l.copies} cop${l.copies === 1 ? 'y' : 'ies'}, ${Math.round((l.usedBytes / l.vgBytes) * 100)}% of its volume group`;
}

function load(l: NodeLoad): string {
  const memory = Math.round((l.runningMemoryBytes / l.totalMemoryBytes) * 100);
  return `${l.vms} VM${l.vms === 1 ? '' : 's'}, ${memory}% of its memory, ${l.vcpus} vCPU${l.vcpus === 1 ? '' : 's'} on ${l.cpus} CPUs`;
}

/** The VMs that cannot move, one line per reason. */
function heldLines(held: readonly HeldVm[]): string[] {
  const groups = new Map<string, { hint: string | undefined; vms: string[] }>();
  for (const h of held) {
    const key = `${h.why}\n${h.hint ?? ''}`;
    const group = groups.get(key) ?? { hint: h.hint, vms: [] };
    groups.set(key, group);
    group.vms.push(h.vm);
  }
  return [...groups].map(([key, g]) => `not moved: ${g.vms.join(', ')}: ${key.split('\n')[0]}${g.hint ? ` (fix: ${g.hint})` : ''}`);
}
