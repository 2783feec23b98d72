// Every command that keeps VMs up or backs them up, at least once, on one tiny VM that is never
// booted (a 64 MiB disk, a domain that sits in its firmware: running is all a live migration
// needs), so that `npm test` exercises them all within CI's time. The long scenarios with the
// guest workload (counter checks, interruptions, power cuts) are the *.full.test.ts files.
// Each result is checked on the nodes (virsh, drbdadm, lvs, sha256sum), not in pmc's words.
// Shares the lab with other tests: only `ha-` names, DRBD minors 560-599, ports 9560-9599.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { BACKUP_DIR, VOLUME_GROUP, drbdDiskStates, drbdRoles, ensureLabUp, labExec, labExecOk, waitForConnected } from "./lab.ts";
import { labConfigFor, pmc, pmcJson } from "./pmc.ts";

const VM = "ha-a";
const COPY = "ha-r";
const ALL_NODES = ["pm-1", "pm-2", "pm-3"];
const config = labConfigFor("hacommands", { minors: [560, 599], ports: [9560, 9599] }, "domainType: qemu\n");
const started = Date.now();

async function pmcLogged(args: string[]) {
  const t0 = Date.now();
  const r = await pmc(args, { config });
  console.log(`# pmc ${args.join(" ")}: exit ${r.exitCode} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/** Which nodes hold anything of `name`: domain, LV, resource file or kernel resource. */
async function holders(name: string): Promise<string[]> {
  const found = await Promise.all(ALL_NODES.map(async (node) => {
    const r = await labExec(node, `{ virsh list --all --name; lvs --noheadings -o lv_name ${VOLUME_GROUP}; ls /etc/drbd.d; drbdsetup show | grep '^resource'; } 2>/dev/null | grep -qw -- ${name}`);
    return r.exitCode === 0 ? node : undefined;
  }));
  return found.filter((n): n is string => n !== undefined);
}

async function domstate(node: string, name: string): Promise<string> {
  return (await labExec(node, `virsh domstate ${name}`)).stdout.trim() || "absent";
}

/** sha256 of the first `bytes` bytes of a device on `node`, read with O_DIRECT (an LV under DRBD has a stale page cache). */
async function sha(node: string, device: string, bytes: number): Promise<string> {
  return (await labExecOk(node, `dd if=${device} bs=1M iflag=direct,count_bytes count=${bytes} status=none | sha256sum`)).split(" ")[0]!;
}

async function cleanup(): Promise<void> {
  for (const name of [VM, COPY]) await pmc(["vm", "rm", "-f", name], { config });
  await Promise.all(ALL_NODES.map((n) => labExec(n, [
    `rm -rf ${BACKUP_DIR}/ha-*`,
    `for d in $(virsh list --all --name | grep '^ha-'); do virsh destroy "$d"; virsh undefine --nvram "$d"; done`,
    `for r in $(drbdsetup show 2>/dev/null | sed -n 's/^resource \\(ha-[a-z0-9-]*\\) .*/\\1/p'); do drbdsetup down "$r"; done`,
    "rm -f /etc/drbd.d/ha-*.res",
    `for l in $(lvs --noheadings -o lv_name ${VOLUME_GROUP} | grep '^ *ha-'); do lvremove -q -y ${VOLUME_GROUP}/$l; done`,
    "true",
  ].join("; "), { timeoutMs: 300_000 })));
}

describe("HA and backup commands on the lab, once each", { timeout: 30 * 60_000 }, () => {
  before(async () => {
    await ensureLabUp();
    await cleanup();
    const add = await pmcLogged(["vm", "add", "-p", "pm-1", "-p", "pm-2", "-s", "64M", "-m", "64M", "--no-start", VM]);
    assert.equal(add.exitCode, 0, add.stdout + add.stderr);
    // Known data, written through the Primary: what the backup must give back.
    const device = (await labExecOk("pm-1", `drbdadm sh-dev ${VM}`)).trim();
    await labExecOk("pm-1", `dd if=/dev/urandom of=${device} bs=1M count=8 oflag=direct conv=fsync status=none`);
  });

  after(async () => {
    await cleanup();
    console.log(`# pmc-hacommands.test.ts: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it("backup -b, backup, backup ls, verify, copy, prune --dry-run and restore --to give back the exact bytes", async () => {
    const device = (await labExecOk("pm-1", `drbdadm sh-dev ${VM}`)).trim();
    const bytes = Number((await labExecOk("pm-1", `blockdev --getsize64 ${device}`)).trim());
    const original = await sha("pm-1", device, bytes);
    const full = await pmcJson<Array<{ manifest: { stamp: string; node: string; data: { sha256: string } } }>>(["vm", "backup", "-b", VM], { config });
    assert.equal(full.code, 0, full.stderr);
    const m = full.data[0]!.manifest;
    assert.deepEqual([m.node, m.data.sha256], ["pm-2", original]);
    const inc = await pmcLogged(["vm", "backup", VM]);
    assert.equal(inc.exitCode, 0, inc.stdout + inc.stderr);
    const ls = await pmcJson<Array<{ type: string; node: string }>>(["backup", "ls", VM], { config });
    assert.deepEqual(ls.data.map((r) => [r.type, r.node]), [["full", "pm-2"], ["incremental", "pm-2"]]);
    const verify = await pmcLogged(["backup", "verify", VM]);
    assert.equal(verify.exitCode, 0, verify.stdout + verify.stderr);
    const copy = await pmcLogged(["backup", "copy", VM, "--to", "pm-3"]);
    assert.equal(copy.exitCode, 0, copy.stdout + copy.stderr);
    const onPm3 = await labExecOk("pm-3", `ls ${BACKUP_DIR}/${VM}`);
    assert.match(onPm3, new RegExp(`${m.stamp}\\.base`), `the full image the newest backup needs is on pm-3: ${onPm3}`);
    const before = await labExecOk("pm-2", `ls ${BACKUP_DIR}/${VM}`);
    const prune = await pmcLogged(["backup", "prune", VM, "--keep-full", "1", "--keep-incremental", "0", "--dry-run"]);
    assert.equal(prune.exitCode, 0, prune.stdout + prune.stderr);
    assert.equal(await labExecOk("pm-2", `ls ${BACKUP_DIR}/${VM}`), before, "a dry run deletes nothing");
    const restore = await pmcLogged(["vm", "restore", VM, "--at", m.stamp, "--to", COPY, "-f"]);
    assert.equal(restore.exitCode, 0, restore.stdout + restore.stderr);
    const [holder] = await holders(COPY);
    assert.ok(holder, `${COPY} exists on a node`);
    assert.equal(await sha(holder, `/dev/${VOLUME_GROUP}/${COPY}`, bytes), original, `${COPY} holds ${VM}'s data as backed up`);
    assert.equal((await pmcLogged(["vm", "rm", "-f", COPY])).exitCode, 0);
  });

  it("vm mv live-migrates the running VM to its peer; --cleanup then has nothing to do", async () => {
    await waitForConnected("pm-1", VM);
    const start = await pmcLogged(["vm", "start", VM]);
    assert.equal(start.exitCode, 0, start.stdout + start.stderr);
    const mv = await pmcLogged(["vm", "mv", VM]);
    assert.equal(mv.exitCode, 0, mv.stdout + mv.stderr);
    assert.deepEqual([await domstate("pm-1", VM), await domstate("pm-2", VM)], ["shut off", "running"]);
    assert.deepEqual(await drbdRoles("pm-2", VM), ["Primary", "Secondary"]);
    assert.doesNotMatch(await labExecOk("pm-2", `drbdsetup show ${VM}`), /allow-two-primaries\s+yes/);
    const cleanup = await pmcLogged(["vm", "mv", "--cleanup", VM]);
    assert.equal(cleanup.exitCode, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, /nothing to clean up/);
  });

  it("vm failover and pm failover are refused while the node answers, and change nothing", async () => {
    const vmFailover = await pmcLogged(["vm", "failover", VM]);
    assert.equal(vmFailover.exitCode, 1, vmFailover.stdout + vmFailover.stderr);
    assert.match(vmFailover.stderr, /ha-a runs on pm-2: there is nothing to fail over \[PMC_E_STATE\]\n  hint: to move it: pmc vm mv ha-a/);
    const pmFailover = await pmcLogged(["pm", "failover", "pm-2"]);
    assert.equal(pmFailover.exitCode, 1, pmFailover.stdout + pmFailover.stderr);
    assert.match(pmFailover.stderr, /pm-2 answers SSH: failover is only for a dead node \[PMC_E_NODE_ALIVE\]/);
    assert.deepEqual([await domstate("pm-1", VM), await domstate("pm-2", VM)], ["shut off", "running"]);
    assert.deepEqual(await drbdRoles("pm-1", VM), ["Secondary", "Primary"]);
  });

  it("pm rejoin of a node with nothing stale has nothing to do; pm evacuate --dry-run plans the move and changes nothing; cluster rebalance finds one VM balanced", async () => {
    const rejoin = await pmcLogged(["pm", "rejoin", "pm-1"]);
    assert.equal(rejoin.exitCode, 0, rejoin.stdout + rejoin.stderr);
    const evacuate = await pmcLogged(["pm", "evacuate", "pm-2", "--secondaries", "--to", "pm-3", "--dry-run"]);
    assert.equal(evacuate.exitCode, 0, evacuate.stdout + evacuate.stderr);
    assert.match(evacuate.stdout, new RegExp(`${VM}`));
    // One running VM: moving it to its peer only shifts the load, so nothing lowers the score.
    const rebalance = await pmcLogged(["cluster", "rebalance"]);
    assert.equal(rebalance.exitCode, 0, rebalance.stdout + rebalance.stderr);
    assert.match(rebalance.stdout, /the cluster is balanced/);
    assert.deepEqual([await domstate("pm-1", VM), await domstate("pm-2", VM)], ["shut off", "running"]);
    assert.deepEqual(await holders(VM), ["pm-1", "pm-2"]);
  });

  it("vm peer-recreate pm-3 moves the standby copy while the VM runs: nothing of it stays on pm-1", async () => {
    const t0 = Date.now();
    const r = await pmcLogged(["vm", "peer-recreate", "pm-3", VM]);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    console.log(`# peer-recreate of a 64 MiB disk: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(await holders(VM), ["pm-2", "pm-3"]);
    assert.equal(await domstate("pm-2", VM), "running");
    assert.deepEqual(await drbdDiskStates("pm-3", VM), ["UpToDate", "UpToDate"]);
    assert.deepEqual(await drbdRoles("pm-3", VM), ["Secondary", "Primary"]);
  });

  it("pmc log shows what happened to the VM, from the nodes' journals", async () => {
    const log = await pmcJson<Array<{ node: string; text: string }>>(["log", VM, "--since=-1h"], { config });
    assert.equal(log.code, 0, log.stderr);
    for (const command of ["vm add", "vm backup", "vm mv", "vm peer-recreate"]) {
      assert.ok(log.data.some((e) => e.text.includes(`pmc ${command}`)), `${command} in the log`);
    }
  });
});
