/**
 * Rewrites pmc.yaml on the manager for `pm add` and `pm rm`: the file is read afresh (it may
 * have been edited since this run loaded it), edited (nodes-yaml.ts), checked to still be a
 * valid configuration, and replaced at once (a crash leaves the old file or the new, never half).
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { parseConfig } from '../../config/load.js';

export function editConfigFile(file: string, edit: (text: string) => string): void {
  const text = edit(readFileSync(file, 'utf8'));
  parseConfig(text, file);
  const temp = `${file}.pmc-${process.pid}`;
  writeFileSync(temp, text, { mode: statSync(file).mode & 0o7777, flag: 'wx' });
  renameSync(temp, file);
}
