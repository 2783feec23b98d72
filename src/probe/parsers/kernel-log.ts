import type { Parsed } from '../types.js';

export interface SplitBrainEvent {
  /** 8.4 logs per minor (`block drbd10:`). */
  minor: number | undefined;
  /** DRBD 9 logs per resource and peer (`drbd test-vm pm-2:`). */
  resource: string | undefined;
  peer: string | undefined;
  /** False for "..., automatically solved" and "..., manually solved" (after --discard-my-data). */
  unresolved: boolean;
  /** The `[  254.512678]` timestamp: seconds since boot. */
  secondsSinceBoot: number | undefined;
}

/**
 * Picks the split-brain reports out of kernel log lines (`dmesg`). A split brain leaves DRBD
 * StandAlone with both disks UpToDate, which `drbdadm status` shows as nearly healthy; the
 * kernel log is the only place that says what happened. Helper-command lines repeat the same
 * event and are skipped.
 */
export function parseSplitBrainLog(text: string): Parsed<SplitBrainEvent[]> {
  const events: SplitBrainEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('Split-Brain detected')) continue;
    const time = /^\[\s*(\d+\.\d+)\]/.exec(line);
    const minor84 = /\bblock drbd(\d+):/.exec(line);
    const drbd9 = /\bdrbd ([^\s/:]+)(?:\/\d+ drbd(\d+))?(?: ([^\s:]+))?: Split-Brain/.exec(line);
    const minor = minor84?.[1] ?? drbd9?.[2];
    events.push({
      minor: minor !== undefined ? Number(minor) : undefined,
      resource: drbd9?.[1],
      peer: drbd9?.[3],
      unresolved: line.includes('unresolved'),
      secondsSinceBoot: time ? Number(time[1]) : undefined,
    });
  }
  return { value: events, problems: [] };
}

/** The kernel's record of a resource leaving the Connected state. */
export interface ConnectionLossEvent {
  resource: string;
  /** The peer's role just before (`peer( Primary -> Unknown )`); undefined when the line does not say. */
  peerRoleBefore: string | undefined;
  /**
   * The state it went to: `Disconnecting` (a `drbdadm disconnect` here), `TearDown` (the peer
   * closed the connection on purpose), `NetworkFailure`, `BrokenPipe`, `Timeout` (lost).
   */
  to: string;
  secondsSinceBoot: number | undefined;
}

/**
 * Picks the lines where a DRBD connection left the Connected state
 * (`drbd fo-a: peer( Primary -> Unknown ) conn( Connected -> NetworkFailure ) pdsk( UpToDate -> DUnknown )`),
 * oldest first. Once the peer is gone this is the only record of its role and of how the link ended.
 */
export function parseConnectionLossLog(text: string): Parsed<ConnectionLossEvent[]> {
  const events: ConnectionLossEvent[] = [];
  for (const line of text.split('\n')) {
    const m = /\bdrbd ([^\s/:]+)(?: [^\s:]+)?: (?:peer\( (\w+) -> \w+ \) )?conn\( Connected -> (\w+) \)/.exec(line);
    if (!m) continue;
    const time = /^\[\s*(\d+\.\d+)\]/.exec(line);
    events.push({ resource: m[1]!, peerRoleBefore: m[2], to: m[3]!, secondsSinceBoot: time ? Number(time[1]) : undefined });
  }
  return { value: events, problems: [] };
}
