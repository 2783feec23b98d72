/**
 * known_hosts parsing and host key verification, following OpenSSH's rules (sshd(8)
 * "SSH_KNOWN_HOSTS FILE FORMAT") so that a file maintained with ssh, ssh-keyscan and
 * ssh-keygen -H/-R means exactly the same thing to pmc as it does to ssh:
 *
 * - host fields are comma-separated patterns with `*` and `?`, `!pattern` negates (a
 *   negated match rejects the line even if another pattern matches), case-insensitive;
 * - a host on a port other than 22 is looked up as `[host]:port`;
 * - `|1|salt|hash` fields are HMAC-SHA1(salt, name) as written by `ssh-keygen -H`;
 * - `@revoked` lines reject their key; `@cert-authority` lines are ignored (pmc does not
 *   verify host certificates, so a CA line never makes a host trusted).
 *
 * A pmc run reads and parses each file once (KnownHostsStore) and looks each node up once
 * (KnownHostsIndex), so that a fleet of a thousand nodes costs one HMAC per hashed entry
 * and node, and a Map lookup per plain one.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hashedEntryKey, hashedNameMatches, prepareName, type HashedEntryKey, type PreparedName } from './hashed-names.js';

export type KnownHostMarker = 'revoked' | 'cert-authority';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`, for messages like "known_hosts:7". */
  line: number;
  marker: KnownHostMarker | undefined;
  /** The comma-separated patterns of a plain entry; empty for a hashed entry. */
  patterns: string[];
  /** Set for a `|1|salt|hash` entry instead of patterns; `key` is the salt's precomputed HMAC half. */
  hashed: { salt: Buffer; hash: Buffer; key: HashedEntryKey } | undefined;
  /** The key type as written on the line (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa...). */
  keyType: string;
  /** The decoded public key blob (the base64 field). */
  keyBlob: Buffer;
}

export type HostKeyVerdict =
  | { kind: 'trusted'; entry: KnownHostEntry }
  /** `knownTypes`: key types the host is known by, none of them the offered one. */
  | { kind: 'unknown'; knownTypes: string[] }
  /** `entries`: the lines that hold a different key of the offered type. */
  | { kind: 'changed'; entries: KnownHostEntry[] }
  | { kind: 'revoked'; entry: KnownHostEntry };

/**
 * Parses one known_hosts file. Lines that are not valid entries are skipped, as OpenSSH
 * does, so one bad line cannot lock the operator out of every host.
 */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const entry = parseLine(raw, file, index + 1);
    if (entry) entries.push(entry);
  });
  return entries;
}

function parseLine(raw: string, file: string, line: number): KnownHostEntry | undefined {
  const text = raw.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const fields = text.split(/[ \t]+/);
  let marker: KnownHostMarker | undefined;
  if (fields[0]!.startsWith('@')) {
    const name = fields.shift()!;
    if (name !== '@revoked' && name !== '@cert-authority') return undefined;
    marker = name === '@revoked' ? 'revoked' : 'cert-authority';
  }
  const [hostField, keyType, keyBase64] = fields;
  if (!hostField || !keyType || !keyBase64) return undefined;
  const keyBlob = Buffer.from(keyBase64, 'base64');
  if (keyBlob.length === 0 || blobKeyType(keyBlob) !== keyType) return undefined;

  let hashed: KnownHostEntry['hashed'];
  let patterns: string[] = [];
  if (hostField.startsWith('|')) {
    const match = /^\|1\|([^|]+)\|([^|]+)$/.exec(hostField);
    if (!match) return undefined;
    const salt = Buffer.from(match[1]!, 'base64');
    const hash = Buffer.from(match[2]!, 'base64');
    // OpenSSH writes and accepts only 20-byte salts (SHA-1's size).
    const key = salt.length === 20 ? hashedEntryKey(salt, hash) : undefined;
    if (!key) return undefined;
    hashed = { salt, hash, key };
  } else {
    patterns = hostField.split(',').filter((p) => p !== '');
  }
  return { file, line, marker, patterns, hashed, keyType, keyBlob };
}

/** One known_hosts file as read: its entries, or why it could not be read. */
export interface KnownHostsFile {
  file: string;
  entries: KnownHostEntry[];
  /** ENOENT (the file just knows no hosts), or the reason reading failed: EACCES, EISDIR... */
  error: { code: string; message: string } | undefined;
}

/** Reads and parses one known_hosts file; never rejects. */
export async function readKnownHostsFile(file: string): Promise<KnownHostsFile> {
  try {
    return { file, entries: parseKnownHosts(await readFile(file, 'utf8'), file), error: undefined };
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    return { file, entries: [], error: { code: code ?? 'EIO', message } };
  }
}

/**
 * Reads and parses known_hosts files in order. A missing file is not an error (it just
 * knows no hosts; the unknown-host hint tells how to create it); any other read error is
 * reported in `notes` so the operator can see why a host looks unknown.
 */
export async function loadKnownHosts(files: readonly string[]): Promise<{ entries: KnownHostEntry[]; notes: string[] }> {
  const read = await Promise.all(files.map(readKnownHostsFile));
  return { entries: read.flatMap((f) => f.entries), notes: read.flatMap((f) => (f.error ? [readErrorNote(f.file, f.error.code)] : [])) };
}

function readErrorNote(file: string, code: string): string {
  return code === 'ENOENT' ? `${file}: does not exist` : `${file}: cannot read (${code})`;
}

/** The name OpenSSH looks a host up by: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Whether the entry's host field matches any of the lookup names (see hostLookupName). */
export function entryMatches(entry: KnownHostEntry, lookupNames: readonly string[]): boolean {
  return lookupNames.some((name) => matchesName(entry, name.toLowerCase(), undefined));
}

/** `lower` is the lowercased lookup name; `prepared` its hashing blocks, when already made. */
function matchesName(entry: KnownHostEntry, lower: string, prepared: PreparedName | undefined): boolean {
  if (entry.hashed) return hashedNameMatches(entry.hashed.key, prepared ?? prepareName(lower));
  return matchesPatternList(lower, entry.patterns);
}

function matchesPatternList(name: string, patterns: readonly string[]): boolean {
  let positive = false;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    if (!globMatch(name, (negated ? pattern.slice(1) : pattern).toLowerCase())) continue;
    if (negated) return false;
    positive = true;
  }
  return positive;
}

function globMatch(text: string, pattern: string): boolean {
  if (!/[*?]/.test(pattern)) return text === pattern;
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(text);
}

/** A plain entry whose patterns are all literal names can be found by name in a Map. */
function isLiteral(entry: KnownHostEntry): boolean {
  return entry.hashed === undefined && entry.patterns.every((p) => !p.startsWith('!') && !/[*?]/.test(p));
}

/**
 * The entries of known_hosts files, indexed so that looking a name up costs: one Map get
 * for literal names, a pattern match per wildcard or negated entry, and at most one HMAC per
 * hashed entry (the only per-entry cost OpenSSH has too); an entry already found for another
 * name is not hashed again, as its hash is of that name only. Each name is looked up once;
 * the answer is kept for the run.
 */
export class KnownHostsIndex {
  /** Lowercased literal name → positions (in `entries`) of the entries listing it. */
  private readonly literal = new Map<string, number[]>();
  private readonly patterned: number[] = [];
  /** Hashed entries not yet found for a name looked up: a hash is of one name only. */
  private unclaimedHashed: number[] = [];
  private readonly byName = new Map<string, readonly KnownHostEntry[]>();

  constructor(readonly entries: readonly KnownHostEntry[]) {
    entries.forEach((entry, position) => {
      if (entry.hashed) this.unclaimedHashed.push(position);
      else if (!isLiteral(entry)) this.patterned.push(position);
      else {
        for (const name of new Set(entry.patterns.map((p) => p.toLowerCase()))) {
          const positions = this.literal.get(name);
          if (positions) positions.push(position);
          else this.literal.set(name, [position]);
        }
      }
    });
  }

  /** The entries (any marker) whose host field matches `name`, in file order. */
  matching(name: string): readonly KnownHostEntry[] {
    const lower = name.toLowerCase();
    let found = this.byName.get(lower);
    if (!found) {
      const prepared = this.unclaimedHashed.length > 0 ? prepareName(lower) : undefined;
      const hashed = this.unclaimedHashed.filter((p) => matchesName(this.entries[p]!, lower, prepared));
      if (hashed.length > 0) this.unclaimedHashed = this.unclaimedHashed.filter((p) => !hashed.includes(p));
      const positions = [
        ...(this.literal.get(lower) ?? []),
        ...this.patterned.filter((p) => matchesName(this.entries[p]!, lower, prepared)),
        ...hashed,
      ].sort((a, b) => a - b);
      found = positions.map((p) => this.entries[p]!);
      this.byName.set(lower, found);
    }
    return found;
  }

  /** What known_hosts says about a host looked up by these names (see hostLookupName). */
  lookup(lookupNames: readonly string[]): HostKeys {
    return {
      byName: lookupNames.map((name) => ({
        name,
        entries: this.matching(name).filter((e) => e.marker !== 'cert-authority'),
      })),
    };
  }
}

/** The entries that match each name a host is looked up by; @cert-authority lines left out. */
export interface HostKeys {
  byName: { name: string; entries: readonly KnownHostEntry[] }[];
}

/** The host's plain (unmarked) entries, each once, in file order. */
export function plainEntries(hostKeys: HostKeys): KnownHostEntry[] {
  return [...new Set(hostKeys.byName.flatMap((n) => n.entries.filter((e) => e.marker === undefined)))];
}

/** The known_hosts files of one target, read once per run (see KnownHostsStore). */
export interface KnownHosts {
  files: readonly KnownHostsFile[];
  index: KnownHostsIndex;
}

/**
 * The known_hosts files of one pmc run: each file is read and parsed once, and each list of
 * files (the config's, or a node's own) indexed once, however many nodes and jump hosts use it.
 */
export class KnownHostsStore {
  private readonly files = new Map<string, Promise<KnownHostsFile>>();
  private readonly sets = new Map<string, Promise<KnownHosts>>();

  load(files: readonly string[]): Promise<KnownHosts> {
    const key = JSON.stringify(files);
    let set = this.sets.get(key);
    if (!set) {
      set = Promise.all(files.map((file) => this.file(file))).then((read) => ({
        files: read,
        index: new KnownHostsIndex(read.flatMap((f) => f.entries)),
      }));
      this.sets.set(key, set);
    }
    return set;
  }

  private file(file: string): Promise<KnownHostsFile> {
    let read = this.files.get(file);
    if (!read) {
      read = readKnownHostsFile(file);
      this.files.set(file, read);
    }
    return read;
  }
}

/** Files that exist but cannot be read (a directory, no permission): a host cannot be checked against them. */
export function unreadableFiles(knownHosts: KnownHosts): KnownHostsFile[] {
  return knownHosts.files.filter((f) => f.error !== undefined && f.error.code !== 'ENOENT');
}

/**
 * What to make of the key a server presented, like OpenSSH with StrictHostKeyChecking=yes:
 * - revoked: an @revoked line for any of the host's names holds it;
 * - trusted: a line for one of the names holds it, and no other name has a *different* key
 *   of the same type (then the entries conflict: one of them is stale or forged, so refuse,
 *   as OpenSSH refuses a host whose address has another key than its name, CheckHostIP);
 *   a name with several keys of a type is fine (key rotation, UpdateHostKeys);
 * - changed: the host has lines, none with this key, whatever their type (OpenSSH says
 *   "REMOTE HOST IDENTIFICATION HAS CHANGED" for an ed25519 key when it knows only ECDSA);
 * - unknown: no line for any of its names.
 */
export type ServerKeyVerdict =
  | { kind: 'trusted'; entry: KnownHostEntry }
  | { kind: 'unknown' }
  | { kind: 'changed'; entries: KnownHostEntry[] }
  | { kind: 'conflict'; trusted: { name: string; entry: KnownHostEntry }; others: { name: string; entry: KnownHostEntry }[] }
  | { kind: 'revoked'; entry: KnownHostEntry };

export function checkServerKey(hostKeys: HostKeys, keyBlob: Buffer): ServerKeyVerdict {
  const revoked = hostKeys.byName.flatMap((n) => n.entries).find((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob));
  if (revoked) return { kind: 'revoked', entry: revoked };
  const names = hostKeys.byName.map(({ name, entries }) => {
    const plain = entries.filter((e) => e.marker === undefined);
    return { name, plain, holding: plain.find((e) => e.keyBlob.equals(keyBlob)) };
  });
  const trusted = names.find((n) => n.holding);
  if (trusted) {
    const keyType = blobKeyType(keyBlob);
    const others = names
      .filter((n) => !n.holding)
      .flatMap((n) => n.plain.filter((e) => e.keyType === keyType).map((entry) => ({ name: n.name, entry })));
    if (others.length > 0) return { kind: 'conflict', trusted: { name: trusted.name, entry: trusted.holding! }, others };
    return { kind: 'trusted', entry: trusted.holding! };
  }
  const entries = plainEntries(hostKeys);
  return entries.length > 0 ? { kind: 'changed', entries } : { kind: 'unknown' };
}

/**
 * Decides what to make of one of a host's keys, given every entry of the configured files
 * and the names the host is looked up by (see hostLookupName): a revoked key is refused
 * even if also listed as trusted; a listed key is trusted; a host listed with another key
 * of the same type has CHANGED that key; otherwise it is unknown. This judges each key of a
 * host on its own (pmc's node-to-node trust audits all of a node's keys this way); the key
 * a server presents to pmc is judged by checkServerKey.
 */
export function verifyHostKey(entries: readonly KnownHostEntry[], lookupNames: readonly string[], keyBlob: Buffer): HostKeyVerdict {
  const keyType = blobKeyType(keyBlob);
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && entryMatches(e, lookupNames));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob));
  if (revoked) return { kind: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === undefined);
  const trusted = plain.find((e) => e.keyBlob.equals(keyBlob));
  if (trusted) return { kind: 'trusted', entry: trusted };
  const changed = plain.filter((e) => e.keyType === keyType);
  if (changed.length > 0) return { kind: 'changed', entries: changed };
  return { kind: 'unknown', knownTypes: [...new Set(plain.map((e) => e.keyType))] };
}

/** The key types known for a host, in file order, without duplicates. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], lookupNames: readonly string[]): string[] {
  const types = entries
    .filter((e) => e.marker === undefined && entryMatches(e, lookupNames))
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/** The key type named inside an SSH public key blob (its first string). */
export function blobKeyType(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || 4 + length > keyBlob.length) return undefined;
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** The fingerprint as `ssh-keygen -l` prints it: SHA256 of the blob, unpadded base64. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The `ssh-keyscan -t` name of a key type or host key algorithm (ed25519, ecdsa, rsa, dsa). */
export function keyscanTypeName(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ed25519';
  if (keyType.startsWith('ecdsa-sha2-')) return 'ecdsa';
  if (keyType === 'ssh-rsa' || keyType.startsWith('rsa-sha2-')) return 'rsa';
  if (keyType === 'ssh-dss') return 'dsa';
  return keyType;
}
