import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, Status } from "@corral/client";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// The TypeScript client: several servers taken in turn, and retries of refused calls.
let a: TestService;
let b: TestService;
beforeAll(async () => {
  a = await startTestService({ CORRAL_METRICS_LISTEN: "127.0.0.1:0" });
  b = await startTestService({ CORRAL_METRICS_LISTEN: "127.0.0.1:0", CORRAL_CONCURRENCY: "1", CORRAL_BACKLOG: "0" });
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

const jobsRun = async (t: TestService): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${t.service.metricsPort}/metrics`)).text();
  return [...text.matchAll(/^corral_jobs_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
};

describe("createClient", () => {
  it("takes several servers in turn", async () => {
    const before = [await jobsRun(a), await jobsRun(b)];
    const client = createClient([a.address, b.address]);
    for (let i = 0; i < 4; i++) await collect(client, job(["true"]));
    client.close();
    expect([(await jobsRun(a)) - before[0]!, (await jobsRun(b)) - before[1]!]).toEqual([2, 2]);
  });

  it("retries a server that is down on the next one", async () => {
    const client = createClient(["127.0.0.1:1", a.address], { retry: { baseMs: 10 } });
    expect((await collect(client, job(["echo", "found one"]))).stdout).toBe("found one\n");
    client.close();
  });

  it("retries a full queue with backoff until there is room", async () => {
    const busy = collect(b.client, job(["sleep", "0.5"])); // b runs one job and queues none
    await new Promise((r) => setTimeout(r, 100));
    await expect(collect(b.client, job(["true"]))).rejects.toMatchObject({ code: 8 });
    const patient = createClient(b.address, { retry: { attempts: 10, baseMs: 50, maxMs: 200 } });
    const r = await collect(patient, job(["echo", "my turn"]));
    expect(r.stdout).toBe("my turn\n");
    expect((await busy).finished.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
    patient.close();
  });

  it("gives up after its attempts, with the server's answer", async () => {
    const client = createClient(["127.0.0.1:1"], { retry: { attempts: 2, baseMs: 10 } });
    await expect(client.serverInfo()).rejects.toMatchObject({ code: 14 });
    client.close();
  });
});
