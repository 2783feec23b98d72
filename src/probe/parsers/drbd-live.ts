import type {
  DrbdConnectionState, DrbdDiskState, DrbdReplicationState, DrbdRole,
} from '../types.js';

/**
 * The live state of one resource as `drbdsetup events2` and `drbdadm status` report it. Both
 * parsers produce this shape so the join in gather.ts does not care which tool spoke.
 */
export interface DrbdLiveResource {
  name: string;
  role: DrbdRole;
  devices: DrbdLiveDevice[];
  connections: DrbdLiveConnection[];
}

export interface DrbdLiveDevice {
  volume: number;
  minor: number | undefined;
  diskState: DrbdDiskState;
  sizeBytes: number | undefined;
  /** DRBD 9 events2 `backing_dev:` (none when diskless). */
  backingDisk: string | undefined;
  open: boolean | undefined;
}

export interface DrbdLiveConnection {
  /** DRBD 9: the peer's host name; 8.4: `peer` or nothing. */
  name: string | undefined;
  peerNodeId: number | undefined;
  connection: DrbdConnectionState;
  role: DrbdRole;
  splitBrainReported: boolean;
  peerDevices: DrbdLivePeerDevice[];
}

export interface DrbdLivePeerDevice {
  volume: number;
  replication: DrbdReplicationState;
  diskState: DrbdDiskState;
  syncPercent: number | undefined;
  outOfSyncBytes: number | undefined;
}

// The word lists are DRBD's own (drbd_strings.c); anything else is a DRBD newer than this code.
const ROLES: readonly DrbdRole[] = ['Primary', 'Secondary', 'Unknown'];
const DISK_STATES: readonly DrbdDiskState[] = [
  'Diskless', 'Attaching', 'Detaching', 'Failed', 'Negotiating',
  'Inconsistent', 'Outdated', 'DUnknown', 'Consistent', 'UpToDate',
];
const CONNECTION_STATES: readonly DrbdConnectionState[] = [
  'StandAlone', 'Disconnecting', 'Unconnected', 'Timeout', 'BrokenPipe',
  'NetworkFailure', 'ProtocolError', 'TearDown', 'Connecting', 'Connected',
];
const REPLICATION_STATES: readonly DrbdReplicationState[] = [
  'Off', 'Established', 'StartingSyncS', 'StartingSyncT', 'WFBitMapS', 'WFBitMapT',
  'WFSyncUUID', 'SyncSource', 'SyncTarget', 'VerifyS', 'VerifyT',
  'PausedSyncS', 'PausedSyncT', 'Ahead', 'Behind',
];

function member<T extends string>(list: readonly T[], word: string | undefined): T | undefined {
  return (list as readonly string[]).includes(word ?? '') ? (word as T) : undefined;
}

/**
 * Reads DRBD state words, falling back to the "don't know" value of each kind (and noting the
 * word in `problems`) so that an unexpected word never passes for a healthy state.
 */
export class DrbdWords {
  constructor(private readonly problems: string[], private readonly where: string) {}

  role(word: string | undefined): DrbdRole {
    return member(ROLES, word) ?? this.unknown('role', word, 'Unknown');
  }

  disk(word: string | undefined): DrbdDiskState {
    return member(DISK_STATES, word) ?? this.unknown('disk state', word, 'DUnknown');
  }

  connection(word: string | undefined): DrbdConnectionState {
    return member(CONNECTION_STATES, word) ?? this.unknown('connection state', word, 'Unconnected');
  }

  replication(word: string | undefined): DrbdReplicationState {
    return member(REPLICATION_STATES, word) ?? this.unknown('replication state', word, 'Off');
  }

  private unknown<T>(kind: string, word: string | undefined, fallback: T): T {
    this.problems.push(`${this.where}: unknown DRBD ${kind} ${JSON.stringify(word ?? '')}, taken as ${String(fallback)}`);
    return fallback;
  }
}

/**
 * DRBD 8.4 folds connection and replication into one `cs:` word (/proc/drbd). Split it the way
 * the DRBD 9 vocabulary does, which is also what events2 prints on 8.4.
 */
export function splitConnectionState84(cs: string, words: DrbdWords): {
  connection: DrbdConnectionState; replication: DrbdReplicationState;
} {
  switch (cs) {
    case 'WFConnection': return { connection: 'Connecting', replication: 'Off' };
    case 'WFReportParams': return { connection: 'Connected', replication: 'Off' };
    case 'Connected': return { connection: 'Connected', replication: 'Established' };
    default:
      if (member(CONNECTION_STATES, cs)) return { connection: cs as DrbdConnectionState, replication: 'Off' };
      return { connection: 'Connected', replication: words.replication(cs) };
  }
}

/** `key:value key:value` words as printed by events2 and drbdadm status (values have no spaces). */
export function keyValues(words: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const word of words) {
    const colon = word.indexOf(':');
    if (colon > 0) map.set(word.slice(0, colon), word.slice(colon + 1));
  }
  return map;
}

export function integerOrUndefined(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

export function percentOrUndefined(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}
