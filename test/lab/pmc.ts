/**
 * Running pmc itself in lab tests: the built CLI (`node bin/pmc`, so run `npm run build`
 * first; `npm test` does), inside the lab's namespace, against the lab's pmc.yaml or a
 * variant of it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { inLabNamespace, pmcConfigPath, repoRoot, run, waitFor, type ExecResult } from "./lab.ts";

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

/**
 * The lab's pmc.yaml for one test file, with DRBD minors and ports of its own (so no two files
 * ever pick the same resource numbers) and any top-level settings in `extra`.
 */
export function labConfigFor(name: string, drbd: { minors: [number, number]; ports: [number, number] }, extra = ""): string {
  return labConfigVariant(name, (yaml) => {
    const numbered = yaml.replace(/^  drbd:\n/m,
      `  drbd:\n    minors: { first: ${drbd.minors[0]}, last: ${drbd.minors[1]} }\n    ports: { first: ${drbd.ports[0]}, last: ${drbd.ports[1]} }\n`);
    if (numbered === yaml) throw new Error(`the lab's pmc.yaml has no storage.drbd section: ${pmcConfigPath}`);
    return numbered + extra;
  });
}

export interface PmcChild {
  child: ChildProcess;
  /** Resolves when pmc has exited. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** Resolves once pmc's stderr matches (a step begun, a progress line): a point to signal it at. */
  until: (pattern: RegExp, timeoutMs?: number) => Promise<unknown>;
  stderr: () => string;
}

/** pmc as a child process the test can signal (SIGINT as Ctrl-C, SIGKILL as a dead manager). */
export function pmcChild(args: string[], opts: Pick<PmcOptions, "config"> = {}): PmcChild {
  const argv = inLabNamespace([process.execPath, path.join(repoRoot, "bin", "pmc"), ...args]);
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, PMC_CONFIG: opts.config ?? pmcConfigPath, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stdout.on("data", (b: Buffer) => { stdout += b.toString(); });
  child.stderr.on("data", (b: Buffer) => { stderr += b.toString(); });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const until = (pattern: RegExp, timeoutMs = 600_000) =>
    waitFor(`pmc stderr to match ${pattern}`, async () => pattern.test(stderr) || undefined, timeoutMs, 200);
  return { child, exit, until, stderr: () => stderr };
}
