import { spawn } from "node:child_process";
import { once } from "node:events";
import { credentials, Metadata } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ExecutionServiceClient,
  limits,
  Status,
  Stream,
  type ExecuteRequest,
  type ExecuteResponse,
  type InteractRequest,
  type Step,
} from "@corral/client";
import { CLI } from "../support/cli.js";
import { startTestService, type TestService } from "../support/service.js";

// Interact: the job first, then stdin while the last step runs.
let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => {
  await t?.stop();
});

const step = (argv: string[]): Step => ({ argv, env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] });
const job = (profile: string, ...steps: Step[]): ExecuteRequest => ({ profile, priority: 0, files: [], steps });

// Thinks of 37 and answers each guess on its own line.
const GAME = `
secret = 37
while True:
    guess = int(input())
    if guess == secret:
        print("correct", flush=True)
        break
    print("higher" if guess < secret else "lower", flush=True)
`;

/** Reads stdout lines from an event iterator as they come. */
function lines(events: AsyncIterator<ExecuteResponse>) {
  let pending = "";
  const seen: ExecuteResponse[] = [];
  return {
    seen,
    async next(): Promise<string | undefined> {
      for (;;) {
        const cut = pending.indexOf("\n");
        if (cut >= 0) {
          const line = pending.slice(0, cut);
          pending = pending.slice(cut + 1);
          return line;
        }
        const ev = await events.next();
        if (ev.done) return undefined;
        seen.push(ev.value);
        if (ev.value.event?.$case === "output" && ev.value.event.value.stream === Stream.STREAM_STDOUT)
          pending += Buffer.from(ev.value.event.value.data).toString();
      }
    },
  };
}

describe("Interact", () => {
  it("plays a guessing game: each answer comes back before the next guess is sent", async () => {
    const game = t.client.interact(job("python3", step(["python3", "-c", GAME])));
    const out = lines(game[Symbol.asyncIterator]());
    let low = 0;
    let high = 100;
    const guesses: number[] = [];
    for (;;) {
      const guess = Math.floor((low + high) / 2);
      guesses.push(guess);
      await game.write(Buffer.from(`${guess}\n`));
      const answer = await out.next();
      if (answer === "correct") break;
      if (answer === "higher") low = guess + 1;
      else if (answer === "lower") high = guess - 1;
      else throw new Error(`unexpected answer ${answer}`);
    }
    expect(guesses.at(-1)).toBe(37);
    expect(guesses.length).toBeLessThanOrEqual(7);
    game.closeStdin();
    expect(await out.next()).toBeUndefined();
    const finished = out.seen.at(-1)?.event;
    expect(finished?.$case === "finished" && finished.value.outcome?.status).toBe(Status.STATUS_EXITED_ZERO);
  });

  it("holds the stdin for the last step while an earlier one runs, after that step's own stdin", async () => {
    const request = job("default", step(["sh", "-c", "sleep 0.2; echo built > f"]), step(["sh", "-c", "cat f; cat"]));
    request.steps[1]!.stdin = Buffer.from("own stdin\n");
    const run = t.client.interact(request);
    await run.write(Buffer.from("sent early\n"));
    run.closeStdin();
    let stdout = "";
    for await (const ev of run) if (ev.event?.$case === "output") stdout += Buffer.from(ev.event.value.data).toString();
    expect(stdout).toBe("built\nown stdin\nsent early\n");
  });

  it("is cancelled by the client's signal, program and all", async () => {
    const abort = new AbortController();
    const run = t.client.interact(job("default", step(["sh", "-c", "echo ready; cat"])), { signal: abort.signal });
    const out = lines(run[Symbol.asyncIterator]());
    expect(await out.next()).toBe("ready");
    const cancelled = performance.now();
    abort.abort();
    await expect(out.next()).rejects.toThrow(/CANCELLED/);
    expect(performance.now() - cancelled).toBeLessThan(2000);
    await expect.poll(() => t.leftovers(), { timeout: 5000 }).toEqual([]);
  });

  it("corral run -i passes the terminal's stdin while the program runs", async () => {
    const cli = spawn(
      process.execPath,
      [CLI, "run", "-i", "--server", t.address, "--", "sh", "-c", "read a; echo got $a; read b; echo got $b"],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    let stdout = "";
    cli.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    cli.stdin.write("one\n");
    // The second line goes only once the first answer is back: the program is running.
    await expect.poll(() => stdout, { timeout: 10_000 }).toBe("got one\n");
    cli.stdin.end("two\n");
    const [code] = (await once(cli, "close")) as [number];
    expect(code).toBe(0);
    expect(stdout).toBe("got one\ngot two\n");
  });

  describe("refuses a call that breaks its protocol, naming what is wrong", () => {
    const raw = async (messages: InteractRequest[]): Promise<string> => {
      const c = new ExecutionServiceClient(t.address, credentials.createInsecure());
      const call = c.interact(new Metadata());
      for (const m of messages) call.write(m);
      call.end();
      try {
        for await (const ev of call as AsyncIterable<ExecuteResponse>) void ev;
        return "no error";
      } catch (err) {
        return (err as Error).message;
      } finally {
        c.close();
      }
    };
    const stdin = (s: string): InteractRequest => ({ input: { $case: "stdin", value: Buffer.from(s) } });
    const theJob = (r: ExecuteRequest): InteractRequest => ({ input: { $case: "job", value: r } });

    it("a first message that is not the job", async () => {
      expect(await raw([stdin("x")])).toMatch(/INVALID_ARGUMENT: input: the first message must be the job/);
    });

    it("a second job", async () => {
      const r = job("default", step(["sh", "-c", "cat; sleep 5"]));
      expect(await raw([theJob(r), theJob(r)])).toMatch(
        /INVALID_ARGUMENT: input: only the first message may be the job/,
      );
    });

    it("a job with no step or with test cases", async () => {
      expect(await raw([theJob(job("default"))])).toMatch(/INVALID_ARGUMENT: job\.steps: Interact needs a step/);
      const withTests = job("default", step(["true"]));
      withTests.tests = { argv: ["true"], env: {}, cases: [], runAll: false, parallelism: 0, streamOutput: false };
      expect(await raw([theJob(withTests)])).toMatch(/INVALID_ARGUMENT: job\.tests: Interact runs no test cases/);
    });
  });
});
