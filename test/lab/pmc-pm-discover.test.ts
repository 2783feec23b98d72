// pmc pm discover on the real cluster. With a VM mirrored on pm-1 and pm-3 and a pmc.yaml that
// lists only pm-1 and pm-2, pm-3 is a candidate: found as the DRBD peer of that VM on pm-1 and by
// the scan of 10.99.0.0/24, with the fingerprint ssh-keygen gives for pm-3's host key on pm-3
// itself, and the pm add line to paste. The listed nodes and the manager are no candidates, the
// nodes have no avahi-browse (the JSON says so), and pmc.yaml and known_hosts stay as they were.
// Shares the lab with other tests: only `disc-` names, DRBD minors 950-999, ports 9950-9999.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { ensureLabUp, HOST_ADDRESS, knownHostsPath, labExecOk, labNode } from "./lab.ts";
import { labConfigFor, labConfigVariant, pmc, pmcJson } from "./pmc.ts";

const VM = "disc-a";
/** The whole lab: the VM is made and removed with it. */
const fullConfig = labConfigFor("discover", { minors: [950, 999], ports: [9950, 9999] }, "domainType: qemu\n");
/** The lab's pmc.yaml with only pm-1 and pm-2 listed. */
const twoNodes = labConfigVariant("discover-two", (yaml) => yaml.replace(/^ {2}- name: (?!pm-[12]\n)\S+\n {4}address: \S+\n/gm, ""));

interface Discovered {
  candidates: Array<{
    address: string;
    name?: string;
    foundBy: Array<{ source: string; vm?: string; node?: string; subnet?: string }>;
    ssh: { answered: boolean; keyType?: string; fingerprint?: string };
    add?: string;
  }>;
  sources: { mdns: { node: string; status: string }[]; scan: { subnets: string[] } };
}

describe("pmc pm discover on the lab", { timeout: 10 * 60_000 }, () => {
  const pm3 = labNode("pm-3");
  let fingerprint: string;

  before(async () => {
    await ensureLabUp();
    assert.deepEqual([...fs.readFileSync(twoNodes, "utf8").matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]), ["pm-1", "pm-2"]);
    await pmc(["vm", "rm", "-f", VM], { config: fullConfig });
    // "256 SHA256:... root@pm-3 (ED25519)", read on the node itself.
    fingerprint = (await labExecOk("pm-3", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")).split(" ")[1]!;
    const add = await pmc(["vm", "add", "-p", "pm-1", "-p", "pm-3", "-s", "64M", "-m", "64M", "--no-start", VM], { config: fullConfig });
    assert.equal(add.exitCode, 0, add.stderr);
  });

  after(async () => {
    const rm = await pmc(["vm", "rm", "-f", VM], { config: fullConfig });
    assert.equal(rm.exitCode, 0, rm.stderr);
  });

  it("--json: pm-3 is found as the VM's DRBD peer and by the scan, with its own host key; nothing is written", async () => {
    const files = [twoNodes, knownHostsPath].map((f) => [f, fs.readFileSync(f, "utf8")] as const);
    const r = await pmcJson<Discovered>(["pm", "discover"], { config: twoNodes });
    assert.equal(r.code, 0, r.stderr);
    const found = r.data.candidates.find((c) => c.address === pm3.address);
    assert.ok(found, `pm-3 (${pm3.address}) is not among ${JSON.stringify(r.data.candidates)}`);
    assert.equal(found.name, "pm-3");
    // Other lab tests may leave VMs of their own with a copy on pm-3: only this one's entry is asserted.
    assert.deepEqual(found.foundBy.filter((f) => f.vm === VM || f.source === "subnet-scan"), [
      { source: "drbd-peer", vm: VM, node: "pm-1" },
      { source: "subnet-scan", subnet: "10.99.0.0/24" },
    ]);
    assert.deepEqual(found.ssh, { answered: true, keyType: "ssh-ed25519", fingerprint });
    assert.equal(found.add, `pmc pm add pm-3 --address ${pm3.address} --fingerprint ${fingerprint}`);
    const listed = [HOST_ADDRESS, labNode("pm-1").address, labNode("pm-2").address];
    assert.deepEqual(r.data.candidates.filter((c) => listed.includes(c.address)), []);
    assert.deepEqual(r.data.sources.scan.subnets, ["10.99.0.0/24"]);
    assert.deepEqual(r.data.sources.mdns, [{ node: "pm-1", status: "not-installed" }, { node: "pm-2", status: "not-installed" }]);
    for (const [file, text] of files) assert.equal(fs.readFileSync(file, "utf8"), text, `${file} changed`);
  });

  it("for a person: pm-3, how it was found, its key and the command to paste", async () => {
    const r = await pmc(["pm", "discover"], { config: twoNodes });
    assert.equal(r.exitCode, 0, r.stderr);
    const block = r.stdout.split("\n\n").find((b) => b.startsWith(`${pm3.address}  pm-3\n`));
    assert.ok(block, r.stdout);
    assert.match(block, new RegExp(`found by: DRBD peer of VMs? [^;]*\\b${VM}\\b[^;]* on pm-1; answers SSH in 10\\.99\\.0\\.0/24`));
    assert.ok(block.includes(`host key: ssh-ed25519 ${fingerprint}`), block);
    assert.ok(block.includes(`add:      pmc pm add pm-3 --address ${pm3.address} --fingerprint ${fingerprint}`), block);
  });
});
