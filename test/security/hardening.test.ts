import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// What a job finds around it: no capabilities, no_new_privs, seccomp on, no core dumps, a /dev
// with five devices, a /proc that does not leak the host.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const inside = async (script: string): Promise<string> => (await collect(t.client, job(["sh", "-c", script]))).stdout;

describe("hardening, seen from inside a job", () => {
  it("holds no capability, runs with no_new_privs and a seccomp filter", async () => {
    const status = await inside("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status");
    for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"])
      expect(status).toMatch(new RegExp(`^${cap}:\\s+0{16}$`, "m"));
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
  });

  it("cannot dump core", async () => {
    expect(await inside("ulimit -c")).toBe("0\n");
  });

  it("has only null, zero, full, random and urandom in /dev", async () => {
    expect(await inside("ls -A /dev")).toBe("full\nnull\nrandom\nurandom\nzero\n");
  });

  it("keeps no supplementary group but the service user's own", async () => {
    const groups = (await inside("grep '^Groups:' /proc/self/status"))
      .replace("Groups:", "")
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    expect(
      groups.every((g) => g === String(process.getgid?.()) || g === "65534"),
      groups.join(" "),
    ).toBe(true);
  });

  it("masks the host's kernel command line and symbols in /proc, read-only", async () => {
    const host = await readFile("/proc/cmdline", "utf8");
    expect(host.length).toBeGreaterThan(0);
    expect(await inside("wc -c < /proc/cmdline; wc -c < /proc/kallsyms; touch /proc/x 2>/dev/null || echo ro")).toBe(
      "0\n0\nro\n",
    );
  });
});
