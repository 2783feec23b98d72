/**
 * `pmc backup prune [VM] [--keep-full N] [--keep-incremental M]`: retention per VM and node
 * (defaults: backups.retention in pmc.yaml). The decision is planPrune's; here it becomes one
 * step per backup: the data file first, then its manifest, under the directory's lock.
 */
import type { OpContext, Report } from '../engine/context.js';
import { PmcError } from '../../util/errors.js';
import { assertVmName } from '../../util/names.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan } from '../engine/plan.js';
import { mutate } from '../engine/mutate.js';
import { backupDir, manifestFile, planPrune, type BackupEntry, type PruneDecision } from './catalog.js';
import { readBackups } from './read.js';

export interface PruneArgs {
  vm?: string;
  keepFull?: number;
  keepIncremental?: number;
  dryRun: boolean;
}

/** The steps that delete what the decision says, and how much space that frees. */
export function prunePlan(directory: string, decision: PruneDecision, keepFull: number, keepIncremental: number): Plan {
  const freed = decision.delete.reduce((sum, e) => sum + e.bytes, 0);
  const steps = decision.delete.map((e: BackupEntry) => ({
    node: e.node,
    // The exclusive lock: no backup is written against a full image while it goes.
    command: `exec 9>>${quote(`${backupDir(directory, e.vm)}/.lock`)} && flock -x -w 600 9 && ${commandLine(['rm', '-f', '--', e.path, manifestFile(directory, e.vm, e.stamp)])}`,
    why: `delete the ${e.kind} backup ${e.vm} ${e.stamp} (${formatBytes(e.bytes)}) on ${e.node}`,
  }));
  const notes = [
    `keeping per VM and node the newest ${keepFull} full image${keepFull === 1 ? '' : 's'} and the newest ${keepIncremental} increment${keepIncremental === 1 ? '' : 's'} of each; ${decision.keep.length} backups stay`,
    `frees ${formatBytes(freed)}`,
    ...decision.orphans.map((e) => `kept: ${e.node}:${e.path} needs the full image ${e.base ?? '(none older)'}, which is not there (copy it back, or delete the increment by hand)`),
  ];
  return { title: `prune ${decision.delete.length} backups`, steps, notes };
}

export async function pruneBackups(ctx: OpContext, args: PruneArgs): Promise<Report<ApplyResult>> {
  if (args.vm !== undefined) assertVmName(args.vm);
  const keepFull = args.keepFull ?? ctx.config.backups.retention.full;
  const keepIncremental = args.keepIncremental ?? ctx.config.backups.retention.incremental;
  if (!Number.isInteger(keepFull) || keepFull < 1) {
    throw new PmcError('PMC_E_USAGE', `--keep-full ${keepFull}: keep at least one full image`, 'e.g. --keep-full 1; pmc vm rm removes a VM, its backups stay until you delete them');
  }
  if (!Number.isInteger(keepIncremental) || keepIncremental < 0) {
    throw new PmcError('PMC_E_USAGE', `--keep-incremental ${keepIncremental}: a whole number from 0`, 'e.g. --keep-incremental 14');
  }
  const warnings: string[] = [];
  const report = await mutate(ctx, {
    lock: ctx.config.nodes.map((n) => n.name),
    vm: args.vm,
    dryRun: args.dryRun,
    plan: async (state) => {
      const inventory = await readBackups(ctx, state);
      warnings.push(...inventory.warnings);
      const decision = planPrune(inventory.entries.filter((e) => args.vm === undefined || e.vm === args.vm), keepFull, keepIncremental);
      return prunePlan(ctx.config.backups.directory, decision, keepFull, keepIncremental);
    },
  });
  const status = report.status === 'ok' && warnings.length > 0 ? 'partial' : report.status;
  return { ...report, status, warnings: [...report.warnings, ...warnings] };
}
