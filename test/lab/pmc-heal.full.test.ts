// pmc cluster heal, unattended: after a power cut of pm-2, heal changes nothing while pm-2 has
// no fence command (exit 1); with one that proves pm-2 down, he-a fails over to pm-3 and runs
// there, and a second run neither fences again nor changes anything (exit 3: pm-2 still down);
// pm-2 started again is rejoined as the resync target; then heal finds the cluster healthy.
// Blank VM (a running QEMU process is what "runs" means). Only `he-` names, DRBD minors
// 450-499, ports 8450-8499. pm-2 is always started again.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  VOLUME_GROUP,
  drbdConnectionState,
  drbdDiskStates,
  drbdRoles,
  ensureLabUp,
  killNode,
  labExec,
  labExecOk,
  nodePid,
  nodePidFile,
  startNode,
  waitFor,
  waitForNode,
} from "./lab.ts";
import { labConfigFor, pmc } from "./pmc.ts";

const t0 = Date.now();
const NODES = ["pm-1", "pm-2", "pm-3"];
const VM = "he-a";
const AUTHORITY = "/var/lib/pmc/authoritative";

const config = labConfigFor("heal", { minors: [450, 499], ports: [8450, 8499] }, "domainType: qemu\n");
/** Every run of pm-2's fence command adds a line here. */
const fenceRuns = path.join(path.dirname(config), "fence-runs");
/** The same, with a fence command for pm-2 that exits 0 only while its QEMU is gone (killNode removes the pid file). */
const fencedConfig = path.join(path.dirname(config), "pmc-fenced.yaml");
const plainYaml = fs.readFileSync(config, "utf8");
const fencedYaml = plainYaml.replace(/^( {2}- name: pm-2\n(?: {4}.*\n)*)/m,
  (entry) => `${entry}    fence: ${JSON.stringify(`test ! -e '${nodePidFile("pm-2")}' && echo "$PMC_NODE" >> '${fenceRuns}'`)}\n`);
if (fencedYaml === plainYaml) throw new Error(`no pm-2 entry in ${config}`);
fs.writeFileSync(fencedConfig, fencedYaml);

async function heal(args: string[], cfg = config): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const start = Date.now();
  const r = await pmc(["cluster", "heal", ...args], { config: cfg });
  console.log(`# pmc cluster heal ${args.join(" ")}: exit ${r.exitCode} in ${((Date.now() - start) / 1000).toFixed(1)} s\n${r.stdout}`);
  return r;
}

async function domState(node: string): Promise<string> {
  const r = await labExec(node, `virsh domstate ${VM}`);
  return r.exitCode === 0 ? r.stdout.trim() : "undefined";
}

/** The QEMU process of he-a on a node, from the process table, not from libvirt. */
async function qemuPid(node: string): Promise<string> {
  return (await labExec(node, `pgrep -f -- '-name guest=${VM},'`)).stdout.trim();
}

const fenced = (): string[] => (fs.existsSync(fenceRuns) ? fs.readFileSync(fenceRuns, "utf8").split("\n").filter(Boolean) : []);

async function cleanup(): Promise<void> {
  await Promise.all(NODES.map((n) => labExec(n,
    `virsh destroy ${VM}; virsh undefine --nvram ${VM}; drbdadm down ${VM}; lvremove -q -y ${VOLUME_GROUP}/${VM}; rm -f /etc/drbd.d/${VM}.res ${AUTHORITY}/${VM}; true`,
    { timeoutMs: 180_000 })));
}

async function ensurePm2(): Promise<void> {
  if (!nodePid("pm-2")) await startNode("pm-2");
  await waitForNode("pm-2", 900_000);
}

describe("cluster heal: fail over a fenced dead node, rejoin it when back", { timeout: 40 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await ensurePm2();
    await cleanup();
    const add = await pmc(["vm", "add", "-p", "pm-2", "-p", "pm-3", "-s", "64M", "-m", "64M", "--no-start", VM], { config });
    assert.equal(add.exitCode, 0, `${add.stdout}\n${add.stderr}`);
    const start = await pmc(["vm", "start", VM], { config });
    assert.equal(start.exitCode, 0, `${start.stdout}\n${start.stderr}`);
    assert.notEqual(await qemuPid("pm-2"), "", "he-a runs on pm-2");
    assert.deepEqual(await drbdRoles("pm-2", VM), ["Primary", "Secondary"]);
  });

  after(async () => {
    await ensurePm2();
    await cleanup();
    console.log(`# pmc-heal.full.test.ts: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  });

  it("pm-2 cut off without a fence command: heal changes nothing, says what to do, exit 1", async () => {
    await killNode("pm-2");
    await waitFor("pm-3 to notice pm-2 is gone", async () => (await drbdConnectionState("pm-3", VM)) !== "Connected", 120_000);
    const r = await heal([]);
    assert.equal(r.exitCode, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /pm-2 does not answer and has no fence command: its VMs [^\n]*\bhe-a\b[^\n]* stay down/);
    assert.match(r.stdout, /make sure it is off, then: pmc pm failover pm-2/);
    assert.deepEqual(await drbdRoles("pm-3", VM), ["Secondary", "Unknown"]);
    assert.equal(await qemuPid("pm-3"), "");
    assert.equal((await labExec("pm-3", `test -e ${AUTHORITY}/${VM}`)).exitCode, 1, "no failover record");
  });

  it("with a fence command that proves pm-2 down: he-a fails over to pm-3; a second run fences nothing more (exit 3)", async () => {
    const dry = await heal(["--dry-run"], fencedConfig);
    assert.equal(dry.exitCode, 3, dry.stderr);
    assert.match(dry.stdout, /pm-2 is fenced first/);
    assert.match(dry.stdout, /\[pm-3\][^\n]*\n\s+\$ drbdadm -- --force primary he-a/);
    assert.deepEqual(fenced(), [], "a dry run does not fence");
    assert.equal(await qemuPid("pm-3"), "");

    const r = await heal([], fencedConfig);
    assert.equal(r.exitCode, 3, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(fenced(), ["pm-2"]);
    assert.deepEqual(await drbdRoles("pm-3", VM), ["Primary", "Unknown"]);
    assert.equal(await domState("pm-3"), "running");
    assert.notEqual(await qemuPid("pm-3"), "");
    assert.match(await labExecOk("pm-3", `cat ${AUTHORITY}/${VM}`), /^pm-2 \d{4}-\d\d-\d\dT/);
    // The audit trail on pm-3: the run's command line, and the forced promotion it made.
    const journal = await labExecOk("pm-3", "journalctl -t pmc -o cat --since=-30min");
    assert.match(journal, /start \(pid \d+, nodes [^)]*\): [^\n]*cluster heal/);
    assert.match(journal, /step \d+\/\d+ exit 0: \$ drbdadm -- --force primary he-a/);

    const again = await heal([], fencedConfig);
    assert.equal(again.exitCode, 3, `${again.stdout}\n${again.stderr}`);
    assert.match(again.stdout, /pm-2 does not answer; no VM to fail over from pm-2/);
    assert.deepEqual(fenced(), ["pm-2"], "not fenced again");
    assert.equal(await domState("pm-3"), "running");
  });

  it("pm-2 back: heal rejoins it (its copy resyncs from pm-3), then finds the cluster healthy", async () => {
    await startNode("pm-2");
    await waitForNode("pm-2", 900_000);
    assert.equal(await qemuPid("pm-2"), "", "pm-2 does not run its stale copy");

    const r = await heal([], fencedConfig);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /pm-2 is back: rejoin it \(he-a\)/);
    assert.deepEqual(await drbdRoles("pm-2", VM), ["Secondary", "Primary"]);
    assert.deepEqual(await drbdDiskStates("pm-2", VM), ["UpToDate", "UpToDate"]);
    assert.equal(await domState("pm-3"), "running", "still runs on the survivor");
    assert.equal(await qemuPid("pm-2"), "");
    assert.equal((await labExec("pm-3", `test -e ${AUTHORITY}/${VM}`)).exitCode, 1, "the failover record is gone");
    assert.deepEqual(fenced(), ["pm-2"], "a node that answers is never fenced");

    const healthy = await heal([]);
    assert.equal(healthy.exitCode, 0, `${healthy.stdout}\n${healthy.stderr}`);
    assert.match(healthy.stdout, /cluster healthy/);
  });
});
