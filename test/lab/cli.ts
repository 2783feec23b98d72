/**
 * `npm run lab -- <verb>`: the pmc lab's command line. See test/lab/README.md.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  DEFAULT_NODE_COUNT,
  NAMESPACE,
  SHARED_DIR,
  cacheDir,
  cutLink,
  ensureHostPackages,
  ensureImage,
  killNode,
  labDir,
  labDown,
  labNodes,
  labStatus,
  labTestDir,
  labUp,
  namespaceExists,
  pmcConfigPath,
  repoRoot,
  restoreLink,
  serialLogPath,
  shq,
  sshConfigPath,
  startNode,
  waitForNode,
} from "./lab.ts";

const USAGE = `usage: npm run lab -- <verb> [args]

  up [--nodes N]     boot the lab (default ${DEFAULT_NODE_COUNT} nodes pm-1..pm-N); no-op if it is up
  down               stop every node, delete the namespace and .lab/run
  status             what runs
  exec CMD [ARG...]  run CMD in the lab's network namespace, with PMC_CONFIG=.lab/pmc.yaml
  ssh NODE [CMD...]  ssh to a node as root (inside the namespace)
  test [--full] [FILE...]  run the lab test suite (test/lab/*.test.ts; --full adds *.full.test.ts
                     and the cases marked fullSetOnly), bringing the lab up first
  demo               bring the lab up and walk through pmc on it
  image              build the node image (cached in ${cacheDir})
  kill NODE          stop a node hard (SIGKILL its QEMU)
  start NODE         start a stopped node and wait until it is ready
  cut NODE           cut a node's network link
  restore NODE       restore a node's network link
  console NODE       print the tail of a node's serial console log
`;

const log = (line: string) => console.log(`[lab] ${line}`);

function labEnv(config = pmcConfigPath): NodeJS.ProcessEnv {
  return { ...process.env, PMC_CONFIG: config };
}

/** Run argv inside the namespace with inherited stdio; returns its exit code. */
function nsRun(argv: string[], lockFile?: string, config?: string, quiet = false): number {
  const cmd = ["ip", "netns", "exec", NAMESPACE, ...argv];
  if (lockFile) cmd.unshift("flock", "-w", "7200", lockFile);
  const r = spawnSync(cmd[0]!, cmd.slice(1), {
    stdio: quiet ? "ignore" : "inherit",
    cwd: repoRoot,
    env: labEnv(config),
  });
  if (r.error) throw r.error;
  return r.status ?? 128;
}

function requireUp(): void {
  if (!namespaceExists()) {
    console.error("the lab is not up: run `npm run lab:up` first");
    process.exit(1);
  }
}

function secs(s: number): string {
  return `${s.toFixed(0)} s`;
}

async function up(args: string[]): Promise<void> {
  let nodes: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--nodes" || a === "-n") nodes = Number(args[++i]);
    else if (a.startsWith("--nodes=")) nodes = Number(a.slice("--nodes=".length));
    else throw new Error(`lab up: unknown argument ${a}`);
  }
  const t0 = Date.now();
  const r = await labUp({ nodes, log });
  if (r.alreadyUp) {
    log(`lab already up: ${r.nodes.map((n) => `${n.name} (${n.address})`).join(", ")}`);
    return;
  }
  log(
    `lab up: ${r.nodes.map((n) => n.name).join(", ")}; image build: ${r.imageBuildSeconds ? secs(r.imageBuildSeconds) : "cached"}; ` +
      `boot: ${secs(r.bootSeconds)}; total: ${secs((Date.now() - t0) / 1000)}`,
  );
  log(`try: npm run lab:exec -- ssh -F .lab/ssh/config pm-1 cat /proc/drbd`);
}

async function status(): Promise<void> {
  const s = await labStatus();
  console.log(`namespace ${NAMESPACE}: ${s.namespace ? "present" : "absent"}`);
  console.log(`image: ${s.imageDir} (${s.imageCached ? "cached" : "not built"})`);
  if (s.nodes.length === 0) console.log("nodes: none (lab is down)");
  for (const n of s.nodes) {
    console.log(
      `${n.name}  ${n.address}  ${n.pid ? `qemu pid ${n.pid}` : "not running"}  ${n.ready ? "ready" : n.pid ? "not answering" : ""}`,
    );
  }
  console.log(s.up ? "lab is up" : "lab is not (fully) up");
}

/**
 * The lab test files: every test/lab/*.test.ts, or with --full also the long scenarios
 * (*.full.test.ts, which `npm test` leaves out to keep CI within its time). Ordered by name
 * (lab-* first, then pmc-*, zz-lab-faults last since it kills and restarts a node).
 */
function testFiles(args: string[]): string[] {
  const named = args.filter((a) => a !== "--full");
  if (named.length) return named;
  const full = args.includes("--full");
  return fs
    .readdirSync(labTestDir)
    .filter((f) => f.endsWith(".test.ts") && (full || !f.endsWith(".full.test.ts")))
    .sort()
    .map((f) => path.relative(repoRoot, path.join(labTestDir, f)));
}

async function test(args: string[]): Promise<void> {
  const t0 = Date.now();
  const r = await labUp({ log });
  const tUp = (Date.now() - t0) / 1000;
  log(
    `lab ${r.alreadyUp ? "was already up" : "up"} (image build: ${r.imageBuildSeconds ? secs(r.imageBuildSeconds) : "cached"}, ` +
      `boot: ${r.alreadyUp ? "-" : secs(r.bootSeconds)})`,
  );
  const files = testFiles(args);
  process.env.PMC_LAB_FULL = args.includes("--full") ? "1" : "0";
  log(`running ${files.length} test files inside namespace ${NAMESPACE}: ${files.join(" ")}`);
  // Two suites on one lab would trip over each other (tests kill nodes): one file at a time,
  // each under the lab's test lock.
  fs.mkdirSync(labDir, { recursive: true });
  const lock = path.join(labDir, "test.lock");
  log(`(one suite at a time: waits while another test:lab run holds ${path.relative(repoRoot, lock)})`);
  const durations: string[] = [];
  let code = 0;
  const t1 = Date.now();
  for (const file of files) {
    const tf = Date.now();
    const rc = nsRun(["node", "--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", file], lock);
    const line = `${path.basename(file)}: ${rc === 0 ? "passed" : `FAILED (exit ${rc})`} in ${secs((Date.now() - tf) / 1000)}`;
    log(line);
    durations.push(line);
    if (rc !== 0) code = rc;
  }
  const tSuite = (Date.now() - t1) / 1000;
  log(`lab files:\n${durations.map((d) => `  ${d}`).join("\n")}`);
  log(
    `timings: image build ${r.imageBuildSeconds ? secs(r.imageBuildSeconds) : "cached"}, boot ${r.alreadyUp ? "(already up)" : secs(r.bootSeconds)}, ` +
      `lab up total ${secs(tUp)}, suite ${secs(tSuite)}`,
  );
  process.exit(code);
}

/**
 * The demo's pmc.yaml: the lab's, with DRBD minors and ports no lab test uses, and software
 * emulation (the lab's nodes are themselves emulated: KVM is offered there but hangs guests).
 */
function demoConfig(): string {
  const file = path.join(labDir, "demo.yaml");
  const lab = fs.readFileSync(pmcConfigPath, "utf8");
  const numbered = lab.replace(/^  drbd:\n/m, "  drbd:\n    minors: { first: 850, last: 899 }\n    ports: { first: 9850, last: 9899 }\n");
  // The lab's NFS file system as shared storage, for `vm add --shared` (the tests' pmc.yaml leaves it out).
  fs.writeFileSync(file, numbered.replace(/^storage:\n/m, `storage:\n  shared:\n    directory: ${SHARED_DIR}\n`) + "domainType: qemu\n");
  return file;
}

async function demo(): Promise<void> {
  await labUp({ log });
  const testLock = path.join(labDir, "test.lock");
  const config = demoConfig();
  // Under the lab's test lock: a demo VM must not appear in the middle of a lab test.
  const show = (argv: string[], label?: string) => {
    console.log(`\n$ ${label ?? argv.map(shq).join(" ")}`);
    const code = nsRun(argv, testLock, config);
    console.log(`(exit code ${code})`);
    return code;
  };
  console.log(`\nThe lab runs ${labNodes().map((n) => n.name).join(", ")}; pmc's config is ${path.relative(repoRoot, config)}:`);
  console.log(fs.readFileSync(config, "utf8"));
  console.log("$ npm run build");
  const b = spawnSync("npm", ["run", "--silent", "build"], { stdio: "inherit", cwd: repoRoot });
  console.log(`(exit code ${b.status})`);
  const pmc = (args: string[]) => show(["node", "bin/pmc", ...args], `pmc ${args.join(" ")}`);
  show(["ssh", "-F", path.relative(repoRoot, sshConfigPath), "pm-1", "cat /proc/drbd; vgs vg-pmc; virsh list --all"]);
  pmc(["--help"]);
  pmc(["pm", "ls"]);
  // A VM's whole life, on the lab: mirrored on pm-1 and pm-2, moved while it runs, backed up,
  // restored into a copy, removed. Its disk is blank, so it sits in the firmware: enough to
  // show every command (the lab tests run a guest that writes a counter, to prove no write is lost).
  for (const vm of ["demo-copy", "demo-a"]) nsRun(["node", "bin/pmc", "vm", "rm", "-f", vm], testLock, config, true); // left by an interrupted demo
  pmc(["vm", "add", "-p", "pm-1", "-p", "pm-2", "-s", "64M", "-m", "64M", "demo-a"]);
  pmc(["vm", "ls"]);
  pmc(["vm", "info", "demo-a"]);
  pmc(["vm", "mv", "demo-a"]);
  pmc(["vm", "ls"]);
  pmc(["vm", "backup", "-b", "demo-a"]);
  pmc(["vm", "backup", "demo-a"]);
  pmc(["backup", "ls", "demo-a"]);
  pmc(["backup", "verify", "demo-a"]);
  pmc(["vm", "restore", "demo-a", "--at", "latest", "--to", "demo-copy"]);
  pmc(["vm", "ls"]);
  // A failover needs its node to be down: refused while pm-2 answers, nothing changes.
  pmc(["vm", "failover", "demo-a"]);
  pmc(["vm", "rm", "-f", "demo-copy"]);
  pmc(["vm", "rm", "-f", "demo-a"]);
  pmc(["backup", "prune", "demo-a", "--keep-full", "1", "--keep-incremental", "0"]);
  // A VM whose disk is a file on the lab's shared NFS directory (storage.shared). pm init --fix
  // marks that file system once (.pmc-shared-id) if no node sees a marker yet; the add is a dry run.
  pmc(["pm", "init", "--fix", "pm-1"]);
  pmc(["vm", "add", "--shared", "--dry-run", "-s", "64M", "-m", "64M", "demo-shared"]);
  pmc(["help", "vm", "mv"]);
  // Checks every VM running on pm-1 and prints each migration's plan (or why it is refused); changes nothing.
  pmc(["vm", "mv", "--dry-run", "--keep-going", "-p", "pm-1"]);
  // Before switching pm-1 off: its VMs to their peers, its standby copies to other nodes (or why not); changes nothing.
  pmc(["help", "pm", "evacuate"]);
  pmc(["pm", "evacuate", "--dry-run", "--secondaries", "pm-1"]);
  // How evenly the running VMs load the nodes, and which migrations would spread them (or that the cluster is balanced); changes nothing.
  pmc(["help", "cluster", "rebalance"]);
  pmc(["cluster", "rebalance", "--dry-run"]);
  // With standby copies moved first to emptier nodes, then the migrations on the new pairs; changes nothing.
  pmc(["cluster", "rebalance", "--dry-run", "--secondaries"]);
  pmc(["backup", "ls"]);
  pmc(["help", "vm", "backup"]);
  pmc(["help", "vm", "restore"]);
  pmc(["log", "--since=-1h"]);
  // When a node fails (dry runs and help: nothing changes on the lab).
  pmc(["help", "vm", "failover"]);
  pmc(["help", "pm", "rejoin"]);
  pmc(["help", "vm", "peer-recreate"]);
  pmc(["pm", "failover", "--dry-run", "pm-1"]);
  pmc(["pm", "rejoin", "--dry-run", "pm-1"]);
  // What an unattended heal (systemd timer) would do now: on a healthy lab, that it is healthy.
  pmc(["help", "cluster", "heal"]);
  pmc(["cluster", "heal", "--dry-run"]);
  // Nodes come and go: discover lists machines that could join (read-only; the lab's nodes are all in its
  // pmc.yaml, so only other hosts on their network could show), adding one confirms its host key first;
  // removing one is refused while it holds a VM's copy.
  pmc(["pm", "discover"]);
  pmc(["help", "pm", "add"]);
  pmc(["pm", "rm", "--dry-run", "pm-3"]);
  console.log("\nThe lab stays up; `npm run lab:down` stops it.");
}

async function main(): Promise<void> {
  const [verb, ...args] = process.argv.slice(2);
  switch (verb) {
    case "up":
      return up(args);
    case "down":
      await labDown(log);
      log("lab down");
      return;
    case "status":
      return status();
    case "exec": {
      requireUp();
      if (!args.length) throw new Error("lab exec: no command");
      process.exit(nsRun(args));
    }
    // eslint-disable-next-line no-fallthrough
    case "ssh": {
      requireUp();
      const [node, ...cmd] = args;
      if (!node) throw new Error("lab ssh: which node?");
      process.exit(nsRun(["ssh", "-F", sshConfigPath, ...(cmd.length ? [] : ["-t", "-o", "BatchMode=no"]), node, ...cmd]));
    }
    // eslint-disable-next-line no-fallthrough
    case "test":
      return test(args);
    case "demo":
      return demo();
    case "image": {
      ensureHostPackages(log);
      const r = await ensureImage(log);
      log(`image ${r.dir} ${r.built ? `built in ${secs(r.seconds)}` : "(cached)"}`);
      return;
    }
    case "kill":
      requireUp();
      await killNode(args[0] ?? "");
      log(`${args[0]} killed`);
      return;
    case "start": {
      requireUp();
      const t0 = Date.now();
      await startNode(args[0] ?? "");
      await waitForNode(args[0] ?? "");
      log(`${args[0]} ready after ${secs((Date.now() - t0) / 1000)}`);
      return;
    }
    case "cut":
      requireUp();
      await cutLink(args[0] ?? "");
      log(`${args[0]}'s link cut`);
      return;
    case "restore":
      requireUp();
      await restoreLink(args[0] ?? "");
      log(`${args[0]}'s link restored`);
      return;
    case "console": {
      const f = serialLogPath(args[0] ?? "");
      process.stdout.write(fs.readFileSync(f, "utf8").split("\n").slice(-Number(args[1] ?? 60)).join("\n") + "\n");
      return;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`unknown verb ${verb}\n${USAGE}`);
      process.exit(2);
  }
}

main().catch((e: unknown) => {
  console.error(`[lab] error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
