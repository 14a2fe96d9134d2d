import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Status } from "./domain.js";

/** What the service counts, in Prometheus' text format. */
export interface Metrics {
  /** A job ended: its deciding outcome, time from admission to the end, and each step's times. */
  jobFinished(
    status: Status,
    latencySeconds: number,
    steps: readonly { runSeconds: number; setupSeconds?: number }[],
  ): void;
  /** A job was refused before it ran, by gRPC status name (queue full, invalid argument...). */
  rejected(reason: string): void;
  /** The text a scrape gets. */
  text(): Promise<string>;
}

/** Creates the metrics; `load` reads the queue's gauges at scrape time. */
export function createMetrics(load: () => { waiting: number; running: number }): Metrics {
  const registry = new Registry();
  const jobs = new Counter({
    name: "corral_jobs_total",
    help: "Jobs ended, by outcome.",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const rejected = new Counter({
    name: "corral_jobs_rejected_total",
    help: "Jobs refused or failed by the service itself, by gRPC status (INTERNAL included).",
    labelNames: ["reason"],
    registers: [registry],
  });
  new Gauge({
    name: "corral_queue_depth",
    help: "Jobs waiting for a slot.",
    registers: [registry],
    collect() {
      this.set(load().waiting);
    },
  });
  new Gauge({
    name: "corral_jobs_running",
    help: "Jobs running now.",
    registers: [registry],
    collect() {
      this.set(load().running);
    },
  });
  const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
  const latency = new Histogram({
    name: "corral_job_latency_seconds",
    help: "From admission to the job's last event, queue wait included.",
    buckets: seconds,
    registers: [registry],
  });
  const run = new Histogram({
    name: "corral_step_run_seconds",
    help: "Wall time of each step.",
    buckets: seconds,
    registers: [registry],
  });
  const setup = new Histogram({
    name: "corral_sandbox_setup_seconds",
    help: "Sandbox set-up a step waited for: from starting nsjail to the program's execve (namespaces, mounts, limits); 0 in a sandbox built ahead.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  return {
    jobFinished(status, latencySeconds, steps) {
      jobs.inc({ outcome: status });
      latency.observe(latencySeconds);
      for (const s of steps) {
        run.observe(s.runSeconds);
        if (s.setupSeconds !== undefined) setup.observe(s.setupSeconds);
      }
    },
    rejected(reason) {
      rejected.inc({ reason });
    },
    text: () => registry.metrics(),
  };
}

/** Serves GET /metrics on `address` (HOST:PORT); resolves to the bound server. */
export async function serveMetrics(address: string, metrics: Metrics): Promise<Server> {
  const cut = address.lastIndexOf(":");
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/metrics") {
      res.writeHead(404).end("not found: GET /metrics\n");
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(address.slice(cut + 1)), address.slice(0, cut).replace(/^\[|\]$/g, ""), resolve);
  });
  return server;
}
