/** Temp directories for tests, each removed when its test ends, passed or failed. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export function tempDirFor(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pmc-${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
