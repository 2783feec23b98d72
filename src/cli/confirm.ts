import { createInterface } from 'node:readline/promises';
import { PmcError } from '../util/errors.js';

/**
 * Destructive commands ask the operator to type a name (the VM, the node), like the old tool
 * did. Without a terminal there is nobody to ask: the command refuses unless forced.
 */
export async function confirmByTyping(expected: string, what: string, forceFlag: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new PmcError('PMC_E_CONFIRM', `${what}: no terminal to confirm on`, `pass ${forceFlag} to confirm without typing`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${what}. Type "${expected}" to go on: `);
    if (answer.trim() !== expected) {
      throw new PmcError('PMC_E_CONFIRM', `not confirmed (typed ${JSON.stringify(answer.trim())}); nothing was changed`, `type exactly "${expected}", or pass ${forceFlag}`);
    }
  } finally {
    rl.close();
  }
}
