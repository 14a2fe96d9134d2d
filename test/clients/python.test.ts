import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runTool } from "../support/cli.js";
import { startTestService, type TestService } from "../support/service.js";

// The Python client's own tests (clients/python/tests, pytest), run against a real service on
// loopback started here, with the Python and packages scripts/setup.sh put in .venv.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

it("passes the Python client's tests against a real service", async () => {
  const { code, said } = await runTool(
    path.resolve(".venv/bin/python"),
    ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests"],
    { cwd: path.resolve("clients/python"), env: { CORRAL_TEST_ADDRESS: t.address, PYTHONDONTWRITEBYTECODE: "1" } },
  );
  expect(code, said).toBe(0);
  // Every test ran: none skipped for want of a server.
  expect(said, said).toMatch(/^\d+ passed in /m);
  expect(said).not.toMatch(/skipped/);
}, 120_000);
