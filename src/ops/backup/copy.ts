/**
 * `pmc backup copy VM --to PM [--from PM] [--at TIME]`: a backup on the node that also holds a
 * copy of the disk does not survive that node. This copies a backup (default: the newest) and
 * the full image it needs, each with its manifest, to another node with rsync over node-to-node
 * SSH, and checks the sha256 of each file there.
 */
import type { OpContext, Report } from '../engine/context.js';
import type { ClusterState } from '../../model/cluster.js';
import { selectNodes } from '../../config/targets.js';
import { PmcError } from '../../util/errors.js';
import { assertVmName } from '../../util/names.js';
import { commandLine, quote } from '../../util/shell.js';
import { formatBytes } from '../../util/units.js';
import type { ApplyResult } from '../engine/execute.js';
import type { Plan, Step } from '../engine/plan.js';
import { mutate } from '../engine/mutate.js';
import { backupDir, manifestFile, parseAt, selectBackup, sha256Command, type BackupEntry } from './catalog.js';
import { readBackups } from './read.js';

export interface CopyArgs {
  vm: string;
  to: string;
  from?: string;
  at?: string;
  dryRun: boolean;
}

/** The steps that copy a chain's files the target lacks; pure. */
export function planCopy(state: ClusterState, directory: string, files: readonly BackupEntry[], present: ReadonlySet<string>, to: string): Plan {
  const host = state.nodes.find((n) => n.name === to)!.host;
  const ssh = (command: string) => commandLine(['ssh', '-o', 'BatchMode=yes', '--', host, command]);
  const steps: Step[] = [];
  const notes: string[] = [];
  for (const e of files) {
    if (present.has(`${e.stamp}.${e.kind}`)) {
      notes.push(`${to} has ${e.vm} ${e.stamp} (${e.kind}) already: not copied`);
      continue;
    }
    const dir = backupDir(directory, e.vm);
    const manifest = e.manifest ? manifestFile(directory, e.vm, e.stamp) : undefined;
    const expected = e.manifest ? quote(e.manifest.file.sha256) : `"$(${sha256Command(quote(e.path))})"`;
    const remoteSum = ssh(sha256Command(quote(e.path)));
    const removeThere = ssh(commandLine(['rm', '-f', '--', e.path, ...(manifest ? [manifest] : [])]));
    // -s: paths reach the remote side as data, never as shell words. The manifest goes first:
    // alone, it is not listed; a data file is only there once rsync renamed it complete.
    const rsync = (file: string) => commandLine(['rsync', '-s', '-t', '--', file, `${host}:${dir}/`]);
    steps.push({
      node: e.node,
      command: [
        `exec 9>>${quote(`${dir}/.lock`)} && flock -s -w 600 9`,
        `want=${expected}`,
        ssh(`mkdir -p ${quote(dir)}`),
        ...(manifest ? [rsync(manifest)] : []),
        rsync(e.path),
        `got=$(${remoteSum})`,
        `{ [ "$got" = "$want" ] || { ${removeThere}; echo "the copy on ${to} has sha256 $got, not $want: removed" >&2; exit 1; }; }`,
      ].join(' && '),
      why: `copy ${e.vm}'s ${e.kind} backup ${e.stamp} (${formatBytes(e.bytes)}) from ${e.node} to ${to} and check its sha256 there`,
      undo: { command: removeThere, why: `remove the copy of ${e.vm} ${e.stamp} on ${to}` },
      progress: true,
      timeoutMs: Math.max(30 * 60_000, Math.ceil(e.bytes / 2e6) * 1000),
    });
  }
  return { title: `copy ${files.length} backup file${files.length === 1 ? '' : 's'} to ${to}`, steps, notes };
}

export async function copyBackup(ctx: OpContext, args: CopyArgs): Promise<Report<ApplyResult>> {
  assertVmName(args.vm);
  selectNodes(ctx.config, [args.to, ...(args.from === undefined ? [] : [args.from])]);
  if (args.from === args.to) throw new PmcError('PMC_E_USAGE', `--from and --to are both ${args.to}`, 'copy to another node');
  const warnings: string[] = [];
  const report = await mutate(ctx, {
    lock: ctx.config.nodes.map((n) => n.name),
    vm: args.vm,
    dryRun: args.dryRun,
    plan: async (state) => {
      if (!state.nodes.find((n) => n.name === args.to)?.reachable) {
        throw new PmcError('PMC_E_NODE_UNREACHABLE', `${args.to} could not be asked`, `bring ${args.to} back, or copy to another node`);
      }
      const inventory = await readBackups(ctx, state);
      warnings.push(...inventory.warnings);
      const sources = inventory.entries.filter((e) => e.node !== args.to);
      const chain = selectBackup(sources, args.vm, parseAt(args.at ?? 'latest'), args.from, ctx.config.nodes.map((n) => n.name));
      const present = new Set(inventory.entries.filter((e) => e.node === args.to && e.vm === args.vm).map((e) => `${e.stamp}.${e.kind}`));
      const files = chain.increment ? [chain.full, chain.increment] : [chain.full];
      return planCopy(state, ctx.config.backups.directory, files, present, args.to);
    },
  });
  return { ...report, warnings: [...report.warnings, ...warnings] };
}
