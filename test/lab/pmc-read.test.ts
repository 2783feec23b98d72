// pmc's read side on the real cluster: pm ls, vm ls, vm info and cluster verify, including a
// VM made by hand exactly the way the old bash tool made it (old-format .res with a minor and
// port derived from an IP, allow-two-primaries on), and a wrong host key for pm-1.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  createDrbdResource,
  ensureLabUp,
  guestDomainXml,
  knownHostsPath,
  labExec,
  labExecOk,
  removeDrbdResource,
  writeNodeFile,
  type DrbdResourceSpec,
} from "./lab.ts";
import { labConfigVariant, pmc, pmcJson } from "./pmc.ts";

// The old tool: VM IP 10.99.1.244 -> MAC 52:54:00:01:01:f4 -> minor 0x01f4 = 500, port 7778 + 500.
const old: DrbdResourceSpec = { name: "read-old", minor: 500, port: 8278, nodes: ["pm-1", "pm-2"] };

async function cleanup(): Promise<void> {
  await Promise.all(old.nodes.map((n) => labExec(n, `virsh destroy ${old.name} >/dev/null 2>&1; virsh undefine ${old.name} >/dev/null 2>&1; true`)));
  await removeDrbdResource(old);
}

describe("pmc read commands on the lab", { timeout: 900000 }, () => {
  before(async () => {
    await ensureLabUp();
    await cleanup();
    const device = await createDrbdResource(old, 64);
    const xml = guestDomainXml({ name: old.name, disk: device, memoryMiB: 64 }).replace(
      "<memballoon",
      "<interface type='bridge'><mac address='52:54:00:01:01:f4'/><source bridge='br0'/><model type='virtio'/></interface>\n    <memballoon",
    );
    await writeNodeFile("pm-1", `/root/${old.name}.xml`, xml);
    await labExecOk("pm-1", `virsh define /root/${old.name}.xml && virsh start ${old.name}`);
    const inactive = await labExecOk("pm-1", `virsh dumpxml --inactive --security-info ${old.name}`);
    await writeNodeFile("pm-2", `/root/${old.name}.xml`, inactive);
    await labExecOk("pm-2", `virsh define /root/${old.name}.xml`);
  });

  after(cleanup);

  it("pm ls --json: every node reachable, with its DRBD version, memory and VG", async () => {
    const { code, data } = await pmcJson<Array<{ name: string; reachable: boolean; drbd: { kernelVersion: string; utilsVersion: string }; vg: { name: string; sizeBytes: number }; memoryTotalBytes: number; running: { name: string }[]; vms: string[] }>>(["pm", "ls"]);
    assert.equal(code, 0);
    assert.deepEqual(data.map((n) => [n.name, n.reachable]), [["pm-1", true], ["pm-2", true], ["pm-3", true]]);
    for (const node of data) {
      assert.match(node.drbd.kernelVersion, /^8\.4\.\d+$/);
      assert.match(node.drbd.utilsVersion, /^9\.\d+\.\d+$/);
      assert.equal(node.vg.name, "vg-pmc");
      assert.ok(node.vg.sizeBytes >= 4 * 1024 ** 3);
      assert.ok(node.memoryTotalBytes > 0);
    }
    assert.ok(data[0]!.running.some((v) => v.name === old.name));
    assert.ok(data[1]!.vms.includes(old.name));
    assert.ok(!data[2]!.vms.includes(old.name));
  });

  it("vm ls reads the old tool's VM: where it runs, its peer, minor, port, replication", async () => {
    const { code, data } = await pmcJson<Array<{ name: string; node: string; peer: string; state: string; minor: number; port: number; memoryBytes: number; diskBytes: number; replication: { disks: string; roles: string; connection: string }; flags: string[]; uuid: string }>>(["vm", "ls", old.name]);
    assert.equal(code, 0);
    const vm = data[0]!;
    assert.equal(vm.node, "pm-1");
    assert.equal(vm.peer, "pm-2");
    assert.equal(vm.state, "running");
    assert.equal(vm.minor, 500);
    assert.equal(vm.port, 8278);
    assert.equal(vm.memoryBytes, 64 * 1024 ** 2);
    assert.ok(vm.diskBytes > 60 * 1024 ** 2 && vm.diskBytes <= 64 * 1024 ** 2, String(vm.diskBytes));
    assert.deepEqual(vm.replication, { ...vm.replication, disks: "UpToDate/UpToDate", roles: "Primary/Secondary", connection: "Connected" });
    assert.deepEqual(vm.flags, []);
    const uuid2 = (await labExecOk("pm-2", `virsh domuuid ${old.name}`)).trim();
    assert.equal(vm.uuid, uuid2);

    const table = await pmc(["vm", "ls", old.name, "-o", "name,node,peer,state,minor,port,repl", "--no-headers"]);
    assert.equal(table.stdout.trim().replace(/\s+/g, " "), "read-old pm-1 pm-2 running 500 8278 UpToDate/UpToDate");
  });

  it("vm info shows both nodes' view", async () => {
    const r = await pmc(["vm", "info", old.name]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /Node pm-1\n\s+domain: running/);
    assert.match(r.stdout, /Node pm-2\n\s+domain: shut off/);
    assert.match(r.stdout, /resource: read-old minor 500 port 8278 device \/dev\/drbd500 on \/dev\/vg-pmc\/read-old/);
  });

  it("cluster verify: the old tool's permanent allow-two-primaries is a warning, nothing else about it", async () => {
    const { data } = await pmcJson<{ findings: Array<{ code: string; severity: string; vm?: string }> }>(["cluster", "verify"]);
    const mine = data.findings.filter((f) => f.vm === old.name);
    assert.deepEqual(mine.map((f) => [f.code, f.severity]), [["PMC_V_DRBD_TWO_PRIMARIES_ALLOWED", "warning"]]);
  });

  it("cluster verify sees a VM defined on one node only, and running twice is impossible to miss", async () => {
    await labExecOk("pm-2", `virsh undefine ${old.name}`);
    try {
      const { code, data } = await pmcJson<{ findings: Array<{ code: string; node?: string; vm?: string }> }>(["cluster", "verify"]);
      assert.equal(code, 1);
      assert.ok(data.findings.some((f) => f.code === "PMC_V_VM_DEFINED_ON_ONE" && f.vm === old.name && f.node === "pm-2"));
    } finally {
      await labExecOk("pm-2", `virsh define /root/${old.name}.xml`);
    }
  });

  it("a known_hosts with a wrong key for pm-1 makes every command refuse pm-1, mutating ones too, with nothing changed", async () => {
    const lines = fs.readFileSync(knownHostsPath, "utf8").split("\n");
    const pm2Key = lines.find((l) => l.startsWith("pm-2,") && l.includes("ssh-ed25519"))!.split(" ").slice(1).join(" ");
    const forged = lines.map((l) => (l.startsWith("pm-1,") ? `${l.split(" ")[0]} ${pm2Key}` : l)).join("\n");
    const config = labConfigVariant("wrongkey", (yaml) => yaml.replace(knownHostsPath, `${knownHostsPath}.wrong`));
    fs.writeFileSync(`${knownHostsPath}.wrong`, forged);
    try {
      const pm = await pmcJson<Array<{ name: string; reachable: boolean; error?: string }>>(["pm", "ls"], { config });
      assert.equal(pm.code, 3);
      assert.deepEqual(pm.data.map((n) => [n.name, n.reachable]), [["pm-1", false], ["pm-2", true], ["pm-3", true]]);
      assert.match(pm.data[0]!.error!, /pm-1.*changed/i);
      const vm = await pmc(["vm", "ls"], { config });
      assert.equal(vm.exitCode, 3);
      assert.match(vm.stderr, /pm-1.*changed/i);
      assert.doesNotMatch(vm.stderr, /\n\s+at /);
      const verify = await pmcJson<{ findings: Array<{ code: string; node?: string }> }>(["cluster", "verify"], { config });
      assert.equal(verify.code, 1);
      assert.ok(verify.data.findings.some((f) => f.code === "PMC_V_NODE_UNREACHABLE" && f.node === "pm-1"));

      // Mutating commands, planned (--dry-run) and for real: refused, and nothing changes on any node.
      for (const dryRun of [["--dry-run"], []]) {
        // pm-1 cannot be asked: nothing is done there, and the exit code says some node was not asked.
        const destroy = await pmc(["vm", "destroy", "-f", ...dryRun, old.name], { config });
        assert.ok([1, 3].includes(destroy.exitCode), `vm destroy ${dryRun}: exit ${destroy.exitCode}: ${destroy.stdout}\n${destroy.stderr}`);
        assert.match(destroy.stderr, /pm-1: REMOTE HOST IDENTIFICATION HAS CHANGED/);
        assert.doesNotMatch(destroy.stderr, /\n\s+at /);
        const add = await pmc(["vm", "add", ...dryRun, "-p", "pm-1", "-p", "pm-2", "-s", "1", "-m", "64M", "read-hostkey"], { config });
        assert.equal(add.exitCode, 1, `vm add ${dryRun}: ${add.stdout}\n${add.stderr}`);
        assert.match(add.stderr, /pm-1/);
        assert.doesNotMatch(add.stderr, /\n\s+at /);
      }
      assert.equal((await labExecOk("pm-1", `virsh domstate ${old.name}`)).trim(), "running", "the VM still runs on pm-1");
      for (const node of ["pm-1", "pm-2", "pm-3"]) {
        const traces = await labExecOk(node, "{ virsh list --all --name; lvs --noheadings -o lv_name; ls /etc/drbd.d; } 2>/dev/null | grep read-hostkey; true");
        assert.equal(traces.trim(), "", `${node} holds nothing of read-hostkey`);
      }
    } finally {
      fs.rmSync(`${knownHostsPath}.wrong`, { force: true });
    }
  });
});
