import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The install's own folder: the nearest one above this module holding package.json. Searched,
 * not counted: this module lies two levels down in src/ (tsx) and in tsc's dist/, but one
 * level down in the bundle bin/pmc runs (dist/pmc.js or dist/chunks/).
 */
export const INSTALL_DIR = findInstallDir(dirname(fileURLToPath(import.meta.url)));

function findInstallDir(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`pmc: no package.json above ${start}`);
  }
}

/** pmc's version, from its package.json. */
export function pmcVersion(): string {
  const pkg = JSON.parse(readFileSync(join(INSTALL_DIR, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
