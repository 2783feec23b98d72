/**
 * Matching host names against hashed known_hosts entries (`|1|salt|hash`, HMAC-SHA1 of the
 * name keyed by the salt, as `ssh-keygen -H` writes them) fast enough for a thousand nodes
 * with several keys each: every name must be hashed once per hashed entry, as in OpenSSH.
 *
 * node:crypto's createHmac costs ~4 µs a call, mostly object set-up: 3 million calls (1000
 * nodes x 3000 entries) would take 10 s. HMAC-SHA1 of a short name is four SHA-1 block
 * compressions, two of which depend on the salt only (the key XOR ipad and XOR opad blocks).
 * Those two are computed once per entry when the file is parsed; matching a name then costs
 * two compressions of plain integer arithmetic. Equality with node:crypto's HMAC is tested on
 * random inputs and on files written by ssh-keygen -H (test/unit/ssh/known-hosts.test.ts).
 */

/** The salt-only half of an entry's HMAC: SHA-1 states after the ipad and opad key blocks. */
export interface HashedEntryKey {
  inner: Int32Array;
  outer: Int32Array;
  /** The expected HMAC, as five big-endian 32-bit words. */
  digest: Int32Array;
}

/**
 * A name prepared for matching: its bytes padded into SHA-1 blocks after a 64-byte key block,
 * each block already expanded into its 80-word message schedule (the same for every entry).
 */
export interface PreparedName {
  schedules: Int32Array;
}

const BLOCK_BYTES = 64;
const DIGEST_BYTES = 20;
const IV = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0);

const SCHEDULE_WORDS = 80;

/** Expands the 16 words at `words[offset]` into SHA-1's 80-word message schedule at `out[at]`. */
function expand(words: Int32Array, offset: number, out: Int32Array, at: number): void {
  for (let i = 0; i < 16; i++) out[at + i] = words[offset + i]!;
  for (let i = at + 16; i < at + SCHEDULE_WORDS; i++) {
    const x = out[i - 3]! ^ out[i - 8]! ^ out[i - 14]! ^ out[i - 16]!;
    out[i] = (x << 1) | (x >>> 31);
  }
}

const schedule = new Int32Array(SCHEDULE_WORDS);

/** One SHA-1 block compression: `state` (5 words) is updated with the 16 words at `words[offset]`. */
function compress(state: Int32Array, words: Int32Array, offset: number): void {
  expand(words, offset, schedule, 0);
  rounds(state, schedule, 0);
}

/** SHA-1's 80 rounds over the message schedule at `w[at]`, added into `state`. */
function rounds(state: Int32Array, w: Int32Array, at: number): void {
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let e = state[4]!;
  // Four loops of 20 rounds, one per round function, keep the hot loop free of branches.
  for (let i = at; i < at + 20; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + w[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  for (let i = at + 20; i < at + 40; i++) {
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + w[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  for (let i = at + 40; i < at + 60; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e - 0x70e44324 + w[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  for (let i = at + 60; i < at + 80; i++) {
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e - 0x359d3e2a + w[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
}

/** Big-endian words of `bytes` (length a multiple of 4). */
function words(bytes: Uint8Array): Int32Array {
  const out = new Int32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) {
    out[i] = (bytes[4 * i]! << 24) | (bytes[4 * i + 1]! << 16) | (bytes[4 * i + 2]! << 8) | bytes[4 * i + 3]!;
  }
  return out;
}

/**
 * `data` padded as SHA-1 pads a message that follows `prefixBytes` already-hashed bytes:
 * 0x80, zeros, then the total length in bits.
 */
function padded(data: Uint8Array, prefixBytes: number): Int32Array {
  const length = Math.ceil((data.length + 9) / BLOCK_BYTES) * BLOCK_BYTES;
  const bytes = new Uint8Array(length);
  bytes.set(data);
  bytes[data.length] = 0x80;
  const bits = (prefixBytes + data.length) * 8;
  new DataView(bytes.buffer).setUint32(length - 4, bits);
  return words(bytes);
}

/** Precomputes the salt's half of HMAC-SHA1; undefined for a salt longer than a block (never written by OpenSSH). */
export function hashedEntryKey(salt: Buffer, digest: Buffer): HashedEntryKey | undefined {
  if (salt.length > BLOCK_BYTES || digest.length !== DIGEST_BYTES) return undefined;
  const pad = (byte: number): Int32Array => {
    const block = new Uint8Array(BLOCK_BYTES).fill(byte);
    for (let i = 0; i < salt.length; i++) block[i]! ^= salt[i]!;
    const state = IV.slice();
    compress(state, words(block), 0);
    return state;
  };
  return { inner: pad(0x36), outer: pad(0x5c), digest: words(digest) };
}

export function prepareName(name: string): PreparedName {
  const blocks = padded(Buffer.from(name, 'utf8'), BLOCK_BYTES);
  const schedules = new Int32Array((blocks.length / 16) * SCHEDULE_WORDS);
  for (let block = 0; block < blocks.length / 16; block++) expand(blocks, block * 16, schedules, block * SCHEDULE_WORDS);
  return { schedules };
}

/** The outer hash's single block: the 20-byte inner digest, padded after the opad key block. */
const outerBlock = padded(new Uint8Array(DIGEST_BYTES), BLOCK_BYTES);
const state = new Int32Array(5);

/** Whether HMAC-SHA1(salt, name) equals the entry's hash. */
export function hashedNameMatches(key: HashedEntryKey, name: PreparedName): boolean {
  state.set(key.inner);
  for (let at = 0; at < name.schedules.length; at += SCHEDULE_WORDS) rounds(state, name.schedules, at);
  outerBlock.set(state, 0);
  state.set(key.outer);
  compress(state, outerBlock, 0);
  const d = key.digest;
  return state[0] === d[0] && state[1] === d[1] && state[2] === d[2] && state[3] === d[3] && state[4] === d[4];
}
