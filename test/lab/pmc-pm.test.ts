// pmc pm init, pm drbd-up and cluster start on the real cluster. pm init passes everywhere;
// trust and the backup directory are broken on purpose, found, and repaired by --fix (and a
// real `ssh pm-3 true` from pm-1 proves it). A VM made by hand on pm-1 and pm-3 is brought
// back by cluster start exactly once, a split brain look-alike is refused, and finally pm-3
// loses power while it runs the VM: cluster start brings it back degraded on pm-1.
// Shares the lab with other tests: only `start-` names, DRBD minors 300-399, ports 8100-8199,
// and only pm-3 is ever broken or powered off, and restored right away.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createDrbdResource,
  drbdConnectionState,
  drbdDiskStates,
  drbdRoles,
  ensureLabUp,
  fullSetOnly,
  guestDomainXml,
  killNode,
  labExec,
  labExecOk,
  labNodes,
  removeDrbdResource,
  shq,
  VOLUME_GROUP,
  startNode,
  waitFor,
  waitForCounter,
  waitForNode,
  writeNodeFile,
  type DrbdResourceSpec,
} from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";

/** pm-3 is the node this test powers off; pm-1 is the one no other lab test does. */
const HOME = "pm-1";
const PEER = "pm-3";
const vm: DrbdResourceSpec = { name: "start-a", minor: 300, port: 8100, nodes: [HOME, PEER] };
const uuid = "5e1f0c3a-7d6b-4c52-9a43-0c1d2e3f4a5b";
const device = `/dev/drbd${vm.minor}`;
const BACKUP_DIR = "/pmc-vm-backup";

const config = labConfigFor("start", { minors: [300, 399], ports: [8100, 8199] });

interface Check {
  node: string;
  check: string;
  status: string;
  detail: string;
}
interface InitResult {
  checks: Check[];
  plan: { steps: Array<{ node: string; command: string; input?: { fromNode: string; command: string } }> };
  applied: Array<{ ok: boolean; error?: string }>;
}
interface DrbdUpResult {
  mode: string;
  plan: { steps: Array<{ node: string; command: string }> };
  resources: Array<{ node: string; resource: string; action: string; role?: string; disk?: string }>;
}
interface StartResult {
  mode: string;
  plan: { steps: Array<{ node: string; command: string }> };
  vms: Array<{ decision: { vm: string; kind: string; node?: string; degraded?: boolean; reason: string; fix?: string }; result?: { status: string } }>;
}

/** pmc with the test's config; logs how long it took. */
async function pmcTimed<T>(args: string[]): Promise<{ code: number; data: T; stderr: string }> {
  const t0 = Date.now();
  const r = await pmcJson<T>(args, { config });
  console.log(`# pmc ${args.join(" ")}: exit ${r.code} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

async function domainStates(): Promise<string[]> {
  return Promise.all(vm.nodes.map(async (n) => {
    const r = await labExec(n, `virsh domstate ${vm.name}`);
    return r.exitCode === 0 ? r.stdout.trim() : "undefined";
  }));
}

function status(result: InitResult, node: string, check: string): string | undefined {
  return result.checks.find((c) => c.node === node && c.check === check)?.status;
}

/** Removes the VM from every node: a node that was down during an earlier cleanup may still hold parts of it. */
async function removeVm(): Promise<void> {
  await Promise.all(labNodes().map((n) => labExec(n.name, `virsh -q destroy ${vm.name} 2>/dev/null; virsh -q undefine ${vm.name} 2>/dev/null; rm -f /root/${vm.name}.xml; true`)));
  // removeDrbdResource just walks its node list, whose type is made for creating a pair.
  await removeDrbdResource({ ...vm, nodes: labNodes().map((n) => n.name) as [string, string] });
}

/** The node files the trust test edits; each is first copied beside itself, on the node. */
const EDITED_FILES = [{ node: "pm-1", file: "/root/.ssh/known_hosts" }, { node: "pm-3", file: "/root/.ssh/authorized_keys" }];
const SAVED_SUFFIX = ".pmc-test-saved";

/**
 * Removes the lines of `file` on `node` that `match` selects. The file's original is kept on
 * the node itself, so a run that crashes halfway is repaired by the next run's before().
 */
async function removeLines(node: string, file: string, match: (line: string) => boolean): Promise<void> {
  const saved = `${file}${SAVED_SUFFIX}`;
  await labExecOk(node, `test -e ${saved} || cp -p ${file} ${saved}`);
  const lines = (await labExecOk(node, `cat ${file}`)).split("\n").filter(match);
  for (const line of lines) await labExecOk(node, `grep -vxF -e ${shq(line)} ${file} > ${file}.tmp; cat ${file}.tmp > ${file}; rm ${file}.tmp`);
}

/** Puts back what the trust test took away, whatever state it (or an earlier run) stopped in. */
async function restoreNodeFiles(): Promise<void> {
  for (const { node, file } of EDITED_FILES) {
    const saved = `${file}${SAVED_SUFFIX}`;
    await labExecOk(node, `if [ -e ${saved} ]; then cat ${saved} > ${file} && rm ${saved}; fi`);
  }
  await labExecOk("pm-3", `mkdir -p ${BACKUP_DIR}`);
}

describe("pmc pm init, pm drbd-up and cluster start on the lab", { timeout: 60 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await restoreNodeFiles();
    await removeVm();
  });
  after(async () => {
    await restoreNodeFiles();
    await removeVm();
  });

  it("pm init pm-1: every check passes, trust both ways with pm-2 and pm-3 proven by ssh", async () => {
    const r = await pmcTimed<InitResult>(["pm", "init", "pm-1"]);
    const failed = r.data.checks.filter((c) => c.status !== "PASS");
    assert.deepEqual(failed, [], JSON.stringify(failed, null, 2));
    assert.equal(r.code, 0);
    assert.deepEqual(r.data.checks.filter((c) => c.check.startsWith("ssh to")).map((c) => `${c.node}>${c.check.slice(7)}`).sort(),
      ["pm-1>pm-2", "pm-1>pm-3", "pm-2>pm-1", "pm-3>pm-1"]);
  });

  it("broken trust and a missing backup directory FAIL; --dry-run changes nothing; --fix repairs them", async () => {
    // pm-1 forgets pm-3's host key; pm-3 stops accepting the nodes' root key; pm-3 loses its backup directory.
    await removeLines("pm-1", "/root/.ssh/known_hosts", (line) => /^pm-3[, ]/.test(line));
    const rootKey = (await labExecOk("pm-1", "cat /root/.ssh/id_ed25519.pub")).trim();
    await removeLines("pm-3", "/root/.ssh/authorized_keys", (line) => line === rootKey);
    const backupRemoved = (await labExec("pm-3", `rmdir ${BACKUP_DIR}`)).exitCode === 0;
    try {
      assert.notEqual((await labExec("pm-1", "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes pm-3 true")).exitCode, 0, "broken on purpose");

      const broken = await pmcTimed<InitResult>(["pm", "init", "pm-3"]);
      assert.equal(broken.code, 1);
      assert.equal(status(broken.data, "pm-1", "ssh to pm-3"), "FAIL");
      assert.equal(status(broken.data, "pm-2", "ssh to pm-3"), "FAIL");
      if (backupRemoved) assert.equal(status(broken.data, "pm-3", "backup-dir"), "FAIL");
      assert.match(broken.data.checks.find((c) => c.node === "pm-1" && c.check === "ssh to pm-3")!.detail,
        /pm-1's root key is not in pm-3's \/root\/.ssh\/authorized_keys; pm-1 does not know pm-3's host key as pm-3/);

      const knownBefore = await labExecOk("pm-1", "cat /root/.ssh/known_hosts");
      const dry = await pmcTimed<InitResult>(["pm", "init", "pm-3", "--fix", "--dry-run"]);
      assert.equal(dry.code, 1);
      assert.ok(dry.data.plan.steps.some((s) => s.node === "pm-3" && s.input?.fromNode === "pm-1" && s.input.command === "cat /root/.ssh/id_ed25519.pub"));
      assert.ok(dry.data.plan.steps.some((s) => s.node === "pm-1" && s.command.includes("'pm-3,10.99.0.13 ssh-ed25519 ")));
      assert.equal(await labExecOk("pm-1", "cat /root/.ssh/known_hosts"), knownBefore, "dry run changes nothing");

      const fixed = await pmcTimed<InitResult>(["pm", "init", "pm-3", "--fix"]);
      assert.deepEqual(fixed.data.applied.filter((a) => !a.ok), []);
      assert.equal(fixed.code, 0, JSON.stringify(fixed.data.checks.filter((c) => c.status === "FAIL"), null, 2));
      assert.equal(status(fixed.data, "pm-1", "ssh to pm-3"), "FIXED");
      assert.equal(status(fixed.data, "pm-2", "ssh to pm-3"), "FIXED");
      if (backupRemoved) assert.equal(status(fixed.data, "pm-3", "backup-dir"), "FIXED");

      await labExecOk("pm-1", "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes pm-3 true");
      await labExecOk("pm-1", "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes 10.99.0.13 true");
      const authorized = await labExecOk("pm-3", "cat /root/.ssh/authorized_keys");
      assert.equal(authorized.split("\n").filter((l) => l === rootKey).length, 1, "the shared root key is added once");

      const again = await pmcTimed<InitResult>(["pm", "init", "pm-3", "--fix", "--dry-run"]);
      assert.deepEqual(again.data.plan.steps, [], "nothing left to fix");
    } finally {
      await restoreNodeFiles();
    }
  });

  it("pm drbd-up brings a resource that was taken down back up; its dry run changes nothing", async () => {
    const t0 = Date.now();
    await createDrbdResource(vm, 64);
    console.log(`# ${vm.name} created and synced in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await labExecOk(HOME, `drbdadm secondary ${vm.name}`);
    await labExecOk(PEER, `drbdadm down ${vm.name}`);

    const dry = await pmcTimed<DrbdUpResult>(["pm", "drbd-up", PEER, "--only", vm.name, "--dry-run"]);
    assert.deepEqual(dry.data.plan.steps.map((s) => [s.node, s.command]), [[PEER, `drbdadm up ${vm.name}`]]);
    assert.deepEqual(dry.data.resources.map((r) => [r.resource, r.action]), [[vm.name, "would bring up"]]);
    assert.notEqual((await labExec(PEER, `drbdadm role ${vm.name}`)).exitCode, 0, "still down after the dry run");

    const up = await pmcTimed<DrbdUpResult>(["pm", "drbd-up", PEER, "--only", vm.name]);
    assert.equal(up.code, 0);
    assert.deepEqual(up.data.resources.map((r) => [r.resource, r.action, r.role]), [[vm.name, "brought up", "Secondary"]]);
    await waitFor(`${vm.name} to connect`, async () => (await drbdConnectionState(PEER, vm.name)) === "Connected", 120_000);
    assert.deepEqual(await drbdDiskStates(PEER, vm.name), ["UpToDate", "UpToDate"]);

    const noop = await pmcTimed<DrbdUpResult>(["pm", "drbd-up", PEER, "--only", vm.name]);
    assert.deepEqual(noop.data.resources.map((r) => r.action), ["already up"]);
  });

  it("a real split brain (both sides written as Primary while apart): cluster start, vm start and cluster verify refuse or report it", async () => {
    await writeNodeFile(HOME, `/root/${vm.name}.xml`, guestDomainXml({ name: vm.name, disk: device, uuid }));
    await writeNodeFile(PEER, `/root/${vm.name}.xml`, guestDomainXml({ name: vm.name, disk: device, uuid }));
    await Promise.all(vm.nodes.map((n) => labExecOk(n, `virsh -q define /root/${vm.name}.xml`)));
    // Apart, each side becomes Primary and writes its own data; then they meet again.
    await Promise.all(vm.nodes.map((n) => labExecOk(n, `drbdadm disconnect ${vm.name}`)));
    for (const node of vm.nodes) {
      await labExecOk(node, `drbdadm primary ${vm.name} && printf 'written on %s' ${node} | dd of=${device} bs=512 conv=sync,fsync status=none && drbdadm secondary ${vm.name}`);
    }
    await Promise.all(vm.nodes.map((n) => labExecOk(n, `drbdadm connect ${vm.name}`)));
    try {
      await waitFor(`the kernel of ${HOME} to report the split brain`, async () =>
        (await labExecOk(HOME, "dmesg | tail -n 200")).includes(`block drbd${vm.minor}: Split-Brain detected`), 120_000);
      await waitFor(`${vm.name} to be StandAlone on both sides`, async () =>
        (await Promise.all(vm.nodes.map((n) => drbdConnectionState(n, vm.name)))).every((c) => c === "StandAlone"), 120_000);

      const r = await pmcTimed<StartResult>(["cluster", "start", "--only", vm.name]);
      assert.equal(r.code, 1);
      assert.equal(r.data.vms[0]!.decision.kind, "refuse");
      assert.match(r.data.vms[0]!.decision.reason, /^split brain/);
      assert.match(r.data.vms[0]!.decision.fix!, /--discard-my-data/);

      const start = await pmc(["vm", "start", vm.name], { config });
      assert.equal(start.exitCode, 1, `${start.stdout}\n${start.stderr}`);
      assert.match(start.stderr, /split brain.*\[PMC_E_STATE\]/);

      const verify = await pmcJson<{ findings: Array<{ code: string; vm?: string; node?: string }> }>(["cluster", "verify"], { config });
      assert.equal(verify.code, 1);
      assert.deepEqual(verify.data.findings.filter((f) => f.code === "PMC_V_DRBD_SPLIT_BRAIN" && f.vm === vm.name).map((f) => f.node).sort(), [...vm.nodes].sort());

      assert.deepEqual(await domainStates(), ["shut off", "shut off"]);
      assert.deepEqual(await Promise.all(vm.nodes.map(async (n) => (await drbdRoles(n, vm.name))[0])), ["Secondary", "Secondary"]);
    } finally {
      // Resolved the way the README tells an operator: PEER's changes are thrown away.
      await labExecOk(PEER, `drbdadm secondary ${vm.name}; drbdadm disconnect ${vm.name}; drbdadm connect --discard-my-data ${vm.name}`);
      await labExecOk(HOME, `drbdadm disconnect ${vm.name}; drbdadm connect ${vm.name}`);
      await waitFor(`${vm.name} to reconnect`, async () => (await drbdConnectionState(HOME, vm.name)) === "Connected", 120_000);
      await waitFor(`${vm.name} to resync`, async () => (await drbdDiskStates(HOME, vm.name)).join("/") === "UpToDate/UpToDate", 300_000);
    }
    assert.match(await labExecOk(PEER, `dd if=/dev/${VOLUME_GROUP}/${vm.name} bs=512 count=1 iflag=direct status=none | tr -d '\\000'`), new RegExp(`written on ${HOME}`));
  });

  it("cluster start: the dry run shows the plan and changes nothing; then the VM starts exactly once", async () => {
    const dry = await pmcTimed<StartResult>(["cluster", "start", "--only", vm.name, "--dry-run"]);
    assert.equal(dry.code, 0);
    assert.equal(dry.data.mode, "dry-run");
    assert.deepEqual(dry.data.plan.steps.map((s) => [s.node, s.command]), [
      [HOME, `drbdadm primary ${vm.name}`],
      [HOME, `virsh -c qemu:///system start --domain ${vm.name}`],
    ]);
    assert.deepEqual(await domainStates(), ["shut off", "shut off"]);
    assert.deepEqual(await drbdRoles(HOME, vm.name), ["Secondary", "Secondary"]);

    const r = await pmcTimed<StartResult>(["cluster", "start", "--only", vm.name]);
    assert.equal(r.code, 0, JSON.stringify(r.data.vms));
    assert.deepEqual([r.data.vms[0]!.decision.kind, r.data.vms[0]!.decision.node, r.data.vms[0]!.result?.status], ["start", HOME, "applied"]);
    assert.deepEqual(await domainStates(), ["running", "shut off"]);
    assert.deepEqual(await drbdRoles(HOME, vm.name), ["Primary", "Secondary"]);
    await waitForCounter(HOME, device, 0);

    const again = await pmcTimed<StartResult>(["cluster", "start", "--only", vm.name]);
    assert.equal(again.code, 0);
    assert.deepEqual([again.data.vms[0]!.decision.kind, again.data.vms[0]!.decision.reason], ["skip", `already running on ${HOME}`]);
    assert.deepEqual(await domainStates(), ["running", "shut off"]);
  });

  it(`power loss of ${PEER} while it runs the VM: cluster start brings it back degraded on ${HOME}; ${PEER} rejoins as the peer`, { skip: fullSetOnly }, async () => {
    // Move the VM to PEER by hand (stop, swap roles, start), so that it is the last primary.
    await labExecOk(HOME, `virsh -q destroy ${vm.name} && drbdadm secondary ${vm.name}`);
    await labExecOk(PEER, `drbdadm primary ${vm.name} && virsh -q start ${vm.name}`);
    const counter = await waitForCounter(PEER, device, 0);
    // PEER comes back the way a plain server boots: no drbd module, the volume group inactive.
    await labExecOk(PEER, "touch /var/lib/pmc-lab/plain-boot && sync");
    try {
      await killNode(PEER);
      const r = await pmcTimed<StartResult>(["cluster", "start", "--only", vm.name]);
      const d = r.data.vms[0]!.decision;
      assert.deepEqual([d.kind, d.node, d.degraded, r.data.vms[0]!.result?.status], ["start", HOME, true, "applied"], JSON.stringify(d));
      assert.match(d.reason, new RegExp(`${HOME} has the UpToDate disk; ${PEER} could not be asked`));
      assert.equal(r.code, 3, `the command ran, but ${PEER} could not be asked`);
      assert.equal((await labExecOk(HOME, `virsh domstate ${vm.name}`)).trim(), "running");
      await waitForCounter(HOME, device, counter);
    } finally {
      await startNode(PEER);
      const t0 = Date.now();
      await waitForNode(PEER);
      console.log(`# ${PEER} back after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    assert.equal((await labExecOk(PEER, "grep -c '^drbd ' /proc/modules; true")).trim(), "0", `${PEER} booted without the drbd module`);
    assert.equal((await labExecOk(PEER, `lvs --noheadings -o lv_active ${VOLUME_GROUP}/${vm.name}`)).trim(), "", `${vm.name}'s LV is inactive on ${PEER}`);
    const up = await pmcTimed<DrbdUpResult>(["pm", "drbd-up", PEER, "--only", vm.name]);
    assert.equal(up.code, 0, JSON.stringify(up.data));
    assert.deepEqual(up.data.plan.steps.map((s) => s.command), [`vgchange -ay -- ${VOLUME_GROUP}`, "modprobe drbd", `drbdadm up ${vm.name}`]);
    assert.deepEqual(up.data.resources.map((r) => [r.resource, r.action]), [[vm.name, "brought up"]]);
    await waitFor(`${vm.name} to resync to ${PEER}`, async () => (await drbdDiskStates(HOME, vm.name)).join("/") === "UpToDate/UpToDate", 300_000);
    const again = await pmcTimed<StartResult>(["cluster", "start", "--only", vm.name]);
    assert.deepEqual([again.code, again.data.vms[0]!.decision.kind], [0, "skip"]);
    assert.deepEqual(await domainStates(), ["running", "shut off"], "never on both");
  });
});
