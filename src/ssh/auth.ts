/**
 * Client authentication methods for one target: the ssh-agent first (like ssh does), then
 * each identity file in order. pmc never prompts, so an encrypted key file is usable only
 * through the agent; such a file is skipped and named in the failure hint.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, ParsedKey } from 'ssh2';
import type { SshTarget } from './types.js';

export interface AuthPlan {
  /** Passed to ssh2 as `authHandler`: tried in this order until one is accepted. */
  methods: AnyAuthMethod[];
  /** What the methods are, for "tried: agent, /root/.ssh/id_ed25519". */
  tried: string[];
  /** Identity files that could not be used, with the reason (shown with --verbose). */
  skipped: string[];
  /** Why the agent could not be used, once the connection attempt has found out. */
  agentFailure: string | undefined;
  /** Identity files skipped because they need a passphrase. */
  encrypted: string[];
}

/** One identity file as read: its key, or why it cannot be used. */
type Identity =
  | { key: ParsedKey }
  | { skipped: string; encrypted: boolean };

/**
 * The identity files of one pmc run: each read and parsed once, however many nodes and jump
 * hosts use it (a new store reads them afresh).
 */
export class IdentityStore {
  private readonly identities = new Map<string, Promise<Identity>>();

  load(file: string): Promise<Identity> {
    let identity = this.identities.get(file);
    if (!identity) {
      identity = readIdentity(file);
      this.identities.set(file, identity);
    }
    return identity;
  }
}

async function readIdentity(file: string): Promise<Identity> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return { skipped: `${file}: cannot read (${code})`, encrypted: false };
  }
  const parsed = ssh2.utils.parseKey(data);
  if (parsed instanceof Error) {
    if (/encrypted|passphrase/i.test(parsed.message)) return { skipped: `${file}: encrypted (load it into ssh-agent)`, encrypted: true };
    return { skipped: `${file}: not a usable private key (${parsed.message})`, encrypted: false };
  }
  if (!parsed.isPrivateKey()) return { skipped: `${file}: not a private key`, encrypted: false };
  return { key: withKeyObject(parsed) };
}

/**
 * The hash each key type signs with when ssh2 names none (it names one for RSA keys used as
 * rsa-sha2-256/512), as ssh2 itself chooses it.
 */
const DEFAULT_HASH: Record<string, string | null> = {
  'ssh-ed25519': null,
  'ecdsa-sha2-nistp256': 'sha256',
  'ecdsa-sha2-nistp384': 'sha384',
  'ecdsa-sha2-nistp521': 'sha512',
  'ssh-rsa': 'sha1',
};

/**
 * The key, signing with a KeyObject made once. ssh2 signs with the key's PEM text, which
 * OpenSSL 3 decodes anew for every signature: about 0.6 ms of the manager's CPU per
 * connection for an ed25519 key, ten times the signature itself. A key type not listed in
 * DEFAULT_HASH keeps ssh2's own signing.
 */
function withKeyObject(key: ParsedKey): ParsedKey {
  const pem = key.getPrivatePEM();
  if (!(key.type in DEFAULT_HASH) || typeof pem !== 'string') return key;
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch {
    return key;
  }
  const defaultHash = DEFAULT_HASH[key.type]!;
  // Still ssh2's parsed key (its own fields and methods come from `key`); only sign differs.
  return Object.create(key, {
    sign: {
      value: (data: Buffer, hash?: string): Buffer | Error => {
        try {
          return sign(hash || defaultHash, data, keyObject);
        } catch (err) {
          return err as Error;
        }
      },
    },
  }) as ParsedKey;
}

export async function planAuth(target: SshTarget, identities: IdentityStore = new IdentityStore()): Promise<AuthPlan> {
  const plan: AuthPlan = { methods: [], tried: [], skipped: [], encrypted: [], agentFailure: undefined };
  const username = target.user;
  if (target.agentSocket) {
    plan.methods.push({ type: 'agent', username, agent: target.agentSocket });
    plan.tried.push('agent');
  }
  for (const file of target.identityFiles) {
    const identity = await identities.load(file);
    if ('skipped' in identity) {
      plan.skipped.push(identity.skipped);
      if (identity.encrypted) plan.encrypted.push(file);
      continue;
    }
    plan.methods.push({ type: 'publickey', username, key: identity.key });
    plan.tried.push(file);
  }
  return plan;
}
