import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits, Status, Stream } from "@corral/client";
import { corral } from "../support/cli.js";
import { collect, startTestService, type TestService } from "../support/service.js";

// Every language profile, through `corral run --profile NAME --file SRC` with no argv: the CLI
// asks the server for the profile's build and run commands. Hello world, a compile or syntax
// error, and a runtime error each.
let t: TestService;
let dir: string;
beforeAll(async () => {
  t = await startTestService();
  dir = await mkdtemp(path.join(tmpdir(), "corral-profiles-"));
});
afterAll(async () => {
  await t?.stop();
});

interface Language {
  readonly profile: string;
  readonly ext: string;
  readonly hello: string;
  /** A program that does not build (or, interpreted, does not parse). */
  readonly broken: string;
  readonly brokenSays: RegExp;
  /** A program that builds and fails at run time. */
  readonly crash: string;
  readonly crashCode: number;
  /** A program that copies stdin to stdout. */
  readonly echo: string;
}

const languages: Language[] = [
  {
    profile: "bash",
    echo: "cat",
    ext: "sh",
    hello: 'echo "hello from bash"',
    broken: "if then fi (",
    brokenSays: /syntax error/,
    crash: "exit 4",
    crashCode: 4,
  },
  {
    profile: "python3",
    echo: "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read())\n",
    ext: "py",
    hello: 'print("hello from python3")',
    broken: "def f(:\n",
    brokenSays: /SyntaxError/,
    crash: "raise SystemExit(1/0)",
    crashCode: 1,
  },
  {
    profile: "node",
    echo: "process.stdin.pipe(process.stdout);\n",
    ext: "js",
    hello: 'console.log("hello from node")',
    broken: "function (",
    brokenSays: /SyntaxError/,
    crash: "null.x",
    crashCode: 1,
  },
  {
    profile: "c",
    echo: "#include <unistd.h>\nint main(void) { char b[65536]; ssize_t n; while ((n = read(0, b, sizeof b)) > 0) if (write(1, b, n) != n) return 1; return 0; }\n",
    ext: "c",
    hello: '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }\n',
    broken: "int main(void) { return 0 }\n",
    brokenSays: /error: expected .;./, // gcc quotes with ‘’ under a UTF-8 locale
    crash: "int main(void) { int *p = 0; return *p; }\n",
    crashCode: 139,
  },
  {
    profile: "cpp",
    echo: "#include <iostream>\nint main() { std::cout << std::cin.rdbuf(); }\n",
    ext: "cpp",
    hello: '#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }\n',
    broken: "int main() { undeclared(); }\n",
    brokenSays: /was not declared/,
    // Not an uncaught exception: abort() raises SIGABRT at itself, which PID 1 of a pid namespace
    // ignores, and glibc then ends it with SIGSEGV (a known limit of nsjail's ONCE mode).
    crash: "#include <cstdlib>\n#include <vector>\nint main() { std::vector<int> v(3); std::exit(v.size()); }\n",
    crashCode: 3,
  },
  {
    profile: "go",
    echo: 'package main\n\nimport (\n\t"io"\n\t"os"\n)\n\nfunc main() { io.Copy(os.Stdout, os.Stdin) }\n',
    ext: "go",
    hello: 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from go") }\n',
    broken: "package main\n\nfunc main() { x := }\n",
    brokenSays: /syntax error/,
    // An index out of range: Go panics and exits 2.
    crash: 'package main\n\nimport "os"\n\nfunc main() { a := []int{1}; os.Exit(a[len(os.Args)]) }\n',
    crashCode: 2,
  },
  {
    profile: "rust",
    echo: "use std::io::copy;\nfn main() { copy(&mut std::io::stdin().lock(), &mut std::io::stdout().lock()).unwrap(); }\n",
    ext: "rs",
    hello: 'fn main() { println!("hello from rust"); }\n',
    broken: 'fn main() { let x: i32 = "no"; }\n',
    brokenSays: /mismatched types/,
    // A panic (index out of range) exits 101.
    crash: "fn main() { let v = vec![1]; std::process::exit(v[std::env::args().count()]); }\n",
    crashCode: 101,
  },
  {
    profile: "java",
    echo: "public class Main { public static void main(String[] a) throws Exception { System.in.transferTo(System.out); System.out.flush(); } }\n",
    ext: "java",
    hello: 'public class Main { public static void main(String[] a) { System.out.println("hello from java"); } }\n',
    broken: "public class Main { void f() { int x = } }\n",
    brokenSays: /error:/,
    crash: 'public class Main { public static void main(String[] a) { throw new RuntimeException("boom"); } }\n',
    crashCode: 1,
  },
];

describe.each(languages)("profile $profile", (lang) => {
  const run = async (name: string, source: string) => {
    const file = path.join(dir, `${lang.profile}-${name}.${lang.ext}`);
    await writeFile(file, source);
    return corral(["run", "--server", t.address, "--profile", lang.profile, "--file", file]);
  };

  it("builds and runs hello world", async () => {
    const r = await run("hello", lang.hello);
    expect(r, r.stderr).toMatchObject({ code: 0, stdout: `hello from ${lang.profile}\n` });
  });

  it("reports a build or syntax error on stderr with a non-zero exit", async () => {
    const r = await run("broken", lang.broken);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(lang.brokenSays);
    expect(r.stdout).toBe("");
  });

  it("passes 10 MiB from stdin to stdout intact", async () => {
    const info = (await t.client.listProfiles()).profiles.find((p) => p.name === lang.profile)!;
    const input = Buffer.alloc(10 << 20);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7 + (i >> 13)) & 0xff;
    const file = { path: info.sourceFile, content: Buffer.from(lang.echo), mode: 0 };
    const steps = [
      ...(info.build.length
        ? [{ argv: info.build, env: {}, stdin: Buffer.alloc(0), limits: limits(), collect: [] }]
        : []),
      { argv: info.run, env: {}, stdin: input, limits: limits(), collect: [] },
    ];
    const r = await collect(t.client, { profile: lang.profile, priority: 0, files: [file], steps });
    expect(r.finished.outcome?.status, r.stderr).toBe(Status.STATUS_EXITED_ZERO);
    expect(r.finished.usage?.stdoutBytes).toBe(BigInt(input.length));
    const out = Buffer.concat(
      r.events.flatMap((e) =>
        e.event?.$case === "output" && e.event.value.stream === Stream.STREAM_STDOUT ? [e.event.value.data] : [],
      ),
    );
    expect(out.equals(input)).toBe(true);
  });

  it("reports a runtime error", async () => {
    const r = await run("crash", lang.crash);
    expect(r.code).toBe(lang.crashCode);
  });
});
