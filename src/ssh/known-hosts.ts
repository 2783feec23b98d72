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
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export type KnownHostMarker = 'revoked' | 'cert-authority';

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`, for messages like "known_hosts:7". */
  line: number;
  marker: KnownHostMarker | undefined;
  /** The comma-separated patterns of a plain entry; empty for a hashed entry. */
  patterns: string[];
  /** Set for a `|1|salt|hash` entry instead of patterns. */
  hashed: { salt: Buffer; hash: Buffer } | undefined;
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
    hashed = { salt: Buffer.from(match[1]!, 'base64'), hash: Buffer.from(match[2]!, 'base64') };
    if (hashed.hash.length !== 20) return undefined;
  } else {
    patterns = hostField.split(',').filter((p) => p !== '');
  }
  return { file, line, marker, patterns, hashed, keyType, keyBlob };
}

/**
 * Reads and parses known_hosts files in order. A missing file is not an error (it just
 * knows no hosts; the unknown-host hint tells how to create it); any other read error is
 * reported in `notes` so the operator can see why a host looks unknown.
 */
export async function loadKnownHosts(files: readonly string[]): Promise<{ entries: KnownHostEntry[]; notes: string[] }> {
  const entries: KnownHostEntry[] = [];
  const notes: string[] = [];
  for (const file of files) {
    try {
      entries.push(...parseKnownHosts(await readFile(file, 'utf8'), file));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      notes.push(code === 'ENOENT' ? `${file}: does not exist` : `${file}: cannot read (${code ?? String(err)})`);
    }
  }
  return { entries, notes };
}

/** The name OpenSSH looks a host up by: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Whether the entry's host field matches any of the lookup names (see hostLookupName). */
export function entryMatches(entry: KnownHostEntry, lookupNames: readonly string[]): boolean {
  return lookupNames.some((name) => {
    const lower = name.toLowerCase();
    if (entry.hashed) {
      const digest = createHmac('sha1', entry.hashed.salt).update(lower).digest();
      return timingSafeEqual(digest, entry.hashed.hash);
    }
    return matchesPatternList(lower, entry.patterns);
  });
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
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(text);
}

/**
 * Decides what to make of the key a server offered, given every entry of the configured
 * files and the names the host is looked up by (see hostLookupName). Like OpenSSH: a
 * revoked key is refused even if also listed as trusted; a listed key is trusted; a host
 * listed with another key of the same type has CHANGED its key; otherwise it is unknown.
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

/** The `ssh-keyscan -t` name of a key type (ed25519, ecdsa, rsa, dsa). */
export function keyscanTypeName(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ed25519';
  if (keyType.startsWith('ecdsa-sha2-')) return 'ecdsa';
  if (keyType === 'ssh-rsa') return 'rsa';
  if (keyType === 'ssh-dss') return 'dsa';
  return keyType;
}
