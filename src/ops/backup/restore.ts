/**
 * `pmc vm restore VM --at TIME [--to NEWVM] [-p PM]`: finds the backup, plans the restore
 * (onto VM's own disk after a typed confirmation, or into a new VM as `vm add` creates one),
 * and applies or prints it.
 */
import type { OpContext, Report } from '../engine/context.js';
import { selectNodes } from '../../config/targets.js';
import { PmcError } from '../../util/errors.js';
import { assertVmName } from '../../util/names.js';
import { parseSize } from '../../util/units.js';
import type { ApplyResult } from '../engine/execute.js';
import { mutate } from '../engine/mutate.js';
import { vmNodesGuess } from '../vm/lifecycle.js';
import { checkVmAdd, lvMiBFor } from '../vm/add-plan.js';
import { gatherFacts } from '../vm/add.js';
import { parseAt, selectBackup } from './catalog.js';
import { newVmRequest, planRestoreInPlace, planRestoreToNewVm, restoreSource } from './restore-plan.js';
import { readBackups } from './read.js';

export interface VmRestoreArgs {
  vm: string;
  at: string;
  to?: string;
  pm?: string;
  memory?: string;
  cpus?: number;
  force: boolean;
  dryRun: boolean;
}

export interface RestoreData {
  apply: ApplyResult;
  vm: string;
  /** The VM whose disk was written: VM itself, or NEWVM. */
  target: string;
  backup: { node: string; stamp: string; type: string; files: string[] };
  /** sha256 of the disk read back after writing (undefined for a dry run or a failure). */
  restoredSha256: string | undefined;
  /** What the read-back was compared with: the manifest's sha256, or nothing (old-tool backup). */
  expectedSha256: string | undefined;
}

export async function restoreVm(ctx: OpContext, args: VmRestoreArgs): Promise<Report<RestoreData>> {
  assertVmName(args.vm);
  if (args.to !== undefined) assertVmName(args.to);
  if (args.pm !== undefined) selectNodes(ctx.config, [args.pm]);
  const at = parseAt(args.at);
  let inventory: Awaited<ReturnType<typeof readBackups>> | undefined;
  let chain: ReturnType<typeof selectBackup> | undefined;
  let source: ReturnType<typeof restoreSource> | undefined;
  const report = await mutate(ctx, {
    lock: args.dryRun ? [] : await vmNodesGuess(ctx, args.vm),
    vm: args.to ?? args.vm,
    dryRun: args.dryRun,
    plan: async (state) => {
      inventory = await readBackups(ctx, state, args.pm === undefined ? undefined : [args.pm]);
      chain = selectBackup(inventory.entries, args.vm, at, args.pm, ctx.config.nodes.map((n) => n.name));
      source = restoreSource(chain);
      if (args.to === undefined) return planRestoreInPlace(state, ctx.config, args.vm, source);
      const vm = state.vms.find((v) => v.name === args.vm);
      const m = chain.target.manifest;
      if (vm?.shared || (m && 'file' in m.source)) {
        // vm add would make NEWVM a DRBD VM on LVs: not what a shared VM's owner asks for, so not guessed.
        throw new PmcError('PMC_E_USAGE', `${args.vm} is a shared-storage VM: restoring its backup into a new VM is not supported yet`,
          `restore onto ${args.vm}'s own disk (pmc vm restore ${args.vm} --at ${chain.target.stamp}, without --to)`);
      }
      const memoryBytes = args.memory !== undefined ? parseSize(args.memory, 'memory (-m)')
        : chain.target.manifest?.vmShape.memoryBytes ?? vm?.memoryBytes;
      const vcpus = args.cpus ?? chain.target.manifest?.vmShape.vcpus ?? vm?.vcpus;
      if (memoryBytes === undefined || memoryBytes === null || vcpus === undefined || vcpus === null) {
        throw new PmcError('PMC_E_USAGE', `the backup does not record ${args.vm}'s memory and vCPUs, and ${args.vm} is not defined any more`,
          'give them: -m 1G -c 1');
      }
      const paired = ctx.config.nodes.length >= 2;
      const request = newVmRequest(args.to, lvMiBFor(source.dataBytes, paired) * 1024 ** 2, memoryBytes, vcpus, args.force);
      const target = checkVmAdd(state, ctx.config, request);
      const facts = { ...await gatherFacts(ctx, state, request, target, undefined), image: undefined };
      return planRestoreToNewVm(state, ctx.config, request, facts, source);
    },
    ...(args.to === undefined && !args.force ? {
      confirm: () => ctx.confirm(args.vm, `restoring ${args.vm} to ${chain!.target.stamp} overwrites its disk on every node`, '-f'),
    } : {}),
  });
  if (!inventory || !chain || !source) throw new Error('restore: planned without a backup');
  const line = report.data.done.flatMap((r) => r.result?.stdout.split('\n') ?? []).find((l) => l.startsWith('PMC-RESTORED '));
  return {
    data: {
      apply: report.data,
      vm: args.vm,
      target: args.to ?? args.vm,
      backup: {
        node: source.node,
        stamp: chain.target.stamp,
        type: chain.target.kind,
        files: [chain.full.path, ...(chain.increment ? [chain.increment.path] : [])],
      },
      restoredSha256: line?.slice('PMC-RESTORED '.length).trim(),
      expectedSha256: source.expectedSha256,
    },
    status: report.status,
    warnings: [...report.warnings, ...inventory.warnings],
  };
}
