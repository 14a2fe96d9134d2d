import { credentials, loadPackageDefinition, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProto } from "grpc-health-check";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status } from "@corral/client";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// The service around the jobs: health, reflection and a graceful shutdown.
type Unary = (req: object, cb: (err: Error | null, res: Record<string, unknown>) => void) => void;

function healthClient(address: string): { check: Unary; close(): void } {
  const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, credentials.createInsecure());
  return { check: (client as unknown as { check: Unary }).check.bind(client), close: () => client.close() };
}

const checkHealth = (address: string, service = ""): Promise<string> =>
  new Promise((resolve, reject) => {
    const c = healthClient(address);
    c.check({ service }, (err, res) => {
      c.close();
      if (err) reject(err);
      else resolve(String(res.status));
    });
  });

describe("health and reflection", () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("answers grpc.health.v1 Check with SERVING, for the server and for the service", async () => {
    expect(await checkHealth(t.address)).toBe("SERVING");
    expect(await checkHealth(t.address, "corral.v1.ExecutionService")).toBe("SERVING");
  });

  it("lists its services through server reflection", async () => {
    const reflectionProto = path.resolve(
      "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto",
    );
    const pkg = loadPackageDefinition(loadSync(reflectionProto)) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: ServiceClientConstructor } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(t.address, credentials.createInsecure());
    const call = (
      client as unknown as { serverReflectionInfo(): NodeJS.ReadWriteStream & { end(): void } }
    ).serverReflectionInfo();
    const answer = new Promise<{ listServicesResponse: { service: { name: string }[] } }>((resolve, reject) => {
      call.on("data", resolve);
      call.on("error", reject);
    });
    call.write({ listServices: "" } as never);
    const names = (await answer).listServicesResponse.service.map((s) => s.name);
    call.end();
    client.close();
    expect(names).toEqual(expect.arrayContaining(["corral.v1.ExecutionService", "grpc.health.v1.Health"]));
  });
});

describe("shutdown", () => {
  it("stops taking jobs, lets running ones finish within the grace, then cancels the rest", async () => {
    const t = await startTestService({ CORRAL_CONCURRENCY: "1" });
    const quick = collect(t.client, job(["sh", "-c", "sleep 0.2; echo done"]));
    const slow = collect(t.client, job(["sleep", "30"])); // waits behind quick, then outlives the grace
    await new Promise((r) => setTimeout(r, 100));
    const stopping = t.service.shutdown(1500);
    await new Promise((r) => setTimeout(r, 50));
    expect(await checkHealth(t.address)).toBe("NOT_SERVING");
    await expect(collect(t.client, job(["true"]))).rejects.toMatchObject({ code: 14 }); // UNAVAILABLE
    expect((await quick).stdout).toBe("done\n");
    const cancelled = await slow;
    expect(cancelled.finished.outcome?.status).toBe(Status.STATUS_CANCELLED);
    await stopping;
    expect(await t.leftoverCgroups()).toEqual([]);
    expect(await t.jobCgroups()).toEqual([]); // the spares are gone too
    expect(await t.leftovers()).toEqual([]);
    await t.stop();
  });

  it("ends a job still waiting in the queue with a cancelled outcome that says why", async () => {
    const t = await startTestService({ CORRAL_CONCURRENCY: "1" });
    const running = collect(t.client, job(["sleep", "30"]));
    const waiting = collect(t.client, job(["true"]));
    await new Promise((r) => setTimeout(r, 200));
    await t.service.shutdown(0);
    expect((await running).finished.outcome?.status).toBe(Status.STATUS_CANCELLED);
    expect((await waiting).finished.outcome).toMatchObject({
      status: Status.STATUS_CANCELLED,
      detail: "the server shut down before the job started",
    });
    await t.stop();
  });
});

describe("queue", () => {
  it("tells a waiting job its new place as jobs ahead start, and runs higher priorities first", async () => {
    const t = await startTestService({ CORRAL_CONCURRENCY: "1" });
    const positions = (r: Awaited<ReturnType<typeof collect>>) =>
      r.events.flatMap((e) => (e.event?.$case === "queued" ? [e.event.value.position] : []));
    const first = collect(t.client, job(["sleep", "0.5"]));
    await new Promise((r) => setTimeout(r, 100));
    const order: string[] = [];
    const low = collect(t.client, { ...job(["true"]), priority: -5 }).finally(() => order.push("low"));
    await new Promise((r) => setTimeout(r, 50));
    const high = collect(t.client, { ...job(["true"]), priority: 5 }).finally(() => order.push("high"));
    const [, lowDone, highDone] = await Promise.all([first, low, high]);
    expect(positions(highDone)).toEqual([0]);
    expect(positions(lowDone)).toEqual([0, 1]); // pushed back by the high one (which ran too fast for another update)
    // One job at a time: the high one, queued after the low one, ran (and ended) first.
    expect(order).toEqual(["high", "low"]);
    await t.stop();
  });
});

describe("metrics", () => {
  it("serves Prometheus text with jobs by outcome, rejections, queue gauges and time histograms", async () => {
    const t = await startTestService({ CORRAL_METRICS_LISTEN: "127.0.0.1:0" });
    await collect(t.client, job(["true"]));
    await collect(t.client, job(["sh", "-c", "exit 3"]));
    await collect(t.client, { ...job(["true"]), profile: "nope" }).catch(() => undefined);
    const res = await fetch(`http://127.0.0.1:${t.service.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^corral_jobs_total\{outcome="exited-zero"\} 1$/m);
    expect(text).toMatch(/^corral_jobs_total\{outcome="exited-nonzero"\} 1$/m);
    expect(text).toMatch(/^corral_jobs_rejected_total\{reason="NOT_FOUND"\} 1$/m);
    expect(text).toMatch(/^corral_queue_depth 0$/m);
    expect(text).toMatch(/^corral_jobs_running 0$/m);
    expect(text).toMatch(/^corral_job_latency_seconds_count 2$/m);
    expect(text).toMatch(/^corral_step_run_seconds_count 2$/m);
    expect(text).toMatch(/^corral_sandbox_setup_seconds_count 2$/m);
    expect((await fetch(`http://127.0.0.1:${t.service.metricsPort}/other`)).status).toBe(404);
    await t.stop();
  });

  it("is off by default", async () => {
    const t = await startTestService();
    expect(t.service.metricsPort).toBeUndefined();
    await t.stop();
  });
});
