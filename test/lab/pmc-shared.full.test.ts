// Shared-storage VMs on the real cluster: the lab's NFS file system (pm-1 exports it, every node
// mounts it at SHARED_DIR) as pmc's storage.shared. A VM made by `pmc vm add --shared` runs the
// guest workload from a file on it, is refused a second start, migrates pm-1 -> pm-3 -> pm-2
// with its counter rising, is backed up while it runs and while it is off, and is restored
// byte-exact; every check reads the bytes and the domains on the nodes themselves.
// Shares the lab with other tests: only `sh-` names, its own pmc.yaml variant.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  BACKUP_DIR,
  GUEST_IMAGE,
  SHARED_DIR,
  ensureLabUp,
  labExec,
  labExecOk,
  readCounter,
  waitForCounter,
  waitSharedMount,
} from "./lab.ts";
import { labConfigVariant, pmc } from "./pmc.ts";
import { sampleCounter } from "./mv-guest.ts";

const VM = "sh-work";
const FILE = `${SHARED_DIR}/${VM}.img`;
const NODES = ["pm-1", "pm-2", "pm-3"];
const MARKER = `${SHARED_DIR}/.pmc-shared-id`;
const started = Date.now();

const config = labConfigVariant("shared", (yaml) => {
  const shared = yaml.replace(/^storage:\n/m, `storage:\n  shared:\n    directory: ${SHARED_DIR}\n`);
  if (shared === yaml) throw new Error("the lab's pmc.yaml has no storage section");
  return shared;
});

async function run(args: string[], timeoutMs = 900_000) {
  const t0 = Date.now();
  const r = await pmc(args, { config, timeoutMs });
  console.log(`# pmc ${args.join(" ")}: exit ${r.exitCode} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

async function domstate(node: string): Promise<string> {
  const r = await labExec(node, `virsh domstate ${VM}`);
  return r.exitCode === 0 ? r.stdout.trim() : "not defined";
}

/** Runs on `node` and is shut off on every other node, each of which defines it. */
async function assertRunsOnlyOn(node: string): Promise<void> {
  for (const n of NODES) assert.equal(await domstate(n), n === node ? "running" : "shut off", `${VM} on ${n}`);
}

const sha256 = async (node: string, file: string) => (await labExecOk(node, `sha256sum < ${file}`)).trim().split(/\s+/)[0]!;

/** The stamps of the VM's backups on `node`, oldest first, by their file names. */
async function backupFiles(node: string): Promise<string[]> {
  const r = await labExec(node, `ls ${BACKUP_DIR}/${VM}/`);
  return r.stdout.split("\n").filter((f) => /^\d{4}(-\d\d){5}\.(base|xdelta3)$/.test(f)).sort();
}

async function removeVm(): Promise<void> {
  const r = await pmc(["vm", "rm", "-f", VM], { config });
  if (r.exitCode !== 0 && !/PMC_E_VM_UNKNOWN/.test(r.stderr)) {
    await Promise.all(NODES.map((n) => labExec(n, `virsh destroy ${VM}; virsh undefine --nvram ${VM}; true`)));
    await labExec("pm-1", `rm -f ${FILE} ${SHARED_DIR}/.${VM}.pmc-backup.qcow2`);
  }
  await Promise.all(NODES.map((n) => labExec(n, `rm -rf ${BACKUP_DIR}/${VM}`)));
}

describe("shared-storage VMs on the lab", { timeout: 60 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    for (const n of NODES) await waitSharedMount(n);
    await removeVm();
    await labExec("pm-1", `rm -f ${MARKER}`);
  });

  after(async () => {
    await removeVm();
    console.log(`# pmc-shared.full.test.ts: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("cluster verify reports the unmarked file system; pm init --fix marks it once, the same on every node", async () => {
    const unmarked = await run(["cluster", "verify"]);
    assert.notEqual(unmarked.exitCode, 0);
    assert.match(unmarked.stdout + unmarked.stderr, /PMC_V_NODE_SHARED_STORAGE/);
    const refused = await run(["vm", "add", "--shared", "-s", "256M", "-m", "96M", "--no-start", VM]);
    assert.notEqual(refused.exitCode, 0, "no shared VM on an unproven file system");
    assert.equal((await labExec("pm-1", `test -e ${FILE}`)).exitCode, 1, "nothing created");

    const fix = await run(["pm", "init", "--fix", "pm-1"]);
    assert.equal(fix.exitCode, 0, fix.stdout + fix.stderr);
    const ids = await Promise.all(NODES.map((n) => labExecOk(n, `cat ${MARKER}`)));
    assert.match(ids[0]!.trim(), /\S{8,}/);
    for (const id of ids) assert.equal(id, ids[0], "one marker, read through NFS on every node");
    const again = await run(["pm", "init", "--fix", "pm-2"]);
    assert.equal(again.exitCode, 0, again.stdout + again.stderr);
    assert.equal(await labExecOk("pm-3", `cat ${MARKER}`), ids[0], "never over an existing marker");
    const verify = await run(["cluster", "verify"]);
    assert.doesNotMatch(verify.stdout + verify.stderr, /PMC_V_NODE_SHARED_STORAGE/);
  });

  it("vm add --shared: the disk is a file on the share, the domain is defined on every node and runs on the placed one; a second start is refused", async () => {
    const add = await run(["vm", "add", "--shared", "-p", "pm-1", "-s", "256M", "-m", "96M", "--image", GUEST_IMAGE, VM]);
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    for (const n of NODES) assert.equal((await labExecOk(n, `stat -c %s ${FILE}`)).trim(), String(256 * 1024 ** 2), `the file seen from ${n}`);
    await assertRunsOnlyOn("pm-1");
    const t0 = Date.now();
    const first = await waitForCounter("pm-3", FILE, 0, 900_000);
    console.log(`# the guest's first counter (${first}), read on pm-3 through NFS, ${((Date.now() - t0) / 1000).toFixed(0)} s after vm add`);

    const twice = await run(["vm", "start", "-p", "pm-2", VM]);
    assert.notEqual(twice.exitCode, 0, "refused");
    assert.match(twice.stderr, /^pmc: error: sh-work already runs on pm-1: a shared-storage VM never runs twice \[PMC_E_STATE\]\n\s+hint: /, "one line naming where it runs, and the fix");
    await assertRunsOnlyOn("pm-1");
  });

  it("migrates pm-1 -> pm-3 -> pm-2, the counter never going backwards and rising after each", async () => {
    for (const [from, to] of [["pm-1", "pm-3"], ["pm-3", "pm-2"]] as const) {
      const before = (await readCounter("pm-2", FILE))!;
      const sampler = sampleCounter("pm-2", FILE);
      const mv = await run(["vm", "mv", VM, "--to", to]);
      const values = await sampler.stop();
      assert.equal(mv.exitCode, 0, mv.stdout + mv.stderr);
      await assertRunsOnlyOn(to);
      for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `counter went backwards: ${values.slice(i - 1, i + 1)}`);
      const later = await waitForCounter("pm-2", FILE, Math.max(before, ...values), 300_000);
      console.log(`# ${from} -> ${to}: counter ${before} before, ${values.at(-1)} when pmc returned, ${later} later`);
    }
  });

  it("backed up while it runs (an overlay merged back) and while it is off; restored onto its disk byte-exact", async () => {
    // Running, on pm-2: the image holds a whole counter no greater than the one after the backup.
    const running = await run(["vm", "backup", "-b", VM]);
    assert.equal(running.exitCode, 0, running.stdout + running.stderr);
    const afterBackup = (await readCounter("pm-2", FILE))!;
    assert.match(await labExecOk("pm-2", `virsh domblklist ${VM}`), new RegExp(`vda\\s+${FILE}`), "the disk is the file again");
    assert.doesNotMatch(await labExecOk("pm-2", `virsh dumpxml --inactive ${VM}`), /pmc-backup\.qcow2/, "and so is the definition's");
    assert.equal((await labExec("pm-1", `ls -a ${SHARED_DIR} | grep -c pmc-backup`)).stdout.trim(), "0", "no overlay left");
    const [runningBase] = await backupFiles("pm-2");
    assert.ok(runningBase?.endsWith(".base"), `a full image on pm-2: ${runningBase}`);
    const imageCounter = await readCounter("pm-2", `${BACKUP_DIR}/${VM}/${runningBase}`);
    assert.ok(imageCounter !== undefined && imageCounter <= afterBackup, `image counter ${imageCounter}, after the backup ${afterBackup}`);
    await waitForCounter("pm-2", FILE, afterBackup, 300_000);

    // Off: the image is the file's exact bytes; scribbled over, restore puts them back.
    const destroy = await run(["vm", "destroy", "-f", VM]);
    assert.equal(destroy.exitCode, 0, destroy.stdout + destroy.stderr);
    const offSum = await sha256("pm-3", FILE);
    const off = await run(["vm", "backup", "-b", VM]);
    assert.equal(off.exitCode, 0, off.stdout + off.stderr);
    // A shut-off VM is backed up on the first node that defines it: the newest image anywhere.
    const images = (await Promise.all(NODES.map(async (node) => (await backupFiles(node)).map((file) => ({ node, file }))))).flat();
    const { node: holder, file: offBase } = images.sort((a, b) => a.file.localeCompare(b.file)).at(-1)!;
    assert.notEqual(offBase, runningBase);
    assert.equal(await sha256(holder, `${BACKUP_DIR}/${VM}/${offBase}`), offSum, "the image is the file's bytes");

    await labExecOk("pm-3", `dd if=/dev/urandom of=${FILE} bs=1M count=8 seek=16 conv=notrunc,fsync status=none`);
    assert.notEqual(await sha256("pm-1", FILE), offSum);
    const unconfirmed = await run(["vm", "restore", VM, "--at", offBase.replace(/\.base$/, "")]);
    assert.notEqual(unconfirmed.exitCode, 0, "restore onto its own disk asks for its name (-f)");
    const restore = await run(["vm", "restore", VM, "--at", offBase.replace(/\.base$/, ""), "-f"]);
    assert.equal(restore.exitCode, 0, restore.stdout + restore.stderr);
    for (const n of NODES) assert.equal(await sha256(n, FILE), offSum, `restored bytes seen from ${n}`);

    // And the image taken while it ran restores to its own bytes too.
    const restoreRunning = await run(["vm", "restore", VM, "--at", runningBase!.replace(/\.base$/, ""), "-f"]);
    assert.equal(restoreRunning.exitCode, 0, restoreRunning.stdout + restoreRunning.stderr);
    assert.equal(await sha256("pm-1", FILE), await sha256("pm-2", `${BACKUP_DIR}/${VM}/${runningBase}`));
  });

  it("vm rm: undefined on every node, the file gone from the share", async () => {
    const rm = await run(["vm", "rm", "-f", VM]);
    assert.equal(rm.exitCode, 0, rm.stdout + rm.stderr);
    for (const n of NODES) assert.equal(await domstate(n), "not defined", n);
    assert.equal((await labExec("pm-3", `test -e ${FILE}`)).exitCode, 1, "the file is gone");
  });
});
