/**
 * `pmc vm backup [-b [--zstd]] [-p PM] VM...`: reads the cluster and the backups already on the chosen
 * node, asks the guest agent (a read), then plans and applies (or prints) one backup per VM.
 */
import type { OpContext, Report } from '../engine/context.js';
import { commandLine } from '../../util/shell.js';
import { selectNodes } from '../../config/targets.js';
import { mutate } from '../engine/mutate.js';
import { vmNodesGuess } from '../vm/lifecycle.js';
import type { ApplyResult } from '../engine/execute.js';
import { manifestSchema, stampOf, type BackupKind, type BackupManifest } from './catalog.js';
import { backupSource, planBackup } from './backup-plan.js';
import { readBackups } from './read.js';
import { pmcVersion } from '../../util/install.js';
import { PmcError } from '../../util/errors.js';

export interface VmBackupArgs {
  vms: string[];
  base: boolean;
  /** With base: compress the full image with zstd. */
  zstd: boolean;
  pm?: string;
  dryRun: boolean;
}

export interface BackupRun {
  vm: string;
  apply: ApplyResult;
  /** The manifest of the backup written (undefined for a dry run or a failure). */
  manifest: BackupManifest | undefined;
  seconds: number;
}

export async function backupVms(ctx: OpContext, args: VmBackupArgs): Promise<Report<BackupRun[]>> {
  if (args.zstd && !args.base) {
    throw new PmcError('PMC_E_USAGE', '--zstd compresses full images only, and this is an increment (no -b)', `pmc vm backup -b --zstd ${args.vms.join(' ')}`);
  }
  if (args.pm !== undefined) selectNodes(ctx.config, [args.pm]);
  const kind: BackupKind = args.base ? 'full' : 'incremental';
  const runs: BackupRun[] = [];
  const warnings: string[] = [];
  // One VM after the other: they compete for the same disks and network otherwise.
  for (const name of args.vms) {
    const started = Date.now();
    // Under the lock of the VM's nodes: a migration or a restore cannot change them meanwhile.
    const report = await mutate(ctx, {
      lock: args.dryRun ? [] : await vmNodesGuess(ctx, name),
      vm: name,
      dryRun: args.dryRun,
      plan: async (state) => {
        const source = backupSource(state, ctx.config, { vm: name, node: args.pm });
        const inventory = await readBackups(ctx, state, [source.node]);
        warnings.push(...inventory.warnings);
        const agent = source.runningOn !== undefined && await agentAnswers(ctx, source.runningOn, source.vm.uuid ?? name);
        const sharedFileBytes = source.kind === 'shared' ? await fileBytes(ctx, source.node, source.file) : undefined;
        return planBackup(state, ctx.config, { vm: name, kind, compression: args.zstd ? 'zstd' : undefined, node: args.pm }, {
          entries: inventory.entries, stamp: stampOf(new Date()), agent, sharedFileBytes, pmcVersion: pmcVersion(),
        });
      },
    });
    runs.push({ vm: name, apply: report.data, manifest: writtenManifest(report.data), seconds: (Date.now() - started) / 1000 });
    if (report.status === 'failed') break;
  }
  const failed = runs.some((r) => r.apply.status === 'failed');
  return { data: runs, status: failed ? 'failed' : 'ok', warnings };
}

/** Whether the VM's guest agent answers within a few seconds (then its file systems can be frozen). */
async function agentAnswers(ctx: OpContext, node: string, domain: string): Promise<boolean> {
  const ping = commandLine(['virsh', 'qemu-agent-command', '--timeout', '5', domain, '{"execute":"guest-ping"}']);
  const result = await ctx.pool.run(node, ping, { timeoutMs: 30_000 });
  return result.exitCode === 0;
}

/** A shared VM's disk file's size, read on the node that will read it. */
async function fileBytes(ctx: OpContext, node: string, file: string): Promise<number> {
  const result = await ctx.pool.run(node, commandLine(['stat', '-c', '%s', '--', file]), { timeoutMs: 30_000 });
  const out = result.stdout.trim();
  if (result.exitCode !== 0 || !/^\d+$/.test(out)) {
    throw new PmcError('PMC_E_STATE', `cannot read the size of ${file} on ${node}: ${result.stderr.trim() || out}`,
      `is the shared file system mounted on ${node}? pmc cluster verify`);
  }
  return Number(out);
}

/** The capture step prints the manifest it renamed into place. */
function writtenManifest(apply: ApplyResult): BackupManifest | undefined {
  for (const record of apply.done) {
    const line = record.result?.stdout.split('\n').find((l) => l.startsWith('PMC-BACKUP '));
    if (!line) continue;
    const parsed = manifestSchema.safeParse(JSON.parse(line.slice('PMC-BACKUP '.length)));
    if (parsed.success) return parsed.data;
  }
  return undefined;
}
