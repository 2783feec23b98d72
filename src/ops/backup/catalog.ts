/**
 * The backups on the nodes, as files, read live: names, manifests, which full image an
 * increment needs, which backup `--at TIME` means, and what retention may delete. Pure: the
 * listing comes in as the text a node printed, so the rules are tested on real output.
 *
 * Layout, as the old tool's, so both tools can share a directory:
 *   <backups.directory>/<vm>/<YYYY-MM-DD-HH-MM-SS>.base      a full image (dd of the disk's data)
 *   <backups.directory>/<vm>/<YYYY-MM-DD-HH-MM-SS>.base.zst  a full image compressed with zstd (pmc's -b --zstd)
 *   <backups.directory>/<vm>/<YYYY-MM-DD-HH-MM-SS>.xdelta3   an xdelta3 delta against a .base
 *   <backups.directory>/<vm>/<YYYY-MM-DD-HH-MM-SS>.json      pmc's manifest beside each (the old tool wrote none)
 * A backup in progress is `<stamp>.<ext>.tmp` and is not listed.
 */
import { z } from 'zod';
import { PmcError } from '../../util/errors.js';
import { vmNameProblem } from '../../util/names.js';
import { quote } from '../../util/shell.js';

export type BackupKind = 'full' | 'incremental';

/** How a full image is stored when not as the disk's bytes: `zstd` (`.base.zst`, from `vm backup -b --zstd`). */
export type Compression = 'zstd';

const EXTENSION: Record<BackupKind, string> = { full: 'base', incremental: 'xdelta3' };

/** `base`, `base.zst` or `xdelta3`. */
export function extensionOf(kind: BackupKind, compression: Compression | undefined): string {
  return compression ? `${EXTENSION[kind]}.zst` : EXTENSION[kind];
}

/** The old tool's time stamp (`date +%Y-%m-%d-%H-%M-%S`); pmc writes it in UTC. */
const STAMP = /^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/;

const digest = z.string().regex(/^[0-9a-f]{64}$/);

/** What pmc writes beside each backup file. */
export const manifestSchema = z.object({
  format: z.literal('pmc-backup/1'),
  vm: z.string(),
  node: z.string(),
  /** The file stem, `YYYY-MM-DD-HH-MM-SS` (UTC). */
  stamp: z.string().regex(STAMP),
  /** The same instant, ISO 8601. */
  time: z.string(),
  type: z.enum(['full', 'incremental']),
  /** For an increment: the stem of the full image it was computed against. */
  base: z.string().regex(STAMP).nullable(),
  /** The captured disk data: the VM's data area (DRBD's metadata at the end of the LV excluded). */
  data: z.object({ bytes: z.number().int().nonnegative(), sha256: digest }),
  /** The backup file itself. */
  file: z.object({ name: z.string(), bytes: z.number().int().nonnegative(), sha256: digest }),
  /** shut-off: the VM was not running; file-systems-frozen: through its guest agent; else crash-consistent. */
  consistency: z.enum(['crash-consistent', 'file-systems-frozen', 'shut-off']),
  /**
   * Where the data was read: an LVM snapshot of this LV and the DRBD device it backs, if any; or a
   * shared VM's disk file (read while an overlay took the guest's writes, or shut off).
   */
  source: z.union([z.object({ lv: z.string(), drbdDevice: z.string().nullable() }), z.object({ file: z.string() })]),
  /** The VM as it was, so a restore into a new VM can give it the same shape. */
  vmShape: z.object({ memoryBytes: z.number().int().positive().nullable(), vcpus: z.number().int().positive().nullable() }),
  /** For an increment: xdelta3's source window (-B) in bytes. */
  xdelta3SourceWindow: z.number().int().positive().nullable(),
  /** zstd: the file is the data compressed (file.sha256 is the compressed file's). Absent in manifests written before pmc compressed. */
  compression: z.literal('zstd').nullable().optional(),
  pmcVersion: z.string(),
});

export type BackupManifest = z.infer<typeof manifestSchema>;

/**
 * The node's command printing the sha256 of its stdin, or of `from` (a shell word, quoted by the
 * caller), as the manifest holds it: 64 lowercase hex digits. OpenSSL's uses the CPU's SHA
 * instructions where there are some (1.1 GiB/s on the development machine, coreutils'
 * sha256sum 214 MiB/s); a node without openssl uses sha256sum, decided on the node in the same
 * command, so there is no extra round trip. Both print the digest first (openssl's -r form is
 * `<hex> *stdin`).
 */
export function sha256Command(from?: string): string {
  return `{ if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }${from === undefined ? '' : ` < ${from}`} | cut -c1-64 | tr A-F a-f`;
}

/** One backup file on one node, with its manifest when pmc wrote it. */
export interface BackupEntry {
  vm: string;
  node: string;
  stamp: string;
  kind: BackupKind;
  /** From the file name: a `.base.zst` is zstd. */
  compression: Compression | undefined;
  /** Full path on the node. */
  path: string;
  bytes: number;
  /** Undefined for the old tool's backups (no manifest), or when the manifest is unreadable (see manifestProblem). */
  manifest: BackupManifest | undefined;
  manifestProblem: string | undefined;
  /** For an increment: the stamp of the full image it needs on this node (the manifest's, else the newest older .base). */
  base: string | undefined;
}

/** `2026-12-02T08:30:05.123Z` -> `2026-12-02-08-30-05`. */
export function stampOf(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/[T:]/g, '-');
}

/** `2026-12-02-08-30-05` -> `2026-12-02T08:30:05Z`. */
export function isoOfStamp(stamp: string): string {
  const [y, mo, d, h, mi, s] = stamp.split('-');
  return `${y}-${mo}-${d}T${h}:${mi}:${s}Z`;
}

export function backupDir(directory: string, vm: string): string {
  return `${directory.replace(/\/+$/, '')}/${vm}`;
}

export function backupFile(directory: string, vm: string, stamp: string, kind: BackupKind, compression: Compression | undefined): string {
  return `${backupDir(directory, vm)}/${stamp}.${extensionOf(kind, compression)}`;
}

export function manifestFile(directory: string, vm: string, stamp: string): string {
  return `${backupDir(directory, vm)}/${stamp}.json`;
}

/**
 * `--at TIME`: a stamp (`2026-12-02-08-30-05`), ISO (`2026-12-02T08:30:05Z`, `2026-12-02 08:30`),
 * or a prefix of either (`2026-12-02`: that whole day). Returns the latest stamp TIME covers,
 * so "the newest backup at or before TIME" includes every backup within it. `latest` is any time.
 */
export function parseAt(input: string): string {
  const text = input.trim();
  if (text === 'latest' || text === 'now') return '9999-12-31-23-59-59';
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T _-](\d{2})(?:[:-](\d{2})(?:[:-](\d{2}))?)?)?(?:Z|\+00:?00)?$/.exec(text);
  if (!m) {
    throw new PmcError('PMC_E_USAGE', `--at ${JSON.stringify(input)} is not a time`,
      'give a backup\'s time as pmc backup ls shows it (2026-12-02-08-30-05), an ISO time in UTC (2026-12-02T08:30), a day (2026-12-02), or latest');
  }
  const [, y, mo, d, h = '23', mi = '59', s = '59'] = m;
  return `${y}-${mo}-${d}-${h}-${mi}-${s}`;
}

/**
 * The shell command that lists every backup under the directory on a node: one `F<TAB>path<TAB>bytes`
 * line per backup file, then one `M<TAB>path<TAB>json` line per manifest. Reads only.
 */
export function listingCommand(directory: string): string {
  const dir = quote(directory);
  return [
    `[ -d ${dir} ] || exit 0`,
    `cd ${dir}`,
    `for f in */*.base */*.base.zst */*.xdelta3; do [ -f "$f" ] && printf 'F\\t%s\\t%s\\n' "$f" "$(stat -c %s -- "$f")"; done`,
    `for f in */*.json; do [ -f "$f" ] && { printf 'M\\t%s\\t' "$f"; tr -d '\\n' < "$f"; echo; }; done`,
    'true',
  ].join('; ');
}

/** Parses what listingCommand printed on `node` into entries, oldest first per VM. */
export function parseListing(node: string, directory: string, output: string): { entries: BackupEntry[]; problems: string[] } {
  const problems: string[] = [];
  const files: Array<{ vm: string; stamp: string; kind: BackupKind; compression: Compression | undefined; bytes: number }> = [];
  const manifests = new Map<string, string>();
  for (const line of output.split('\n')) {
    if (!line) continue;
    const [tag, rel, rest] = line.split('\t');
    const m = /^([^/]+)\/(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})\.(base|base\.zst|xdelta3|json)$/.exec(rel ?? '');
    // Other files (notes, the old tool's leftovers) are not backups; a directory that is no VM name is not pmc's.
    if (!m || vmNameProblem(m[1]!) !== undefined) continue;
    const [, vm, stamp, ext] = m as unknown as [string, string, string, string];
    if (tag === 'F' && ext !== 'json' && /^\d+$/.test(rest ?? '')) {
      files.push({ vm, stamp, kind: ext === 'xdelta3' ? 'incremental' : 'full', compression: ext === 'base.zst' ? 'zstd' : undefined, bytes: Number(rest) });
    } else if (tag === 'M' && ext === 'json') {
      manifests.set(`${vm}/${stamp}`, rest ?? '');
    } else {
      problems.push(`${node}: cannot read the listing line ${JSON.stringify(line.slice(0, 120))}`);
    }
  }
  files.sort((a, b) => a.vm.localeCompare(b.vm) || a.stamp.localeCompare(b.stamp));
  const entries = files.map((f): BackupEntry => {
    const { manifest, problem } = readManifest(manifests.get(`${f.vm}/${f.stamp}`), f);
    return {
      vm: f.vm, node, stamp: f.stamp, kind: f.kind, compression: f.compression, path: backupFile(directory, f.vm, f.stamp, f.kind, f.compression), bytes: f.bytes,
      manifest, manifestProblem: problem, base: undefined,
    };
  });
  for (const e of entries) if (e.kind === 'incremental') e.base = baseOf(entries, e);
  return { entries, problems };
}

function readManifest(text: string | undefined, file: { vm: string; stamp: string; kind: BackupKind; compression: Compression | undefined }): { manifest: BackupManifest | undefined; problem: string | undefined } {
  if (text === undefined) return { manifest: undefined, problem: undefined };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { manifest: undefined, problem: 'its manifest is not JSON' };
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) return { manifest: undefined, problem: `its manifest is not pmc's (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})` };
  const m = parsed.data;
  if (m.vm !== file.vm || m.stamp !== file.stamp || m.type !== file.kind || (m.compression ?? undefined) !== file.compression) {
    return { manifest: undefined, problem: `its manifest describes another backup (${m.vm} ${m.stamp} ${m.type}${m.compression ? ` ${m.compression}` : ''})` };
  }
  return { manifest: m, problem: undefined };
}

/**
 * The full image an increment needs: the one its manifest names; for the old tool's increments,
 * the newest .base older than it (the old tool diffed against the newest .base there was).
 */
function baseOf(entries: readonly BackupEntry[], increment: BackupEntry): string | undefined {
  if (increment.manifest) return increment.manifest.base ?? undefined;
  return entries.filter((e) => e.vm === increment.vm && e.kind === 'full' && e.stamp < increment.stamp).at(-1)?.stamp;
}

/** The newest full image of a VM on a node: what a new increment is computed against. */
export function newestFull(entries: readonly BackupEntry[], vm: string, node: string): BackupEntry | undefined {
  return entries.filter((e) => e.vm === vm && e.node === node && e.kind === 'full').at(-1);
}

/** A backup and what restoring it reads: the full image alone, or the full image and one increment. */
export interface Chain {
  target: BackupEntry;
  full: BackupEntry;
  increment: BackupEntry | undefined;
}

/** The full image an entry needs, on the same node, or a clear error. */
export function chainOf(entries: readonly BackupEntry[], target: BackupEntry): Chain {
  if (target.kind === 'full') return { target, full: target, increment: undefined };
  const full = target.base === undefined ? undefined
    : entries.find((e) => e.vm === target.vm && e.node === target.node && e.kind === 'full' && e.stamp === target.base);
  if (!full) {
    throw new PmcError('PMC_E_STATE', `the increment ${target.node}:${target.path} needs the full image ${target.base ?? '(none older)'}, which is not on ${target.node}`,
      `copy it there (pmc backup copy ${target.vm} --to ${target.node} from the node that has it), or restore another time`);
  }
  return { target, full, increment: target };
}

/**
 * The backup `--at` means: on the given node (or on any), the newest at or before the time.
 * Several nodes with a backup of that very time: the first node in pmc.yaml's order.
 */
export function selectBackup(entries: readonly BackupEntry[], vm: string, at: string, node: string | undefined, nodeOrder: readonly string[]): Chain {
  const mine = entries.filter((e) => e.vm === vm && (node === undefined || e.node === node));
  if (mine.length === 0) {
    throw new PmcError('PMC_E_STATE', `no backup of ${vm}${node ? ` on ${node}` : ' on any node that answered'}`,
      `pmc backup ls ${vm} lists them; take one with pmc vm backup -b ${vm}`);
  }
  const rank = (n: string) => (nodeOrder.includes(n) ? nodeOrder.indexOf(n) : nodeOrder.length);
  const candidates = mine.filter((e) => e.stamp <= at)
    .sort((a, b) => b.stamp.localeCompare(a.stamp) || rank(a.node) - rank(b.node));
  const chosen = candidates[0];
  if (!chosen) {
    throw new PmcError('PMC_E_STATE', `no backup of ${vm} at or before ${at}; the oldest is ${mine.map((e) => e.stamp).sort()[0]}`,
      `pmc backup ls ${vm} lists them`);
  }
  return chainOf(mine, chosen);
}

export interface PruneDecision {
  delete: BackupEntry[];
  keep: BackupEntry[];
  /** Increments whose full image is not on their node: kept (it may come back with backup copy), named. */
  orphans: BackupEntry[];
}

/**
 * Retention per VM and node: the newest `keepFull` full images, and for each of them its newest
 * `keepIncremental` increments. Everything else goes, except that a full image is never deleted
 * while an increment that needs it is kept, and an increment whose full image is missing is
 * left alone (it is reported, not guessed about).
 */
export function planPrune(entries: readonly BackupEntry[], keepFull: number, keepIncremental: number): PruneDecision {
  const decision: PruneDecision = { delete: [], keep: [], orphans: [] };
  const groups = new Map<string, BackupEntry[]>();
  for (const e of entries) {
    const key = `${e.vm}\0${e.node}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  for (const group of groups.values()) {
    const fulls = group.filter((e) => e.kind === 'full').sort((a, b) => b.stamp.localeCompare(a.stamp));
    const keptFulls = new Set(fulls.slice(0, keepFull).map((e) => e.stamp));
    const fullStamps = new Set(fulls.map((e) => e.stamp));
    const keptIncrements = new Set<BackupEntry>();
    for (const full of keptFulls) {
      group.filter((e) => e.kind === 'incremental' && e.base === full)
        .sort((a, b) => b.stamp.localeCompare(a.stamp))
        .slice(0, keepIncremental)
        .forEach((e) => keptIncrements.add(e));
    }
    for (const e of group) {
      if (e.kind === 'incremental' && (e.base === undefined || !fullStamps.has(e.base))) {
        decision.orphans.push(e);
        decision.keep.push(e);
      } else if (e.kind === 'full' ? keptFulls.has(e.stamp) : keptIncrements.has(e)) {
        decision.keep.push(e);
      } else {
        decision.delete.push(e);
      }
    }
  }
  // The invariant, checked rather than trusted: no kept increment loses its full image.
  const deletedFulls = new Set(decision.delete.filter((e) => e.kind === 'full').map((e) => `${e.vm}\0${e.node}\0${e.stamp}`));
  for (const e of decision.keep) {
    if (e.kind === 'incremental' && e.base && deletedFulls.has(`${e.vm}\0${e.node}\0${e.base}`)) {
      throw new Error(`prune would delete ${e.base}, needed by ${e.path}`);
    }
  }
  return decision;
}
