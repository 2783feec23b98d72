// When a node fails: pmc vm failover after a power cut of pm-1 (refused while pm-1 answers, and
// for a VM whose peer was disconnected before the cut), pm-1 started again never becomes Primary
// nor runs the VM, pmc pm rejoin resyncs it as the target; pm drbd-up and cluster start leave an
// ignored VM's resource down. Every check reads the nodes (/proc/drbd, drbdadm, virsh, files).
// Blank VMs: a running QEMU process is what "runs" means here. Only `fo-` names (and
// `ignore-fo-d`), DRBD minors 600-649, ports 9600-9649. pm-1 is always started again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  VOLUME_GROUP,
  createDrbdResource,
  drbdConnectionState,
  drbdDiskStates,
  drbdRoles,
  ensureLabUp,
  killNode,
  labExec,
  labExecOk,
  nodePid,
  startNode,
  waitFor,
  waitForNode,
} from "./lab.ts";
import { labConfigFor, pmc } from "./pmc.ts";

const t0 = Date.now();
const NODES = ["pm-1", "pm-2", "pm-3"];
const VMS = ["fo-a", "fo-b"];
const ignored = { name: "ignore-fo-d", minor: 649, port: 9649, nodes: ["pm-3", "pm-2"] as [string, string] };
const AUTHORITY = "/var/lib/pmc/authoritative";

const config = labConfigFor("failover", { minors: [600, 648], ports: [9600, 9648] }, "domainType: qemu\n");

async function pmcTimed(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const start = Date.now();
  const r = await pmc(args, { config });
  console.log(`# pmc ${args.join(" ")}: exit ${r.exitCode} in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return r;
}

async function domState(node: string, name: string): Promise<string> {
  const r = await labExec(node, `virsh domstate ${name}`);
  return r.exitCode === 0 ? r.stdout.trim() : "undefined";
}

/** The QEMU process of a domain on a node (its pid), from the process table, not from libvirt. */
async function qemuPid(node: string, name: string): Promise<string> {
  return (await labExec(node, `pgrep -f -- '-name guest=${name},'`)).stdout.trim();
}

/** The /proc/drbd line of a minor, e.g. "600: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----". */
async function procDrbd(node: string, minor: string): Promise<string> {
  const text = await labExecOk(node, "cat /proc/drbd");
  return text.split("\n").find((l) => l.trim().startsWith(`${minor}:`))?.trim() ?? "absent";
}

async function cleanup(): Promise<void> {
  const names = [...VMS, ignored.name];
  await Promise.all(NODES.map((n) => labExec(n, names.map((v) =>
    `virsh destroy ${v}; virsh undefine --nvram ${v}; drbdadm down ${v}; lvremove -q -y ${VOLUME_GROUP}/${v}; rm -f /etc/drbd.d/${v}.res ${AUTHORITY}/${v}`,
  ).join("; ") + "; true", { timeoutMs: 180_000 })));
}

async function ensurePm1(): Promise<void> {
  if (!nodePid("pm-1")) await startNode("pm-1");
  await waitForNode("pm-1", 900_000);
}

describe("when a node fails: vm failover, pm rejoin, ignored VMs left down", { timeout: 40 * 60_000 }, () => {
  let minorA = "";

  before(async () => {
    await ensureLabUp();
    await ensurePm1();
    await cleanup();
    for (const vm of VMS) {
      const r = await pmcTimed(["vm", "add", "-p", "pm-1", "-p", "pm-2", "-s", "32M", "-m", "64M", vm]);
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    }
    minorA = (await labExecOk("pm-2", "drbdadm sh-minor fo-a")).trim();
  });

  after(async () => {
    await ensurePm1();
    await cleanup();
    console.log(`# pmc-failover.full.test.ts: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  it("pm drbd-up and cluster start leave the resource of an ignored VM down", async () => {
    await createDrbdResource(ignored, 8);
    await labExecOk("pm-3", `drbdadm down ${ignored.name}`);
    const up = await pmcTimed(["pm", "drbd-up", "pm-3", "--only", ignored.name]);
    assert.equal(up.exitCode, 0, `${up.stdout}\n${up.stderr}`);
    assert.match(up.stdout, /ignore-fo-d\s+ignored/);
    assert.equal(await procDrbd("pm-3", String(ignored.minor)), "absent", "still down on pm-3");
    const start = await pmcTimed(["cluster", "start", "--dry-run", "--only", ignored.name]);
    assert.doesNotMatch(start.stdout, /drbdadm up ignore-fo-d/);
    assert.equal(await procDrbd("pm-3", String(ignored.minor)), "absent");
  });

  it("vm failover is refused while pm-1 answers; nothing changes on pm-2", async () => {
    const r = await pmcTimed(["vm", "failover", "--yes-node-is-down", "pm-1", "fo-a"]);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /fo-a runs on pm-1.*\[PMC_E_STATE\]|\[PMC_E_NODE_ALIVE\]/);
    assert.deepEqual(await drbdRoles("pm-2", "fo-a"), ["Secondary", "Primary"]);
    assert.equal((await labExec("pm-2", `test -e ${AUTHORITY}/fo-a`)).exitCode, 1);
  });

  it("after a power cut of pm-1: refused for fo-b (disconnected before), fo-a starts on pm-2 with the typed confirmation", async () => {
    // fo-b's standby is cut off before the cut: its copy misses what pm-1 writes afterwards.
    await labExecOk("pm-2", "drbdadm disconnect fo-b");
    assert.equal(await qemuPid("pm-1", "fo-a") !== "", true, "fo-a runs on pm-1 before the cut");
    await killNode("pm-1");
    await waitFor("pm-2 to notice pm-1 is gone", async () => (await drbdConnectionState("pm-2", "fo-a")) !== "Connected", 120_000);
    console.log(`# pm-2 after the cut:\n${await labExecOk("pm-2", `cat /proc/drbd; drbdsetup events2 --now --statistics fo-a; dmesg | grep -F -e 'conn( Connected -> ' | tail -n 4`)}`);

    const b = await pmcTimed(["vm", "failover", "--yes-node-is-down", "pm-1", "fo-b"]);
    assert.equal(b.exitCode, 1, `${b.stdout}\n${b.stderr}`);
    assert.match(b.stderr, /StandAlone.*\[PMC_E_STATE\]/);
    assert.deepEqual(await drbdRoles("pm-2", "fo-b"), ["Secondary", "Unknown"]);
    assert.equal(await qemuPid("pm-2", "fo-b"), "");

    const noTty = await pmcTimed(["vm", "failover", "fo-a"]);
    assert.notEqual(noTty.exitCode, 0);
    assert.match(noTty.stderr, /\[PMC_E_CONFIRM\][\s\S]*--yes-node-is-down pm-1/);
    assert.deepEqual(await drbdRoles("pm-2", "fo-a"), ["Secondary", "Unknown"], "nothing changed without the confirmation");

    const dry = await pmcTimed(["vm", "failover", "--dry-run", "fo-a"]);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /drbdadm -- --force primary fo-a/);

    const a = await pmcTimed(["vm", "failover", "--yes-node-is-down", "pm-1", "fo-a"]);
    assert.ok(a.exitCode === 0 || a.exitCode === 3, `${a.stdout}\n${a.stderr}`);
    assert.deepEqual(await drbdRoles("pm-2", "fo-a"), ["Primary", "Unknown"]);
    assert.match(await procDrbd("pm-2", minorA), /ro:Primary\/Unknown ds:UpToDate\/DUnknown/);
    assert.equal(await domState("pm-2", "fo-a"), "running");
    assert.notEqual(await qemuPid("pm-2", "fo-a"), "");
    assert.match(await labExecOk("pm-2", `cat ${AUTHORITY}/fo-a`), /^pm-1 \d{4}-\d\d-\d\dT/);

    const ls = await pmc(["vm", "ls", "fo-a", "--json"], { config });
    assert.match(ls.stdout, /stale-copy/);
    const verify = await pmc(["cluster", "verify", "--json"], { config });
    assert.match(verify.stdout, /PMC_V_DRBD_STALE_COPY[\s\S]*pmc pm rejoin pm-1/);
  });

  it("pm-1 started again never becomes Primary nor runs fo-a; pm rejoin pm-1 resyncs it as the target", async () => {
    await startNode("pm-1");
    await waitForNode("pm-1", 900_000);
    assert.notEqual(await domState("pm-1", "fo-a"), "running");
    assert.equal(await qemuPid("pm-1", "fo-a"), "");
    assert.doesNotMatch(await procDrbd("pm-1", minorA), /ro:Primary/);
    const start = await pmcTimed(["cluster", "start", "--dry-run", "--only", "fo-a"]);
    assert.doesNotMatch(start.stdout, /would start.*on pm-1/);

    const dry = await pmcTimed(["pm", "rejoin", "--dry-run", "pm-1"]);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /\[pm-1\][^\n]*\n\s+\$ drbdadm -- --discard-my-data connect fo-a/);
    assert.doesNotMatch(dry.stdout, /\[pm-2\][^\n]*\n\s+\$ drbdadm -- --discard-my-data/);

    const r = await pmcTimed(["pm", "rejoin", "pm-1"]);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    const pm1 = await procDrbd("pm-1", minorA);
    const pm2 = await procDrbd("pm-2", minorA);
    console.log(`# after rejoin: pm-1 ${pm1}; pm-2 ${pm2}`);
    assert.match(pm1, /cs:Connected ro:Secondary\/Primary ds:UpToDate\/UpToDate/);
    assert.match(pm2, /cs:Connected ro:Primary\/Secondary ds:UpToDate\/UpToDate/);
    assert.deepEqual(await drbdDiskStates("pm-1", "fo-a"), ["UpToDate", "UpToDate"]);
    assert.equal(await domState("pm-2", "fo-a"), "running", "still runs on the survivor");
    assert.equal(await qemuPid("pm-1", "fo-a"), "");
    assert.equal((await labExec("pm-2", `test -e ${AUTHORITY}/fo-a`)).exitCode, 1, "the failover record is gone");
    // The kernel on pm-1 says it was the resync target.
    assert.match(await labExecOk("pm-1", `dmesg | grep -F 'drbd${minorA}:' | grep -F 'SyncTarget' | tail -n 1`), /SyncTarget/);

    // Back where it was: a live migration to the rejoined node.
    const back = await pmcTimed(["vm", "mv", "fo-a"]);
    assert.equal(back.exitCode, 0, `${back.stdout}\n${back.stderr}`);
    assert.equal(await domState("pm-1", "fo-a"), "running");
    assert.deepEqual(await drbdRoles("pm-1", "fo-a"), ["Primary", "Secondary"]);
  });
});
