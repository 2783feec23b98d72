/**
 * Finding pmc.yaml, apart from load.ts and the YAML parser and schema (zod) it imports: a
 * missing pmc.yaml, the usual first error, is reported without loading them.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { PmcError } from '../util/errors.js';
import { INSTALL_DIR } from '../util/install.js';

/** Where pmc looks for its configuration, in order. */
export function configCandidates(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit !== undefined) return [resolve(explicit)];
  if (env.PMC_CONFIG) return [resolve(env.PMC_CONFIG)];
  return [
    resolve('pmc.yaml'),
    join(env.HOME ?? homedir(), '.config', 'pmc', 'pmc.yaml'),
    '/etc/pmc/pmc.yaml',
  ];
}

export function findConfig(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = configCandidates(explicit, env);
  const found = candidates.find((f) => existsSync(f));
  if (!found) {
    const source = explicit !== undefined ? '--config' : env.PMC_CONFIG ? '$PMC_CONFIG' : undefined;
    throw new PmcError('PMC_E_CONFIG_NOT_FOUND',
      source ? `config file ${candidates[0]} (from ${source}) does not exist` : `no pmc.yaml found (looked at ${candidates.join(', ')})`,
      `copy ${join(INSTALL_DIR, 'etc', 'pmc.yaml')} to one of those places and list your nodes in it`);
  }
  return found;
}
