import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits, Status, type ExecuteRequest, type Step } from "@corral/client";
import { collect, startTestService, type TestService } from "../support/service.js";

// Jobs of several steps sharing one working directory: build, then run.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const step = (argv: string[], s: Partial<Step> = {}): Step => ({
  argv,
  env: {},
  stdin: Buffer.alloc(0),
  limits: undefined,
  collect: [],
  ...s,
});
const steps = (...s: Step[]): ExecuteRequest => ({ profile: "default", priority: 0, files: [], steps: s });

describe("multi-step jobs", () => {
  it("runs the steps in order in one workspace, each with its own stdin, events tagged by step", async () => {
    const r = await collect(
      t.client,
      steps(
        step(["sh", "-c", "cat > built.txt; echo built >&2"], { stdin: Buffer.from("artifact\n") }),
        step(["sh", "-c", "cat built.txt; cat"], { stdin: Buffer.from("second stdin\n") }),
      ),
    );
    expect(r.stdout).toBe("artifact\nsecond stdin\n");
    expect(r.stderr).toBe("built\n");
    const tags = r.events.flatMap((e) => {
      const ev = e.event;
      if (ev?.$case === "started") return [`started ${ev.value.stepIndex}`];
      if (ev?.$case === "output") return [`output ${ev.value.stepIndex}`];
      if (ev?.$case === "stepFinished") return [`step-finished ${ev.value.result?.stepIndex}`];
      return [ev?.$case ?? "?"];
    });
    // Output may arrive in one chunk or several: compare with repeats folded.
    const folded = tags.filter((x, i) => x !== tags[i - 1]);
    expect(folded).toEqual([
      "queued",
      "started 0",
      "output 0",
      "step-finished 0",
      "started 1",
      "output 1",
      "step-finished 1",
      "finished",
    ]);
    expect(r.finished.steps.map((s) => s.outcome?.status)).toEqual([
      Status.STATUS_EXITED_ZERO,
      Status.STATUS_EXITED_ZERO,
    ]);
    expect(r.finished.outcome).toMatchObject({ status: Status.STATUS_EXITED_ZERO, stepIndex: 1 });
  });

  it("stops at a failing step: a compile error is the build step's non-zero exit, its stderr streamed", async () => {
    const r = await collect(
      t.client,
      steps(
        step(["sh", "-c", "echo 'main.c:1: error: expected ;' >&2; exit 1"]),
        step(["sh", "-c", "echo must not run"]),
      ),
    );
    expect(r.stderr).toBe("main.c:1: error: expected ;\n");
    expect(r.stdout).toBe("");
    expect(r.finished.outcome).toMatchObject({ status: Status.STATUS_EXITED_NONZERO, exitCode: 1, stepIndex: 0 });
    expect(r.finished.steps).toHaveLength(1);
    expect(r.events.some((e) => e.event?.$case === "started" && e.event.value.stepIndex === 1)).toBe(false);
  });

  it("applies each step's own limits", async () => {
    const r = await collect(
      t.client,
      steps(step(["true"]), step(["sleep", "5"], { limits: limits({ wallTimeMs: 300n }) })),
    );
    expect(r.finished.steps.map((s) => s.outcome?.status)).toEqual([
      Status.STATUS_EXITED_ZERO,
      Status.STATUS_WALL_TIME_LIMIT,
    ]);
    expect(r.finished.outcome).toMatchObject({ status: Status.STATUS_WALL_TIME_LIMIT, stepIndex: 1 });
  });
});
