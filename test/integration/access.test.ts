import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type ClientOptions } from "@corral/client";
import { collect, job, startTestService, type TestService } from "../support/service.js";

// Who may call: bearer tokens from a file of hashes (one limited to some profiles), and mTLS.
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

async function refusal(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  return p.then(
    () => {
      throw new Error("accepted");
    },
    (e: unknown) => e as { code: number; details: string },
  );
}

describe("bearer tokens", () => {
  let t: TestService;
  let log = "";
  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "corral-tokens-"));
    const file = path.join(dir, "tokens");
    await writeFile(
      file,
      `# test tokens\nsha256:${sha("alice-secret")} name=alice\nsha256:${sha("bob-secret")} name=bob profiles=other,more\n`,
    );
    const sink = new PassThrough();
    sink.on("data", (d: Buffer) => (log += d.toString()));
    t = await startTestService({ CORRAL_TOKENS_FILE: file }, { log: sink, client: { token: "alice-secret" } });
  });
  afterAll(async () => {
    await t?.stop();
  });
  const as = (o: ClientOptions) => createClient(t.address, o);

  it("runs a job for a known token and logs its name, never the token", async () => {
    const r = await collect(t.client, job(["echo", "hi"]));
    expect(r.stdout).toBe("hi\n");
    expect(log).toContain('"caller":"alice"');
    expect(log).not.toContain("alice-secret");
  });

  it("answers UNAUTHENTICATED without a token or with a wrong one", async () => {
    expect(await refusal(collect(as({}), job(["true"])))).toMatchObject({
      code: 16,
      details: expect.stringContaining("Bearer") as string,
    });
    expect(await refusal(collect(as({ token: "guess" }), job(["true"])))).toMatchObject({
      code: 16,
      details: "unknown token",
    });
    expect(await refusal(as({}).serverInfo())).toMatchObject({ code: 16 });
    expect(log).not.toContain("guess");
  });

  it("lists only the profiles a limited token may use", async () => {
    expect((await as({ token: "alice-secret" }).listProfiles()).profiles.map((p) => p.name)).toContain("default");
    expect((await as({ token: "bob-secret" }).listProfiles()).profiles).toEqual([]);
    expect(await refusal(as({}).listProfiles())).toMatchObject({ code: 16 });
  });

  it("answers PERMISSION_DENIED for a profile the token may not use", async () => {
    const r = await refusal(collect(as({ token: "bob-secret" }), job(["true"])));
    expect(r).toMatchObject({ code: 7, details: "this token may not use profile 'default' (it may use: other, more)" });
  });
});

describe("mutual TLS", () => {
  let t: TestService;
  let pem: { ca: Buffer; cert: Buffer; key: Buffer };
  beforeAll(async () => {
    // A throwaway CA, a server certificate for 127.0.0.1 and a client certificate.
    const dir = await mkdtemp(path.join(tmpdir(), "corral-tls-"));
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=corral test CA",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
    );
    for (const who of ["server", "client"]) {
      ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${who}`, "-keyout", `${who}.key`, "-out", `${who}.csr`);
      await writeFile(
        path.join(dir, `${who}.ext`),
        who === "server" ? "subjectAltName=IP:127.0.0.1\n" : "extendedKeyUsage=clientAuth\n",
      );
      ssl(
        "x509",
        "-req",
        "-in",
        `${who}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        `${who}.ext`,
        "-out",
        `${who}.pem`,
      );
    }
    const read = (f: string) => readFile(path.join(dir, f));
    pem = { ca: await read("ca.pem"), cert: await read("client.pem"), key: await read("client.key") };
    t = await startTestService(
      {
        CORRAL_TLS_CERT: path.join(dir, "server.pem"),
        CORRAL_TLS_KEY: path.join(dir, "server.key"),
        CORRAL_TLS_CLIENT_CA: path.join(dir, "ca.pem"),
      },
      { client: { tls: pem } },
    );
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("runs a job for a client whose certificate the CA signed", async () => {
    expect((await collect(t.client, job(["echo", "over tls"]))).stdout).toBe("over tls\n");
  });

  it("refuses a client without a certificate, and a plaintext one", async () => {
    const bare = createClient(t.address, { tls: { ca: pem.ca } });
    expect((await refusal(collect(bare, job(["true"])))).code).toBe(14);
    const plain = createClient(t.address);
    expect((await refusal(collect(plain, job(["true"])))).code).toBe(14);
  });
});
