/**
 * The pmc lab: a real cluster of Debian 12 VMs (QEMU, software emulation) in a network
 * namespace of its own on this machine. This module is the library that tests use; the
 * verbs of `npm run lab -- ...` are in cli.ts.
 *
 * What a test needs, in short:
 *
 *   import { ensureLabUp, labExec, labExecOk, pmcConfigPath } from "./lab.ts";
 *   const nodes = await ensureLabUp();              // boots the lab if it is not up
 *   const r = await labExec("pm-1", "cat /proc/drbd"); // { exitCode, stdout, stderr }
 *
 * Everything that talks to the nodes must run inside the lab's network namespace. The
 * test runner of `npm run test:lab` already runs there; the functions here also work from
 * outside it (they then wrap their commands in `ip netns exec`).
 *
 * Addresses: the namespace's bridge holds 10.99.0.1/24; node pm-N has 10.99.0.(10+N).
 * The namespace has no route anywhere else.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

// ---------------------------------------------------------------------------------------
// Paths and constants

/** The checkout's root directory. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** `.lab/` in the checkout (gitignored): the lab's config, keys and runtime files. */
export const labDir = path.join(repoRoot, ".lab");
/** Runtime files: disk overlays, PV disks, seed disks, pid files, serial logs. */
export const runDir = path.join(labDir, "run");
/** The lab's client SSH files. */
export const sshDir = path.join(labDir, "ssh");
/** The pmc config describing the lab's nodes (`PMC_CONFIG` points here in lab:exec/test). */
export const pmcConfigPath = path.join(labDir, "pmc.yaml");
/** OpenSSH client config with one Host entry per node: `ssh -F sshConfigPath pm-1`. */
export const sshConfigPath = path.join(sshDir, "config");
/** The client's private key (root on every node accepts it). */
export const identityPath = path.join(sshDir, "id_ed25519");
/** Every node's real host key, by name and address. */
export const knownHostsPath = path.join(sshDir, "known_hosts");
/** The lab's test files. */
export const labTestDir = path.dirname(fileURLToPath(import.meta.url));
/** The image recipe; the cache key is a hash of every file in it. */
export const imageRecipeDir = path.join(labTestDir, "image");
/** Files put on every node's seed disk (node-init.sh). */
export const nodeFilesDir = path.join(labTestDir, "node");
/** The guest workload's recipe: its /init (init.sh) and the script that builds it on the host (build.sh). */
export const guestRecipeDir = path.join(labTestDir, "guest");
/** The lab's image store on the manager (imageStore in .lab/pmc.yaml). */
export const imageStoreDir = path.join(labDir, "images");
/** The guest workload as a bootable raw disk in the image store: `pmc vm add --image pmc-guest.img`. */
export const GUEST_IMAGE = "pmc-guest.img";
/** The guest's initramfs as built on the host (seeded to every node) and what it was built from. */
const guestDir = path.join(labDir, "guest");
const guestInitrdPath = path.join(guestDir, "initrd.img");
const guestInputsPath = path.join(guestDir, "inputs");

/** Name of the network namespace that holds the lab. */
export const NAMESPACE = "pmc-lab";
/** The host side of the lab network, inside the namespace. */
export const HOST_ADDRESS = "10.99.0.1";
export const PREFIX = 24;
export const VOLUME_GROUP = "vg-pmc";
export const BACKUP_DIR = "/pmc-vm-backup";
/** The lab's shared file system, mounted here on every node (the image's fstab: an automount). */
export const SHARED_DIR = "/var/lib/pmc-shared";
/** The directory on pm-1's root disk that pm-1 exports over NFS (node-init.sh). */
export const SHARED_EXPORT = "/srv/pmc-shared";
/** What every node mounts at SHARED_DIR. */
export const SHARED_SOURCE = `pm-1:${SHARED_EXPORT}`;
/**
 * Whether .lab/pmc.yaml names SHARED_DIR as pmc's shared storage (`storage.shared.directory`).
 * Off while pmc's config schema, strict, refuses that key.
 */
const CONFIG_SHARED_STORAGE = false;
export const DEFAULT_NODE_COUNT = 3;
export const MAX_NODE_COUNT = 20;
const BRIDGE = "labbr0";
const NODE_MEMORY_MIB = Number(process.env.PMC_LAB_NODE_MEMORY_MIB ?? 1792);
const NODE_CPUS = Number(process.env.PMC_LAB_NODE_CPUS ?? 2);
const PV_SIZE = process.env.PMC_LAB_PV_SIZE ?? "8G";

/**
 * For node:test's `skip` on scenarios only the full lab set runs (`lab test --full`, which
 * sets PMC_LAB_FULL=1): a second or third point of a case the default set proves once,
 * or a node's power loss that another default case already goes through. They keep
 * `npm test` within CI's hour; `npm run test:lab:full` runs them all.
 */
export const fullSetOnly: string | false = process.env.PMC_LAB_FULL === "1" ? false : "full set only (npm run test:lab:full)";

/** Image cache: `$PMC_LAB_CACHE` or `~/.cache/pmc-lab` (outside the checkout). */
export const cacheDir =
  process.env.PMC_LAB_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "pmc-lab");

/** Where the guest workload's kernel and initramfs are on every node. */
export const GUEST_KERNEL = "/var/lib/pmc-lab/guest/vmlinuz";
export const GUEST_INITRD = "/var/lib/pmc-lab/guest/initrd.img";
/**
 * The guest kernel's command line, booted from the node's files (guestDomainXml) or from its own
 * disk (pmc-guest.img). No ACPI: the kernel reaches /init in about a minute instead of several.
 */
export const GUEST_CMDLINE = "console=ttyS0 panic=-1 acpi=off pci=nomsi mitigations=off tsc=reliable no_timer_check printk.time=1";

// ---------------------------------------------------------------------------------------
// Nodes

export interface LabNode {
  /** 1-based. */
  index: number;
  /** `pm-N` */
  name: string;
  /** `10.99.0.(10+N)` */
  address: string;
  /** MAC of the node's eth0 (and br0). */
  mac: string;
  /** The node's tap device in the namespace. */
  tap: string;
}

/** The fixed description of node number `index` (1-based). */
export function nodeSpec(index: number): LabNode {
  if (!Number.isInteger(index) || index < 1 || index > MAX_NODE_COUNT) {
    throw new Error(`node index ${index} out of range 1..${MAX_NODE_COUNT}`);
  }
  return {
    index,
    name: `pm-${index}`,
    address: `10.99.0.${10 + index}`,
    mac: `02:99:00:00:00:${(10 + index).toString(16).padStart(2, "0")}`,
    tap: `labtap${index}`,
  };
}

interface LabState {
  nodeCount: number;
  imageDir: string;
  createdAt: string;
}
const stateFile = path.join(runDir, "state.json");

function readState(): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile, "utf8")) as LabState;
  } catch {
    return undefined;
  }
}

/** The nodes of the lab as it was last brought up (throws if it is not up). */
export function labNodes(): LabNode[] {
  const st = readState();
  if (!st) throw new Error("the lab is not up (run `npm run lab:up`)");
  return Array.from({ length: st.nodeCount }, (_, i) => nodeSpec(i + 1));
}

/** The node called `name`, e.g. "pm-2". */
export function labNode(name: string): LabNode {
  const n = labNodes().find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Running commands

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin (stdin is closed either way). */
  input?: string | Buffer;
  /** Kill the command after this long (exit code 124). Default: none. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Quote one word for a POSIX shell. */
export function shq(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Run a local command (argv, no shell) and collect its output. Never throws for a non-zero exit. */
export function run(argv: string[], opts: RunOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? repoRoot,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, opts.timeoutMs);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => {});
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      let stderr = Buffer.concat(err).toString("utf8");
      let exitCode = code ?? 128 + (signal ? os.constants.signals[signal] ?? 0 : 0);
      if (timedOut) {
        exitCode = 124;
        stderr += `\n[lab] timed out after ${opts.timeoutMs} ms: ${argv.join(" ")}\n`;
      }
      resolve({ exitCode, stdout: Buffer.concat(out).toString("utf8"), stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Like run(), but throws LabCommandError on a non-zero exit; returns stdout. */
export async function runOk(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.exitCode !== 0) throw new LabCommandError(argv.join(" "), r);
  return r.stdout;
}

export class LabCommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    super(
      `command failed (exit ${result.exitCode}): ${command}\n` +
        `stdout: ${result.stdout.trim().slice(-2000)}\nstderr: ${result.stderr.trim().slice(-2000)}`,
    );
  }
}

function runSync(argv: string[]): ExecResult {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", cwd: repoRoot });
  if (r.error) throw r.error;
  return { exitCode: r.status ?? 128, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function runSyncOk(argv: string[]): string {
  const r = runSync(argv);
  if (r.exitCode !== 0) throw new LabCommandError(argv.join(" "), r);
  return r.stdout;
}

/** Does the lab's network namespace exist? */
export function namespaceExists(): boolean {
  return fs.existsSync(`/run/netns/${NAMESPACE}`);
}

/** Is this process inside the lab's network namespace? */
export function inNamespace(): boolean {
  if (!namespaceExists()) return false;
  try {
    const a = fs.statSync("/proc/self/ns/net");
    const b = fs.statSync(`/run/netns/${NAMESPACE}`);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** argv, wrapped in `ip netns exec <lab namespace>` unless we are already inside it. */
export function inLabNamespace(argv: string[]): string[] {
  return inNamespace() ? argv : ["ip", "netns", "exec", NAMESPACE, ...argv];
}

export interface LabExecOptions extends RunOptions {
  /** Extra `-o` options for ssh, e.g. ["ConnectTimeout=3"]. */
  sshOptions?: string[];
}

/**
 * Run a command on a node as root, over the OpenSSH client with `.lab/ssh/config`
 * (host keys verified against `.lab/ssh/known_hosts`). A string is run by the node's
 * shell as is; an array is quoted word by word. Never throws for a non-zero exit;
 * exit code 255 means ssh itself failed.
 */
export function labExec(
  node: string,
  command: string | string[],
  opts: LabExecOptions = {},
): Promise<ExecResult> {
  const cmd = typeof command === "string" ? command : command.map(shq).join(" ");
  const argv = ["ssh", "-F", sshConfigPath];
  for (const o of opts.sshOptions ?? []) argv.push("-o", o);
  argv.push(node, "--", cmd);
  return run(inLabNamespace(argv), opts);
}

/** labExec(), but throws LabCommandError on a non-zero exit; returns stdout. */
export async function labExecOk(
  node: string,
  command: string | string[],
  opts: LabExecOptions = {},
): Promise<string> {
  const r = await labExec(node, command, opts);
  if (r.exitCode !== 0) {
    throw new LabCommandError(`${node}: ${typeof command === "string" ? command : command.join(" ")}`, r);
  }
  return r.stdout;
}

/** Write a file on a node (via ssh and `cat`). */
export async function writeNodeFile(node: string, file: string, content: string, mode = "644"): Promise<void> {
  await labExecOk(node, `umask 022 && mkdir -p ${shq(path.posix.dirname(file))} && cat > ${shq(file)} && chmod ${shq(mode)} ${shq(file)}`, {
    input: content,
  });
}

/** Poll `check` until it returns a value other than undefined/false, or throw after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  intervalMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    }
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// Host packages

/**
 * Debian packages the lab needs on this machine: QEMU, debootstrap for the image, ip, the
 * OpenSSH client (and server, for the SSH tests), mke2fs and debugfs, flock/nsenter; for the
 * guest workload (test/lab/guest/build.sh) modprobe, cpio, sfdisk, mtools and syslinux. The same
 * list as .ci/run's apt-get line.
 */
export const HOST_PACKAGES = [
  "qemu-system-x86", "qemu-utils", "debootstrap", "iproute2", "openssh-client", "openssh-server",
  "e2fsprogs", "util-linux", "ca-certificates",
  "kmod", "cpio", "fdisk", "mtools", "syslinux", "syslinux-common",
] as const;

/** HOST_PACKAGES that dpkg does not list as installed (all of them when dpkg is missing). */
export function missingHostPackages(): string[] {
  const r = spawnSync("dpkg-query", ["-W", "-f", "${Package} ${db:Status-Status}\n", ...HOST_PACKAGES], { encoding: "utf8" });
  // dpkg-query exits 1 when it does not know a package; the ones it knows are still listed.
  const installed = new Set((r.stdout ?? "").split("\n").filter((l) => l.endsWith(" installed")).map((l) => l.split(" ")[0]));
  return HOST_PACKAGES.filter((p) => !installed.has(p));
}

/**
 * Installs the missing host packages with apt (`apt-get update` first), saying so; refuses
 * with one line when that is not possible (not root, no apt).
 */
export function ensureHostPackages(log: (line: string) => void = () => {}): void {
  const missing = missingHostPackages();
  if (missing.length === 0) return;
  const line = `apt-get install ${missing.join(" ")}`;
  if (process.getuid?.() !== 0) throw new Error(`the lab needs root to install its host packages; as root run: npm run lab:up (or ${line})`);
  if (spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0) {
    throw new Error(`the lab needs these Debian packages and this machine has no apt-get: ${missing.join(" ")}`);
  }
  log(`installing the lab's host packages with apt: ${missing.join(" ")} (apt-get update first)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const argv of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", ...missing]]) {
    const r = spawnSync("apt-get", argv, { stdio: ["ignore", "inherit", "inherit"], env });
    if (r.status !== 0) throw new Error(`apt-get ${argv[0]} failed (exit ${r.status ?? r.signal}); the lab needs: ${line}`);
  }
  const still = missingHostPackages();
  if (still.length > 0) throw new Error(`apt-get did not install: ${still.join(" ")}`);
}

// ---------------------------------------------------------------------------------------
// Image

/** sha256 of every file in a recipe directory (names and contents) and of `extra`, in hex. */
function recipeHash(dir: string, extra = ""): string {
  const h = createHash("sha256");
  for (const f of fs.readdirSync(dir).sort()) {
    h.update(f + "\0");
    h.update(fs.readFileSync(path.join(dir, f)));
    h.update("\0");
  }
  h.update(extra);
  return h.digest("hex");
}

/** Hash of the image recipe (every file in test/lab/image/): the cache key. */
export function imageHash(): string {
  return recipeHash(imageRecipeDir).slice(0, 16);
}

/** The image directory for the current recipe (may not exist yet). */
export function imageDir(): string {
  return path.join(cacheDir, imageHash());
}

/** Is the node image for the current recipe in the cache? */
export function imageReady(): boolean {
  return fs.existsSync(path.join(imageDir(), "base.img"));
}

/**
 * Build the node image unless it is cached (debootstrap from the Debian mirror apt uses;
 * several minutes). Its log goes to `<cache>/<hash>.build.log`; `==>` step lines are
 * passed to `log`. Returns the image directory and whether it was built now.
 */
export async function ensureImage(log: (line: string) => void = () => {}): Promise<{ dir: string; built: boolean; seconds: number }> {
  const dir = imageDir();
  if (imageReady()) return { dir, built: false, seconds: 0 };
  fs.mkdirSync(cacheDir, { recursive: true });
  const logFile = `${dir}.build.log`;
  log(`building the node image into ${dir} (log: ${logFile})`);
  const t0 = Date.now();
  const script = `test -f ${shq(dir)}/base.img || bash ${shq(path.join(imageRecipeDir, "build.sh"))} ${shq(dir)}`;
  const code = await new Promise<number>((resolve, reject) => {
    const fd = fs.openSync(logFile, "w");
    const child = spawn("flock", ["-w", "5400", path.join(cacheDir, ".build.lock"), "bash", "-c", script], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: repoRoot,
      env: { ...process.env, LC_ALL: "C.UTF-8" },
    });
    let buf = "";
    const onData = (b: Buffer) => {
      fs.writeSync(fd, b);
      buf += b.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith("==>")) log(`  ${line} [${Math.round((Date.now() - t0) / 1000)}s]`);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (c) => {
      fs.closeSync(fd);
      resolve(c ?? 1);
    });
  });
  if (code !== 0 || !imageReady()) {
    const tail = fs.readFileSync(logFile, "utf8").split("\n").slice(-40).join("\n");
    throw new Error(`image build failed (exit ${code}); last lines of ${logFile}:\n${tail}`);
  }
  return { dir, built: true, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Build the guest workload from the node image in `nodeImage` unless it is built from the same
 * inputs already (that image, its kernel, test/lab/guest/, the command line): its initramfs for
 * the nodes' seed disks and GUEST_IMAGE in the image store. A few seconds; no mount.
 */
export function ensureGuest(nodeImage: string, log: (line: string) => void = () => {}): void {
  const base = path.join(nodeImage, "base.img");
  const inputs = recipeHash(guestRecipeDir, [nodeImage, fs.statSync(base).mtimeMs, fs.readFileSync(path.join(nodeImage, "kernel-version"), "utf8"), GUEST_CMDLINE].join("\0"));
  const image = path.join(imageStoreDir, GUEST_IMAGE);
  let built: string | undefined;
  try {
    built = fs.readFileSync(guestInputsPath, "utf8").trim();
  } catch {
    /* never built */
  }
  if (built === inputs && fs.existsSync(guestInitrdPath) && fs.existsSync(image)) return;
  log(`building the guest workload: ${path.relative(repoRoot, guestInitrdPath)} and ${path.relative(repoRoot, image)}`);
  runSyncOk(["bash", path.join(guestRecipeDir, "build.sh"), nodeImage, guestInitrdPath, image, GUEST_CMDLINE]);
  fs.writeFileSync(guestInputsPath, `${inputs}\n`);
}

// ---------------------------------------------------------------------------------------
// Keys, config files, namespace

function keyPair(file: string, comment: string): void {
  if (fs.existsSync(file) && fs.existsSync(`${file}.pub`)) return;
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.pub`, { force: true });
  runSyncOk(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
}

const keysDir = path.join(runDir, "keys");
const hostKeyFile = (n: LabNode) => path.join(keysDir, `${n.name}_ssh_host_ed25519_key`);
const nodeRootKey = path.join(keysDir, "node_root_id_ed25519");

function pubKey(file: string): string {
  return fs.readFileSync(`${file}.pub`, "utf8").trim();
}

function hostsFile(nodes: LabNode[]): string {
  return [
    "# pmc lab",
    "127.0.0.1 localhost",
    `${HOST_ADDRESS} lab-host`,
    ...nodes.map((n) => `${n.address} ${n.name}`),
    "",
  ].join("\n");
}

function knownHostsFile(nodes: LabNode[]): string {
  return nodes
    .map((n) => {
      const [type, key] = pubKey(hostKeyFile(n)).split(/\s+/);
      return `${n.name},${n.address} ${type} ${key}\n`;
    })
    .join("");
}

/** Generate keys (once) and write .lab/pmc.yaml, .lab/ssh/{config,known_hosts}, the namespace's hosts. */
function writeLabFiles(nodes: LabNode[]): void {
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  fs.mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  keyPair(identityPath, "pmc-lab-client");
  keyPair(nodeRootKey, "root@pmc-lab-nodes");
  for (const n of nodes) keyPair(hostKeyFile(n), `root@${n.name}`);

  fs.writeFileSync(knownHostsPath, knownHostsFile(nodes));
  const ssh = [
    "# Written by the pmc lab (test/lab/lab.ts). Use inside the lab's namespace:",
    "#   npm run lab:exec -- ssh -F .lab/ssh/config pm-1",
    ...nodes.flatMap((n) => [`Host ${n.name}`, `  HostName ${n.address}`]),
    "Host *",
    "  User root",
    `  IdentityFile ${identityPath}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${knownHostsPath}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "  BatchMode yes",
    "  ConnectTimeout 10",
    "  ServerAliveInterval 5",
    "  ServerAliveCountMax 3",
    "  LogLevel ERROR",
    "",
  ].join("\n");
  fs.writeFileSync(sshConfigPath, ssh);
  const yaml = [
    "nodes:",
    ...nodes.flatMap((n) => [`  - name: ${n.name}`, `    address: ${n.address}`]),
    "ssh:",
    "  user: root",
    `  identityFiles: [${identityPath}]`,
    `  knownHosts: ${knownHostsPath}`,
    "  connectTimeout: 10",
    "storage:",
    `  volumeGroup: ${VOLUME_GROUP}`,
    // Emulated nodes running emulated guests answer a ping late when busy; DRBD's 0.5 s
    // dropped connections in the middle of migrations.
    "  drbd:",
    "    pingTimeout: 3",
    ...(CONFIG_SHARED_STORAGE ? ["  shared:", `    directory: ${SHARED_DIR}`] : []),
    "backups:",
    `  directory: ${BACKUP_DIR}`,
    `imageStore: ${imageStoreDir}`,
    "",
  ].join("\n");
  fs.writeFileSync(pmcConfigPath, yaml);
  // `ip netns exec` bind-mounts these over /etc/hosts and /etc/resolv.conf: node names
  // resolve, and nothing asks a DNS server outside.
  fs.mkdirSync(`/etc/netns/${NAMESPACE}`, { recursive: true });
  fs.writeFileSync(`/etc/netns/${NAMESPACE}/hosts`, hostsFile(nodes));
  fs.writeFileSync(`/etc/netns/${NAMESPACE}/resolv.conf`, "# pmc lab: no DNS\n");
}

function ipn(...args: string[]): ExecResult {
  return runSync(["ip", "-n", NAMESPACE, ...args]);
}

/** Create the namespace, its bridge (10.99.0.1/24, no other route) and one tap per node. */
function ensureNamespace(nodes: LabNode[]): void {
  if (!namespaceExists()) runSyncOk(["ip", "netns", "add", NAMESPACE]);
  runSyncOk(["ip", "-n", NAMESPACE, "link", "set", "lo", "up"]);
  if (ipn("link", "show", BRIDGE).exitCode !== 0) {
    runSyncOk(["ip", "-n", NAMESPACE, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
  }
  const addrs = ipn("-br", "addr", "show", BRIDGE).stdout;
  if (!addrs.includes(`${HOST_ADDRESS}/${PREFIX}`)) {
    runSyncOk(["ip", "-n", NAMESPACE, "addr", "add", `${HOST_ADDRESS}/${PREFIX}`, "dev", BRIDGE]);
  }
  runSyncOk(["ip", "-n", NAMESPACE, "link", "set", BRIDGE, "up"]);
  for (const n of nodes) {
    if (ipn("link", "show", n.tap).exitCode !== 0) {
      runSyncOk(["ip", "-n", NAMESPACE, "tuntap", "add", "dev", n.tap, "mode", "tap"]);
    }
    runSyncOk(["ip", "-n", NAMESPACE, "link", "set", n.tap, "master", BRIDGE]);
    runSyncOk(["ip", "-n", NAMESPACE, "link", "set", n.tap, "up"]);
  }
}

/** (Re)build the node's seed disk (identity, keys, node-init.sh, the guest's initramfs: ensureGuest first); read at every boot. */
function ensureSeed(n: LabNode, nodes: LabNode[]): string {
  const img = path.join(runDir, `${n.name}-seed.img`);
  fs.rmSync(img, { force: true });
  const d = path.join(runDir, `${n.name}-seed`);
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d, { recursive: true });
  const w = (f: string, s: string, mode = 0o644) => fs.writeFileSync(path.join(d, f), s, { mode });
  w("hostname", `${n.name}\n`);
  w("address", `${n.address}\n`);
  w("prefix", `${PREFIX}\n`);
  w("volume_group", `${VOLUME_GROUP}\n`);
  w("hosts", hostsFile(nodes));
  w("ssh_host_ed25519_key", fs.readFileSync(hostKeyFile(n), "utf8"), 0o600);
  w("ssh_host_ed25519_key.pub", fs.readFileSync(`${hostKeyFile(n)}.pub`, "utf8"));
  w("root_id_ed25519", fs.readFileSync(nodeRootKey, "utf8"), 0o600);
  w("root_id_ed25519.pub", fs.readFileSync(`${nodeRootKey}.pub`, "utf8"));
  w("authorized_keys", `${pubKey(identityPath)}\n${pubKey(nodeRootKey)}\n`);
  w("known_hosts", knownHostsFile(nodes));
  for (const f of fs.readdirSync(nodeFilesDir)) fs.copyFileSync(path.join(nodeFilesDir, f), path.join(d, f));
  fs.copyFileSync(guestInitrdPath, path.join(d, "guest-initrd.img"));
  runSyncOk(["mke2fs", "-q", "-t", "ext4", "-L", "pmc-seed", "-E", "root_owner=0:0", "-d", d, img, "16M"]);
  fs.rmSync(d, { recursive: true, force: true });
  return img;
}

// ---------------------------------------------------------------------------------------
// Node processes

/** Where a node's QEMU pid is kept; killNode removes it, so its absence is what a lab fence command checks. */
export const nodePidFile = (name: string) => path.join(runDir, `${name}.pid`);
const pidFile = (n: LabNode) => nodePidFile(n.name);
/** The node's serial console log (kernel and systemd boot messages). */
export const serialLogPath = (name: string) => path.join(runDir, `${name}.serial.log`);
/** The node's QMP socket (QEMU's machine protocol). */
export const qmpSocketPath = (name: string) => path.join(runDir, `${name}.qmp`);

function procCmdline(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return undefined;
  }
}

/** The pid of the node's QEMU if it runs, else undefined. */
export function nodePid(name: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(nodePidFile(name), "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmd = procCmdline(pid);
  if (!cmd || !cmd.includes(`pmc-lab-${name},`)) return undefined;
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    if (/^\d+ \(.*\) Z/.test(st)) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

/** QEMU processes that belong to this checkout's lab (found by their runtime paths). */
function labQemuPids(): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = procCmdline(Number(e));
    if (cmd && /qemu-system/.test(cmd.split(" ")[0] ?? "") && cmd.includes(`${runDir}/`)) pids.push(Number(e));
  }
  return pids;
}

function qemuArgv(n: LabNode, image: string): string[] {
  const r = (f: string) => path.join(runDir, f);
  return [
    "qemu-system-x86_64",
    "-name", `pmc-lab-${n.name},process=pmc-lab-${n.name}`,
    "-accel", "tcg,thread=multi,tb-size=256",
    "-smp", String(NODE_CPUS),
    "-m", String(NODE_MEMORY_MIB),
    "-nodefaults", "-display", "none", "-daemonize",
    "-pidfile", pidFile(n),
    "-kernel", path.join(image, "vmlinuz"),
    "-initrd", path.join(image, "initrd.img"),
    // No KVM in the nodes (see node-init.sh), refused by the kernel itself: udev may load kvm_amd
    // before node-init.sh blacklists it, and then it stays (pm-2 once offered "kvm" domains that
    // pm-3 could not define, and a node running a nested-KVM guest spun both vCPUs in its kernel).
    "-append", "console=ttyS0 root=/dev/vda rw net.ifnames=0 systemd.show_status=1 panic=10 module_blacklist=kvm,kvm_amd,kvm_intel",
    "-drive", `file=${r(`${n.name}.qcow2`)},if=none,id=root,format=qcow2,cache=unsafe,discard=unmap`,
    "-device", "virtio-blk-pci,drive=root,serial=pmc-root",
    "-drive", `file=${r(`${n.name}-pv.img`)},if=none,id=pv,format=raw,cache=unsafe,discard=unmap`,
    "-device", "virtio-blk-pci,drive=pv,serial=pmc-pv",
    "-drive", `file=${r(`${n.name}-seed.img`)},if=none,id=seed,format=raw,readonly=on`,
    "-device", "virtio-blk-pci,drive=seed,serial=pmc-seed",
    "-netdev", `tap,id=net0,ifname=${n.tap},script=no,downscript=no`,
    "-device", `virtio-net-pci,netdev=net0,mac=${n.mac}`,
    "-device", "virtio-rng-pci",
    "-serial", `file:${serialLogPath(n.name)}`,
    "-qmp", `unix:${qmpSocketPath(n.name)},server=on,wait=off`,
  ];
}

/**
 * Start a node's QEMU (after killNode, or as part of lab:up) without waiting for it to
 * boot; its disks are kept, so it boots like a server after a power cut. No-op if it runs.
 */
export async function startNode(name: string): Promise<void> {
  const nodes = labNodes();
  const n = nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  if (nodePid(name)) return;
  const st = readState()!;
  ensureNamespace(nodes);
  const overlay = path.join(runDir, `${n.name}.qcow2`);
  if (!fs.existsSync(overlay)) {
    runSyncOk(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", path.join(st.imageDir, "base.img"), overlay]);
  }
  const pv = path.join(runDir, `${n.name}-pv.img`);
  if (!fs.existsSync(pv)) runSyncOk(["truncate", "-s", PV_SIZE, pv]);
  ensureGuest(st.imageDir);
  ensureSeed(n, nodes);
  fs.rmSync(pidFile(n), { force: true });
  fs.appendFileSync(serialLogPath(n.name), `\n[lab] ${new Date().toISOString()} starting ${n.name}\n`);
  await runOk(["ip", "netns", "exec", NAMESPACE, ...qemuArgv(n, st.imageDir)]);
}

/** Stop a node hard: SIGKILL its QEMU (like pulling the power plug), and wait until it is gone. */
export async function killNode(name: string): Promise<void> {
  const pid = nodePid(name);
  if (!pid) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone already */
  }
  await waitFor(`${name}'s QEMU (pid ${pid}) to exit`, async () => procCmdline(pid) === undefined || !nodePid(name), 30000, 100);
  fs.rmSync(nodePidFile(name), { force: true });
}

/** Does the node answer SSH and have libvirtd and the lab's setup ready? */
export async function nodeReady(name: string, timeoutMs = 20000): Promise<boolean> {
  const r = await labExec(
    name,
    "test -e /run/pmc-lab-ready && virsh -q -c qemu:///system list --all >/dev/null && echo pmc-lab-ok",
    { timeoutMs, sshOptions: ["ConnectTimeout=5"] },
  );
  return r.exitCode === 0 && r.stdout.includes("pmc-lab-ok");
}

/** Wait until the node is ready (see nodeReady); throws if its QEMU dies or on timeout. */
export async function waitForNode(name: string, timeoutMs = 600000): Promise<void> {
  await waitFor(
    `${name} to answer SSH with libvirtd up`,
    async () => {
      if (!nodePid(name)) {
        let tail = "";
        try {
          tail = fs.readFileSync(serialLogPath(name), "utf8").split("\n").slice(-30).join("\n");
        } catch {
          /* none */
        }
        throw new Error(`${name}'s QEMU is not running; serial log tail:\n${tail}`);
      }
      return nodeReady(name);
    },
    timeoutMs,
    2000,
  );
}

export interface SharedMount {
  source: string;
  fstype: string;
  /** The mount's options as the kernel shows them, e.g. ["rw", "vers=4.2", "hard", ...]. */
  options: string[];
}

/**
 * Wait until the node has the shared file system (SHARED_SOURCE) mounted at SHARED_DIR, and
 * return that mount. Each look goes into the directory, so it also mounts it (the automount)
 * where pm-1 answers. Not part of nodeReady: a node counts as up while pm-1 is down.
 */
export async function waitSharedMount(name: string, timeoutMs = 300_000): Promise<SharedMount> {
  return waitFor(
    `${name} to mount ${SHARED_SOURCE} at ${SHARED_DIR}`,
    async () => {
      // A mount attempt while pm-1 does not answer takes up to systemd's mount timeout (90 s).
      const r = await labExec(name, `stat -f ${SHARED_DIR}/ >/dev/null 2>&1; findmnt -rn -t nfs,nfs4 -M ${SHARED_DIR} -o SOURCE,FSTYPE,OPTIONS`, {
        timeoutMs: 150_000,
        sshOptions: ["ConnectTimeout=5"],
      });
      const [source, fstype, options] = (r.stdout.split("\n")[0] ?? "").split(" ");
      return source === SHARED_SOURCE && fstype && options ? { source, fstype, options: options.split(",") } : undefined;
    },
    timeoutMs,
    2000,
  );
}

/** Cut a node's network link (its tap device in the namespace goes down): nobody reaches it, it reaches nobody. */
export async function cutLink(name: string): Promise<void> {
  await runOk(["ip", "-n", NAMESPACE, "link", "set", labNode(name).tap, "down"]);
}

/** Restore a node's network link after cutLink. */
export async function restoreLink(name: string): Promise<void> {
  const n = labNode(name);
  await runOk(["ip", "-n", NAMESPACE, "link", "set", n.tap, "master", BRIDGE]);
  await runOk(["ip", "-n", NAMESPACE, "link", "set", n.tap, "up"]);
}

/** Is the node's link cut (see cutLink)? */
export function isLinkCut(name: string): boolean {
  const r = ipn("-br", "link", "show", labNode(name).tap);
  return r.exitCode !== 0 || !/\bUP\b|UNKNOWN/.test(r.stdout.split(/\s+/)[1] ?? "");
}

// ---------------------------------------------------------------------------------------
// The whole lab

export interface UpResult {
  nodes: LabNode[];
  /** True if every node was already up and nothing was done. */
  alreadyUp: boolean;
  /** Seconds spent building the image (0 if it was cached). */
  imageBuildSeconds: number;
  /** Seconds from starting QEMU until every node was ready (0 if already up). */
  bootSeconds: number;
}

/**
 * Bring the lab up: build the image if needed, write .lab/, create the namespace, start
 * every node that does not run, wait until all answer SSH with libvirtd up and have the
 * shared file system mounted (waitSharedMount). Harmless when
 * the lab is already up. `nodes` (default 3, or as the running lab has) must match a
 * running lab's count.
 */
export async function labUp(opts: { nodes?: number; log?: (line: string) => void } = {}): Promise<UpResult> {
  const log = opts.log ?? (() => {});
  if (process.getuid?.() !== 0) throw new Error("the lab needs root (network namespace, taps): run it as root");
  ensureHostPackages(log);
  const prev = readState();
  const count = opts.nodes ?? prev?.nodeCount ?? DEFAULT_NODE_COUNT;
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODE_COUNT) {
    throw new Error(`--nodes must be 1..${MAX_NODE_COUNT}`);
  }
  const nodes = Array.from({ length: count }, (_, i) => nodeSpec(i + 1));
  if (prev && prev.nodeCount !== count) {
    const running = Array.from({ length: prev.nodeCount }, (_, i) => nodeSpec(i + 1)).filter((n) => nodePid(n.name));
    if (running.length > 0) {
      throw new Error(`the lab runs with ${prev.nodeCount} nodes; run \`npm run lab:down\` before asking for ${count}`);
    }
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  if (prev && prev.nodeCount === count && namespaceExists() && nodes.every((n) => nodePid(n.name))) {
    const ready = await Promise.all(nodes.map((n) => nodeReady(n.name)));
    if (ready.every(Boolean)) {
      ensureGuest(prev.imageDir, log);
      return { nodes, alreadyUp: true, imageBuildSeconds: 0, bootSeconds: 0 };
    }
  }
  const image = await ensureImage(log);
  if (image.built) log(`image build took ${image.seconds.toFixed(0)} s`);
  fs.mkdirSync(runDir, { recursive: true });
  const st: LabState = readState() ?? { nodeCount: count, imageDir: image.dir, createdAt: new Date().toISOString() };
  if (st.imageDir !== image.dir && nodes.some((n) => nodePid(n.name))) {
    log(`note: running nodes use the older image ${st.imageDir}`);
  } else {
    if (st.imageDir !== image.dir) {
      // Disks left from the older image would boot it again (an overlay keeps its backing file).
      log(`the node image changed: the nodes start afresh from ${image.dir}`);
      for (const n of nodes) for (const f of [`${n.name}.qcow2`, `${n.name}-pv.img`, `${n.name}-seed.img`]) fs.rmSync(path.join(runDir, f), { force: true });
    }
    st.imageDir = image.dir;
  }
  fs.writeFileSync(stateFile, JSON.stringify(st, null, 2) + "\n");
  ensureGuest(st.imageDir, log);
  writeLabFiles(nodes);
  ensureNamespace(nodes);
  const t0 = Date.now();
  const started: string[] = [];
  for (const n of nodes) {
    if (nodePid(n.name)) continue;
    await startNode(n.name);
    started.push(n.name);
  }
  if (started.length) log(`started ${started.join(", ")}; waiting for SSH, libvirtd and the shared mount`);
  await Promise.all(
    nodes.map(async (n) => {
      await waitForNode(n.name);
      await waitSharedMount(n.name);
      log(`  ${n.name} (${n.address}) ready after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }),
  );
  return { nodes, alreadyUp: false, imageBuildSeconds: image.seconds, bootSeconds: (Date.now() - t0) / 1000 };
}

/** The lab's nodes, bringing the lab up first if it is not (fully) up. For tests' before() hooks. */
export async function ensureLabUp(opts: { nodes?: number; log?: (line: string) => void } = {}): Promise<LabNode[]> {
  return (await labUp(opts)).nodes;
}

/** Stop every node, delete the namespace and the runtime files (.lab/run, /etc/netns/pmc-lab). */
export async function labDown(log: (line: string) => void = () => {}): Promise<void> {
  const st = readState();
  const names = st ? Array.from({ length: st.nodeCount }, (_, i) => nodeSpec(i + 1).name) : [];
  for (const name of names) {
    if (nodePid(name)) {
      await killNode(name);
      log(`stopped ${name}`);
    }
  }
  for (const pid of labQemuPids()) {
    try {
      process.kill(pid, "SIGKILL");
      log(`killed stray lab QEMU ${pid}`);
    } catch {
      /* gone */
    }
  }
  await waitFor("the lab's QEMU processes to exit", async () => labQemuPids().length === 0, 30000, 200);
  if (namespaceExists()) {
    runSyncOk(["ip", "netns", "del", NAMESPACE]);
    log(`deleted network namespace ${NAMESPACE}`);
  }
  fs.rmSync(`/etc/netns/${NAMESPACE}`, { recursive: true, force: true });
  fs.rmSync(runDir, { recursive: true, force: true });
}

export interface NodeStatus {
  name: string;
  address: string;
  pid: number | undefined;
  ready: boolean;
}

export interface LabStatus {
  up: boolean;
  namespace: boolean;
  imageDir: string;
  imageCached: boolean;
  nodes: NodeStatus[];
}

/** What runs: the namespace, each node's QEMU pid and whether it answers. */
export async function labStatus(): Promise<LabStatus> {
  const st = readState();
  const nodes = st ? Array.from({ length: st.nodeCount }, (_, i) => nodeSpec(i + 1)) : [];
  const ns = namespaceExists();
  const statuses = await Promise.all(
    nodes.map(async (n) => {
      const pid = nodePid(n.name);
      const ready = pid !== undefined && ns ? await nodeReady(n.name, 15000) : false;
      return { name: n.name, address: n.address, pid, ready };
    }),
  );
  return {
    up: ns && statuses.length > 0 && statuses.every((s) => s.ready),
    namespace: ns,
    imageDir: imageDir(),
    imageCached: imageReady(),
    nodes: statuses,
  };
}

// ---------------------------------------------------------------------------------------
// DRBD and the guest workload (the lab's own helpers, independent of pmc)

export interface DrbdResourceSpec {
  /** Resource name = LV name. */
  name: string;
  /** DRBD minor: the device is /dev/drbd<minor>. */
  minor: number;
  /** TCP port on every node. */
  port: number;
  /** Two node names. */
  nodes: [string, string];
}

/** A DRBD 8.4 resource file in the layout of the old bash tool. */
export function drbdResourceConfig(r: DrbdResourceSpec): string {
  const on = r.nodes
    .map((name) => `  on ${name} {\n    address ${nodeSpec(Number(name.replace(/^pm-/, ""))).address}:${r.port};\n  }\n`)
    .join("");
  return (
    `resource ${r.name} {\n  meta-disk internal;\n  device /dev/drbd${r.minor} minor ${r.minor};\n` +
    `  disk /dev/${VOLUME_GROUP}/${r.name};\n${on}  disk {\n    no-disk-flushes;\n  }\n` +
    `  net {\n    allow-two-primaries yes;\n  }\n}\n`
  );
}

/**
 * Create an LV of `sizeMiB` and a DRBD resource on both nodes, bring it up, make the first
 * node Primary (overwriting the peer), raise the resync rate, and wait until both disks are
 * UpToDate. Returns the device path.
 */
export async function createDrbdResource(r: DrbdResourceSpec, sizeMiB: number, timeoutMs = 300000): Promise<string> {
  const conf = drbdResourceConfig(r);
  await Promise.all(
    r.nodes.map(async (node) => {
      await labExecOk(node, `lvcreate -q -y -W y -Z y -L ${sizeMiB}m -n ${shq(r.name)} ${VOLUME_GROUP}`);
      await writeNodeFile(node, `/etc/drbd.d/${r.name}.res`, conf);
      await labExecOk(node, `drbdadm -- --force create-md ${shq(r.name)} && drbdadm up ${shq(r.name)}`);
    }),
  );
  const [a] = r.nodes;
  await labExecOk(a, `drbdadm -- --overwrite-data-of-peer primary ${shq(r.name)}`);
  await labExecOk(a, `drbdadm disk-options --c-plan-ahead=0 --resync-rate=300M ${shq(r.name)}`);
  await waitFor(
    `DRBD ${r.name} to be UpToDate on ${r.nodes.join(" and ")}`,
    async () => (await drbdDiskStates(a, r.name)).join("/") === "UpToDate/UpToDate",
    timeoutMs,
  );
  return `/dev/drbd${r.minor}`;
}

/** Tear down what createDrbdResource made (domain, if any, must be gone). Ignores what is missing. */
export async function removeDrbdResource(r: DrbdResourceSpec): Promise<void> {
  await Promise.all(
    r.nodes.map((node) =>
      labExec(
        node,
        `drbdadm down ${shq(r.name)} 2>/dev/null; rm -f /etc/drbd.d/${shq(r.name)}.res; ` +
          `lvremove -q -y ${VOLUME_GROUP}/${shq(r.name)} 2>/dev/null; true`,
      ),
    ),
  );
}

/** `drbdadm role RES` on a node, e.g. ["Primary", "Secondary"] (local, peer). */
export async function drbdRoles(node: string, res: string): Promise<string[]> {
  return (await labExecOk(node, `drbdadm role ${shq(res)}`)).trim().split("/");
}

/** `drbdadm dstate RES` on a node, e.g. ["UpToDate", "UpToDate"] (local, peer). */
export async function drbdDiskStates(node: string, res: string): Promise<string[]> {
  return (await labExecOk(node, `drbdadm dstate ${shq(res)}`)).trim().split("/");
}

/**
 * Wait until a resource is Connected and UpToDate/UpToDate as `node` sees it. Under a loaded
 * host the emulated nodes sometimes miss DRBD's 0.5 s ping and reconnect; commands that need a
 * settled pair rightly refuse in the moment between (seen: Connecting UpToDate/DUnknown).
 */
export async function waitForConnected(node: string, res: string, timeoutMs = 180_000): Promise<void> {
  await waitFor(`${res} connected and UpToDate on both nodes`, async () =>
    ((await labExec(node, `drbdadm cstate ${shq(res)}; drbdadm dstate ${shq(res)}`)).stdout.split("\n").join(" ").trim() === "Connected UpToDate/UpToDate") || undefined,
  timeoutMs, 2000);
}

/** `drbdadm cstate RES` on a node, e.g. "Connected". */
export async function drbdConnectionState(node: string, res: string): Promise<string> {
  return (await labExecOk(node, `drbdadm cstate ${shq(res)}`)).trim();
}

/**
 * Libvirt domain XML for the guest workload booted from the node's files: the cloud kernel with
 * a busybox initramfs (on every node under /var/lib/pmc-lab/guest/) whose /init writes
 * "PMC-COUNTER <n>" into the second sector of its disk about twice a second. `disk` is a block
 * device, e.g. /dev/drbd10. For what pmc's own domain cannot have (a guest agent channel, the
 * console in a file); otherwise `pmc vm add --image pmc-guest.img` boots the same from its disk.
 */
export function guestDomainXml(opts: {
  name: string;
  disk: string;
  memoryMiB?: number;
  uuid?: string;
  /** Write the guest's serial console to this file on the node (default: a pty). */
  consoleFile?: string;
  /** A guest agent channel: the guest then powers off or reboots when libvirt asks (test/lab/guest/init.sh). */
  agent?: boolean;
}): string {
  const mem = opts.memoryMiB ?? 96;
  const serial = opts.consoleFile
    ? `<serial type='file'><source path='${opts.consoleFile}' append='on'/><target port='0'/></serial>`
    : "<serial type='pty'><target port='0'/></serial>";
  return `<domain type='qemu'>
  <name>${opts.name}</name>${opts.uuid ? `\n  <uuid>${opts.uuid}</uuid>` : ""}
  <memory unit='MiB'>${mem}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${GUEST_KERNEL}</kernel>
    <initrd>${GUEST_INITRD}</initrd>
    <cmdline>${GUEST_CMDLINE}</cmdline>
  </os>
  <!-- ACPI hardware (the guest agent powers off through it), though the kernel boots with acpi=off -->
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='${opts.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    ${serial}
    <console type='${opts.consoleFile ? "file" : "pty"}'><target type='serial' port='0'/></console>${opts.agent ? "\n    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>" : ""}
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/**
 * The guest workload's counter as stored on a block device of `node` (a DRBD device on the
 * Primary, or the LV under it on either node: DRBD's internal metadata is at the end), or
 * undefined if its second sector (where test/lab/guest/init.sh writes it) holds no counter.
 */
export async function readCounter(node: string, device: string): Promise<number | undefined> {
  const out = await labExecOk(node, `dd if=${shq(device)} bs=512 skip=1 count=1 iflag=direct status=none | tr -d '\\000'`);
  const m = /^PMC-COUNTER (\d+) /.exec(out);
  return m ? Number(m[1]) : undefined;
}

/** Wait until the counter on `device` exceeds `above` (default 0); returns it. */
export async function waitForCounter(node: string, device: string, above = 0, timeoutMs = 240000): Promise<number> {
  return waitFor(
    `the guest's counter on ${node}:${device} to pass ${above}`,
    async () => {
      const c = await readCounter(node, device);
      return c !== undefined && c > above ? c : undefined;
    },
    timeoutMs,
    2000,
  );
}
