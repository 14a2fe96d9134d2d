import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Metadata, sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { PermissionDeniedError, UnauthenticatedError } from "../errors.js";
import { toGrpcStatus } from "./to-grpc-status.js";

/** One accepted bearer token, known only by its hash. */
export interface TokenEntry {
  /** For the log: tokens themselves are never logged. */
  readonly name: string;
  readonly sha256: Buffer;
  /** Profiles this token may use; undefined: all. */
  readonly profiles: ReadonlySet<string> | undefined;
}

/** Who made a call, once authenticated. */
export interface Caller {
  /** The token's name, or "mtls" / "local" without one. */
  readonly name: string;
  /**
   * Who owns what this caller submits: the token's hash (two tokens never share it, whatever
   * their names), or "mtls" / "local" where the service has no tokens.
   */
  readonly id: string;
  readonly profiles: ReadonlySet<string> | undefined;
}

/**
 * Parses a tokens file: one token per line, `sha256:<64 hex> name=<name> [profiles=a,b]`;
 * `#` starts a comment. Make a line with: printf %s "$TOKEN" | sha256sum. Every bad line is
 * reported with its number.
 */
export function parseTokens(text: string, file: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const [hash, ...fields] = line.split(/\s+/);
    const kv = new Map(fields.map((f) => f.split("=", 2) as [string, string]));
    const hex = /^sha256:([0-9a-f]{64})$/.exec(hash ?? "")?.[1];
    if (!hex) return void problems.push(`${file}:${i + 1}: expected sha256:<64 lower-case hex digits> first`);
    if (!kv.get("name")) return void problems.push(`${file}:${i + 1}: give the token a name=... for the log`);
    const unknown = [...kv.keys()].filter((k) => k !== "name" && k !== "profiles");
    if (unknown.length)
      return void problems.push(`${file}:${i + 1}: unknown field(s) ${unknown.join(", ")}: only name= and profiles=`);
    const profiles = kv.get("profiles");
    if (profiles !== undefined && !profiles.split(",").some(Boolean))
      return void problems.push(`${file}:${i + 1}: profiles= lists no profile; leave it out to allow them all`);
    entries.push({
      name: kv.get("name")!,
      sha256: Buffer.from(hex, "hex"),
      profiles: profiles ? new Set(profiles.split(",").filter(Boolean)) : undefined,
    });
  });
  if (problems.length) throw new Error(`invalid tokens file:\n  ${problems.join("\n  ")}`);
  return entries;
}

/** Reads and parses the tokens file. */
export async function loadTokens(file: string): Promise<TokenEntry[]> {
  return parseTokens(await readFile(file, "utf8"), file);
}

/**
 * Checks a call's credentials. Without tokens configured every caller passes (loopback, or
 * mTLS already checked by TLS itself). With tokens, `authorization: Bearer <token>` must
 * hash to one of them.
 */
export function authenticate(tokens: readonly TokenEntry[] | undefined, metadata: Metadata, mtls: boolean): Caller {
  if (!tokens) return { name: mtls ? "mtls" : "local", id: mtls ? "mtls" : "local", profiles: undefined };
  const header = metadata.get("authorization")[0];
  const token = typeof header === "string" ? /^Bearer (.+)$/i.exec(header)?.[1] : undefined;
  if (!token) throw new UnauthenticatedError("missing credentials: send `authorization: Bearer <token>`");
  const digest = createHash("sha256").update(token).digest();
  const entry = tokens.find((t) => timingSafeEqual(t.sha256, digest));
  if (!entry) throw new UnauthenticatedError("unknown token");
  return { name: entry.name, id: `sha256:${entry.sha256.toString("hex")}`, profiles: entry.profiles };
}

/** PERMISSION_DENIED unless the caller may use `profile`. */
export function authorizeProfile(caller: Caller, profile: string): void {
  if (caller.profiles && !caller.profiles.has(profile))
    throw new PermissionDeniedError(
      `this token may not use profile '${profile}' (it may use: ${[...caller.profiles].join(", ")})`,
    );
}

/**
 * A unary handler that runs only for an authenticated caller; a refused one gets its gRPC
 * status (UNAUTHENTICATED) without reaching `handle`, and an error `handle` throws (NOT_FOUND,
 * say) becomes the call's status too.
 */
export function authenticated<Req, Res>(
  who: (metadata: Metadata) => Caller,
  handle: (caller: Caller, request: Req) => Res,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    let response: Res;
    try {
      response = handle(who(call.metadata), call.request);
    } catch (err) {
      return callback(toGrpcStatus(err));
    }
    callback(null, response);
  };
}
