import { defineCommand, dryRunOption, listOptions } from '../command.js';
import type { ApplyResult } from '../../ops/engine/execute.js';
import type { BackupRow } from '../../ops/backup/list.js';
import type { VerifyRow } from '../../ops/backup/verify.js';
import { BACKUP_COLUMNS } from '../../render/views/backups.js';

/** The view of the commands that run a plan. */
const applyView = async () => (await import('../../render/views/plan.js')).applyView;

const vmArgument = { type: 'string', describe: 'only this VM\'s backups (default: every VM)' } as const;

const ls = defineCommand<{ vm?: string }, BackupRow[]>({
  command: 'ls [vm]',
  aliases: ['list'],
  describe: 'list every backup on every node: time, type, node, size, the full image an increment needs, age, consistency',
  builder: (y) => listOptions(y).positional('vm', vmArgument)
    .epilogue(`Fields for -o: ${BACKUP_COLUMNS.map((c) => c.field).join(', ')}\nBackups the old tool wrote (no manifest) are listed as "not verified".`),
  examples: [
    ['pmc backup ls', 'every backup of every VM'],
    ['pmc backup ls web-1 --json', 'one VM\'s, for scripts'],
  ],
  run: async (ctx, args) => (await import('../../ops/backup/list.js')).listBackups(ctx, args.vm),
  view: async () => (await import('../../render/views/backups.js')).backupListView,
});

const verify = defineCommand<{ vm?: string }, VerifyRow[]>({
  command: 'verify [vm]',
  describe: 're-read every backup, check every sha256, decode every increment against its full image; exit 1 when one is bad',
  builder: (y) => y.positional('vm', vmArgument),
  examples: [
    ['pmc backup verify', 'every backup on every node (reads them all: takes as long as that)'],
    ['pmc backup verify web-1', 'one VM\'s backups'],
  ],
  run: async (ctx, args) => (await import('../../ops/backup/verify.js')).verifyBackups(ctx, args.vm),
  view: async () => (await import('../../render/views/backups.js')).backupVerifyView,
});

const prune = defineCommand<{ vm?: string; keepFull?: number; keepIncremental?: number; dryRun: boolean }, ApplyResult>({
  command: 'prune [vm]',
  describe: 'delete old backups: per VM and node, keep the newest full images and the newest increments of each',
  builder: (y) => dryRunOption(y).positional('vm', vmArgument)
    .option('keep-full', { type: 'number', describe: 'full images kept per VM and node (default: backups.retention.full)' })
    .option('keep-incremental', { type: 'number', describe: 'increments kept per kept full image (default: backups.retention.incremental)' })
    .epilogue('A full image is never deleted while an increment that needs it is kept; increments whose full image is gone are kept and named.'),
  examples: [
    ['pmc backup prune --dry-run', 'what would go, and how much space it frees'],
    ['pmc backup prune web-1 --keep-full 1 --keep-incremental 7', 'only the newest chain of web-1, with its last 7 increments'],
  ],
  run: async (ctx, args) => (await import('../../ops/backup/prune.js')).pruneBackups(ctx, args),
  view: applyView,
});

const copy = defineCommand<{ vm: string; to: string; from?: string; at?: string; dryRun: boolean }, ApplyResult>({
  command: 'copy <vm>',
  describe: 'copy a backup (and the full image it needs) with its manifest to another node; check its sha256 there',
  builder: (y) => dryRunOption(y)
    .positional('vm', { type: 'string', demandOption: true, describe: 'the VM whose backup is copied' })
    .option('to', { type: 'string', demandOption: true, describe: 'the node that receives the copy' })
    .option('from', { type: 'string', describe: 'the node that has the backup (default: any node that has the chosen time)' })
    .option('at', { type: 'string', describe: 'which backup: its time, or the newest at or before a time (default: the newest)' })
    .epilogue('Uses rsync over node-to-node SSH (pmc pm init sets up the trust). Files the target has already are not copied.'),
  examples: [
    ['pmc backup copy web-1 --to pm-3', 'the newest backup of web-1 (and its full image) to pm-3'],
    ['pmc backup copy web-1 --to pm-3 --at 2026-12-01', 'the newest of that day'],
  ],
  run: async (ctx, args) => (await import('../../ops/backup/copy.js')).copyBackup(ctx, args),
  view: applyView,
});

export const backupCommands = [ls, verify, prune, copy];
