import type { PublicKey } from '../../../src/ops/pm/ssh-trust.js';

/** An ed25519 public key (type string, then 32 key bytes) made from a seed: stable test data. */
export function fakeKey(seed: number): PublicKey {
  const type = Buffer.from('ssh-ed25519');
  const length = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const blob = Buffer.concat([length(type.length), type, length(32), Buffer.alloc(32, seed)]);
  return { type: 'ssh-ed25519', base64: blob.toString('base64') };
}

/** The key as a line of a public key file. */
export const keyLine = (k: PublicKey, comment = '') => `${k.type} ${k.base64}${comment ? ` ${comment}` : ''}`;
