/**
 * Client authentication methods for one target: the ssh-agent first (like ssh does), then
 * each identity file in order. pmc never prompts, so an encrypted key file is usable only
 * through the agent; such a file is skipped and named in the failure hint.
 */
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { AnyAuthMethod } from 'ssh2';
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

export async function planAuth(target: SshTarget): Promise<AuthPlan> {
  const plan: AuthPlan = { methods: [], tried: [], skipped: [], encrypted: [], agentFailure: undefined };
  const username = target.user;
  if (target.agentSocket) {
    plan.methods.push({ type: 'agent', username, agent: target.agentSocket });
    plan.tried.push('agent');
  }
  for (const file of target.identityFiles) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      plan.skipped.push(`${file}: cannot read (${code})`);
      continue;
    }
    const parsed = ssh2.utils.parseKey(data);
    if (parsed instanceof Error) {
      if (/encrypted|passphrase/i.test(parsed.message)) {
        plan.encrypted.push(file);
        plan.skipped.push(`${file}: encrypted (load it into ssh-agent)`);
      } else {
        plan.skipped.push(`${file}: not a usable private key (${parsed.message})`);
      }
      continue;
    }
    if (!parsed.isPrivateKey()) {
      plan.skipped.push(`${file}: not a private key`);
      continue;
    }
    plan.methods.push({ type: 'publickey', username, key: parsed });
    plan.tried.push(file);
  }
  return plan;
}
