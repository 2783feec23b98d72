import type {
  DrbdConnectionState, DrbdDiskState, DrbdReplicationState, DrbdRole, Parsed,
} from '../types.js';
import { DrbdWords, splitConnectionState84 } from './drbd-live.js';
import { parseProcDrbdVersionLine } from './versions.js';

const KiB = 1024;

/** One minor as DRBD 8.4 shows it in /proc/drbd. */
export interface ProcDrbdDevice {
  minor: number;
  connection: DrbdConnectionState;
  replication: DrbdReplicationState;
  role: DrbdRole;
  peerRole: DrbdRole;
  diskState: DrbdDiskState;
  peerDiskState: DrbdDiskState;
  /** `sync'ed: 76.5%` (or `verified:`) while a resync or verify runs. */
  syncPercent: number | undefined;
  /** `oos:` in KiB, converted. */
  outOfSyncBytes: number | undefined;
}

export interface ProcDrbd {
  /** Kernel module version from the first line. */
  version: string | undefined;
  /** DRBD 9 lists no devices here (its state is only in events2 / status). */
  devices: ProcDrbdDevice[];
}

/**
 * Parses /proc/drbd. On 8.4 each configured minor has a state line
 * (`10: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----`), a counters line with
 * `oos:` and, during a resync, a progress bar line with `sync'ed: 49.1%`. A minor shown as
 * `cs:Unconfigured` is down and left out.
 */
export function parseProcDrbd(text: string): Parsed<ProcDrbd> {
  const problems: string[] = [];
  const words = new DrbdWords(problems, '/proc/drbd');
  const lines = text.split('\n');
  const version = parseProcDrbdVersionLine(lines[0] ?? '');
  if (version === undefined && text.trim() !== '') problems.push('/proc/drbd: first line has no version');

  const devices: ProcDrbdDevice[] = [];
  let current: ProcDrbdDevice | undefined;
  for (const line of lines) {
    const state = /^\s*(\d+):\s+cs:(\S+)(.*)$/.exec(line);
    if (state) {
      current = undefined;
      const [, minor, cs, rest] = state;
      if (cs === 'Unconfigured') continue;
      const roles = /\bro:(\S+)\/(\S+)/.exec(rest!);
      const disks = /\bds:(\S+)\/(\S+)/.exec(rest!);
      if (!roles || !disks) {
        problems.push(`/proc/drbd: minor ${minor}: no ro:/ds: in ${JSON.stringify(line.trim())}`);
        continue;
      }
      current = {
        minor: Number(minor),
        ...splitConnectionState84(cs!, words),
        role: words.role(roles[1]),
        peerRole: words.role(roles[2]),
        diskState: words.disk(disks[1]),
        peerDiskState: words.disk(disks[2]),
        syncPercent: undefined,
        outOfSyncBytes: undefined,
      };
      devices.push(current);
      continue;
    }
    if (!current) continue;
    const oos = /\boos:(\d+)/.exec(line);
    if (oos) current.outOfSyncBytes = Number(oos[1]) * KiB;
    const progress = /(?:sync'ed|verified):\s*([\d.]+)%/.exec(line);
    if (progress) current.syncPercent = Number(progress[1]);
  }
  return { value: { version, devices }, problems };
}
