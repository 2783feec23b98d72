/**
 * Running pmc itself in lab tests: the built CLI (`node bin/pmc`, so run `npm run build`
 * first; `npm test` does), inside the lab's namespace, against the lab's pmc.yaml or a
 * variant of it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pmcConfigPath, repoRoot, run, type ExecResult } from "./lab.ts";

export interface PmcOptions {
  /** pmc.yaml to use (default: the lab's). */
  config?: string;
  timeoutMs?: number;
  input?: string;
}

export function pmc(args: string[], opts: PmcOptions = {}): Promise<ExecResult> {
  return run([process.execPath, path.join(repoRoot, "bin", "pmc"), ...args], {
    env: { ...process.env, PMC_CONFIG: opts.config ?? pmcConfigPath, NO_COLOR: "1" },
    timeoutMs: opts.timeoutMs ?? 600000,
    ...(opts.input === undefined ? {} : { input: opts.input }),
  });
}

/** pmc with --json; throws with pmc's stderr if the output is not JSON. */
export async function pmcJson<T>(args: string[], opts: PmcOptions = {}): Promise<{ code: number; data: T; stderr: string }> {
  const r = await pmc([...args, "--json"], opts);
  try {
    return { code: r.exitCode, data: JSON.parse(r.stdout) as T, stderr: r.stderr };
  } catch {
    throw new Error(`pmc ${args.join(" ")} printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
}

/**
 * A copy of the lab's pmc.yaml with extra top-level YAML appended (e.g. a storage section), in
 * a temp dir removed when the test process exits, whatever its tests did.
 */
export function labConfigVariant(name: string, transform: (yaml: string) => string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pmc-${name}-`));
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "pmc.yaml");
  fs.writeFileSync(file, transform(fs.readFileSync(pmcConfigPath, "utf8")));
  return file;
}
