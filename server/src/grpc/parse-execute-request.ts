import type { ExecuteRequest, Limits as ProtoLimits } from "@corral/proto/corral/v1";
import { InvalidArgumentError } from "../errors.js";
import {
  LIMIT_FIELDS,
  type Comparison,
  type InputFile,
  type JobRequest,
  type LimitName,
  type RequestedLimits,
  type StepRequest,
  type TestSuiteRequest,
} from "../domain.js";
import { Comparison as ProtoComparison } from "@corral/proto/corral/v1";

/** Caps on a request's shape, independent of any profile. */
const REQUEST_CAPS = {
  files: 1000,
  fileBytes: 64 * 1024 * 1024,
  pathBytes: 4096,
  nameBytes: 255,
  argv: 4096,
  env: 1024,
  steps: 16,
  collect: 64,
  priority: 10,
  cases: 1000,
} as const;

const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Control characters (newlines among them) would let a name forge lines of nsjail's log. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f]/;

const fail = (field: string, problem: string): never => {
  throw new InvalidArgumentError(field, problem);
};

/** Checks a file path: relative, no `..`, `.` or empty components, no NUL, within length caps. */
function checkFilePath(p: string, field: string): void {
  if (p === "") fail(field, "must not be empty");
  if (CONTROL.test(p)) fail(field, "must not contain NUL, newlines or other control characters");
  if (p.startsWith("/")) fail(field, `'${p}' is absolute; give a path relative to the working directory`);
  if (Buffer.byteLength(p) > REQUEST_CAPS.pathBytes) fail(field, `longer than ${REQUEST_CAPS.pathBytes} bytes`);
  for (const part of p.split("/")) {
    if (part === "..") fail(field, `'${p}' has a '..' component`);
    if (part === "" || part === ".") fail(field, `'${p}' has an empty or '.' component`);
    if (Buffer.byteLength(part) > REQUEST_CAPS.nameBytes)
      fail(field, `a name in '${p}' is longer than ${REQUEST_CAPS.nameBytes} bytes`);
  }
}

function parseFiles(files: ExecuteRequest["files"]): InputFile[] {
  if (files.length > REQUEST_CAPS.files) fail("files", `${files.length} files; at most ${REQUEST_CAPS.files}`);
  let total = 0;
  const seen = new Set<string>();
  const parsed = files.map((f, i) => {
    const field = `files[${i}]`;
    checkFilePath(f.path, `${field}.path`);
    if (seen.has(f.path)) fail(`${field}.path`, `'${f.path}' is given twice`);
    seen.add(f.path);
    if (f.mode > 0o777) fail(`${field}.mode`, `0${f.mode.toString(8)} has bits above 0777`);
    total += f.content.length;
    if (total > REQUEST_CAPS.fileBytes)
      fail(`${field}.content`, `files add up to more than ${REQUEST_CAPS.fileBytes} bytes`);
    return { path: f.path, content: f.content, mode: f.mode === 0 ? 0o644 : f.mode };
  });
  // A file may not also be a directory of another ("a" and "a/b"): check every parent path.
  parsed.forEach((f, i) => {
    for (let cut = f.path.indexOf("/"); cut > 0; cut = f.path.indexOf("/", cut + 1)) {
      const parent = f.path.slice(0, cut);
      if (seen.has(parent)) fail(`files[${i}].path`, `'${parent}' is a file, so it cannot hold '${f.path}'`);
    }
  });
  return parsed;
}

function toNumber(v: bigint | number, field: string): number | undefined {
  if (v === 0 || v === 0n) return undefined;
  if (BigInt(v) > BigInt(Number.MAX_SAFE_INTEGER))
    fail(field, `${v} is too large (at most ${Number.MAX_SAFE_INTEGER})`);
  return Number(v);
}

function parseLimits(l: ProtoLimits | undefined, field: string): RequestedLimits {
  const out: Partial<Record<LimitName, number>> = {};
  if (!l) return out;
  for (const [key, wire] of Object.entries(LIMIT_FIELDS) as [LimitName, string][]) {
    const value = toNumber(l[key], `${field}.${wire}`);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function checkArgv(argv: readonly string[], field: string): void {
  if (argv.length === 0) fail(field, "must name a program");
  if (argv.length > REQUEST_CAPS.argv) fail(field, `${argv.length} entries; at most ${REQUEST_CAPS.argv}`);
  if (argv[0] === "") fail(`${field}[0]`, "must not be empty");
  if (CONTROL.test(argv[0]!)) fail(`${field}[0]`, "must not contain newlines or other control characters");
  argv.forEach((a, j) => a.includes("\0") && fail(`${field}[${j}]`, "must not contain NUL"));
}

function checkEnv(env: Readonly<Record<string, string>>, field: string): void {
  const vars = Object.entries(env);
  if (vars.length > REQUEST_CAPS.env) fail(field, `${vars.length} variables; at most ${REQUEST_CAPS.env}`);
  for (const [k, v] of vars) {
    if (!ENV_NAME.test(k))
      fail(field, `'${k}' is not a variable name (letters, digits and _, not starting with a digit)`);
    if (v.includes("\0")) fail(`${field}[${k}]`, "must not contain NUL");
  }
}

function parseStep(s: ExecuteRequest["steps"][number], i: number): StepRequest {
  const field = `steps[${i}]`;
  checkArgv(s.argv, `${field}.argv`);
  checkEnv(s.env, `${field}.env`);
  if (s.collect.length > REQUEST_CAPS.collect)
    fail(`${field}.collect`, `${s.collect.length} paths; at most ${REQUEST_CAPS.collect}`);
  s.collect.forEach((p, j) => checkFilePath(p, `${field}.collect[${j}]`));
  return {
    argv: s.argv,
    env: s.env,
    stdin: s.stdin,
    limits: parseLimits(s.limits, `${field}.limits`),
    collect: s.collect,
  };
}

const COMPARISON: Record<ProtoComparison, Comparison | undefined> = {
  [ProtoComparison.COMPARISON_UNSPECIFIED]: "exact",
  [ProtoComparison.COMPARISON_EXACT]: "exact",
  [ProtoComparison.COMPARISON_IGNORE_TRAILING_WHITESPACE]: "ignore-trailing-whitespace",
  [ProtoComparison.UNRECOGNIZED]: undefined,
};

function parseTests(t: NonNullable<ExecuteRequest["tests"]>): TestSuiteRequest {
  if (t.cases.length === 0) fail("tests.cases", "must hold at least one case");
  if (t.cases.length > REQUEST_CAPS.cases)
    fail("tests.cases", `${t.cases.length} cases; at most ${REQUEST_CAPS.cases}`);
  checkArgv(t.argv, "tests.argv");
  checkEnv(t.env, "tests.env");
  const comparison = COMPARISON[t.checker?.comparison ?? ProtoComparison.COMPARISON_UNSPECIFIED];
  if (comparison === undefined) fail("tests.checker.comparison", "is not a known Comparison");
  const checker = t.checker?.argv.length
    ? (checkArgv(t.checker.argv, "tests.checker.argv"),
      { argv: t.checker.argv, limits: parseLimits(t.checker.limits, "tests.checker.limits") })
    : undefined;
  const cases = t.cases.map((c, i) => {
    const field = `tests.cases[${i}]`;
    if (CONTROL.test(c.name)) fail(`${field}.name`, "must not contain NUL, newlines or other control characters");
    if (Buffer.byteLength(c.name) > REQUEST_CAPS.nameBytes)
      fail(`${field}.name`, `longer than ${REQUEST_CAPS.nameBytes} bytes`);
    if (c.stdinFile !== "") {
      checkFilePath(c.stdinFile, `${field}.stdin_file`);
      if (c.stdin.length > 0) fail(`${field}.stdin_file`, "give stdin or stdin_file, not both");
    }
    return {
      name: c.name,
      stdin: c.stdin,
      ...(c.stdinFile !== "" && { stdinFile: c.stdinFile }),
      expected: c.expectedOutput,
      limits: parseLimits(c.limits, `${field}.limits`),
    };
  });
  return {
    argv: t.argv,
    env: t.env,
    limits: parseLimits(t.limits, "tests.limits"),
    comparison: comparison!,
    ...(checker && { checker }),
    cases,
    runAll: t.runAll,
    parallelism: Math.max(1, t.parallelism),
    streamOutput: t.streamOutput,
  };
}

/** Turns the wire request into a checked domain request, naming the first bad field. Pure. */
export function parseExecuteRequest(req: ExecuteRequest): JobRequest {
  if (!PROFILE_NAME.test(req.profile))
    fail(
      "profile",
      req.profile === ""
        ? "must not be empty"
        : `'${req.profile}' is not a profile name (lower-case letters, digits, - and _)`,
    );
  if (req.steps.length === 0 && !req.tests) fail("steps", "must hold at least one step (or tests)");
  if (req.steps.length > REQUEST_CAPS.steps) fail("steps", `${req.steps.length} steps; at most ${REQUEST_CAPS.steps}`);
  if (Math.abs(req.priority) > REQUEST_CAPS.priority)
    fail("priority", `${req.priority} is outside -${REQUEST_CAPS.priority}..${REQUEST_CAPS.priority}`);
  return {
    profile: req.profile,
    priority: req.priority,
    files: parseFiles(req.files),
    steps: req.steps.map(parseStep),
    ...(req.tests && { tests: parseTests(req.tests) }),
  };
}
