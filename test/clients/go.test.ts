import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runTool } from "../support/cli.js";
import { startTestService, type TestService } from "../support/service.js";

// The Go client's own tests (clients/go, go test), run against a real service on loopback
// started here, with the Go toolchain Debian ships (/usr/bin/go, installed by scripts/setup.sh).
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

it("passes the Go client's tests against a real service", async () => {
  const { code, said } = await runTool("/usr/bin/go", ["test", "-count=1", "-v", "./..."], {
    cwd: path.resolve("clients/go"),
    env: { CORRAL_TEST_ADDRESS: t.address, GOFLAGS: "-mod=readonly" },
  });
  expect(code, said).toBe(0);
  // Every test ran: none skipped for want of a server.
  expect(said).toMatch(/^--- PASS: TestRunGathersOutputAndOutcome/m);
  expect(said).not.toMatch(/--- SKIP/);
}, 300_000);
