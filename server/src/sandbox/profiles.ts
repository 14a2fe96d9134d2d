import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { compileError, loadSeccompPolicy } from "./seccomp.js";

const mountSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("bind"),
    src: z.string().startsWith("/", "must be an absolute host path"),
    dst: z.string().startsWith("/", "must be an absolute path in the sandbox"),
    rw: z.boolean().default(false),
    why: z.string().min(1, "say why the sandbox needs this mount"),
  }),
  z.strictObject({
    type: z.literal("symlink"),
    src: z.string().min(1, "the link's target"),
    dst: z.string().startsWith("/", "must be an absolute path in the sandbox"),
    why: z.string().min(1, "say why the sandbox needs this link"),
  }),
]);

const profileSchema = z
  .strictObject({
    description: z.string().min(1),
    mounts: z.array(mountSchema).min(1),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name"), z.string())
      .refine((env) => env.PATH !== undefined, "must set PATH (argv[0] is looked up in it)"),
    tmpBytes: z.number().int().positive(),
    tmpInodes: z.number().int().positive().default(16384),
    // The job's workspace, shared by its steps: a tmpfs, so RAM, counted in the memory of the
    // step that writes it. A job that fills it gets ENOSPC.
    scratchBytes: z.number().int().positive(),
    scratchInodes: z.number().int().positive(),
    // For `corral run --profile NAME --file SRC` without argv: the source's name in the working
    // directory, the command that builds it (if the language is compiled) and the one that runs it.
    file: z
      .string()
      .regex(/^[\w.-]+$/, "must be a plain file name")
      .optional(),
    build: z.array(z.string().min(1)).min(1).optional(),
    run: z.array(z.string().min(1)).min(1).optional(),
    // A Kafel file in the profiles folder; a profile loosens the default only by naming another.
    seccompPolicy: z
      .string()
      .regex(/^[\w.-]+(\/[\w.-]+)*$/, "must be a relative path inside the profiles folder")
      .refine((p) => !p.split("/").includes(".."), "must not contain '..'")
      .default("seccomp/default.kafel"),
    limits: z.strictObject({
      wallTimeMs: z.number().int().positive(),
      cpuTimeMs: z.number().int().positive(),
      memoryBytes: z.number().int().positive(),
      processes: z.number().int().positive(),
      outputBytes: z.number().int().positive(),
      fileSizeBytes: z.number().int().positive(),
      openFiles: z.number().int().positive(),
      stackBytes: z.number().int().positive(),
    }),
  })
  .refine((p) => (p.file === undefined) === (p.run === undefined), "file and run go together")
  .refine((p) => p.build === undefined || p.run !== undefined, "build needs run");

/** One mount of a profile: a read-only (or rw) bind of a host path, or a symlink. */
export type Mount = z.infer<typeof mountSchema>;

/** A sandbox profile: what the sandbox holds and its default limits. */
export interface Profile extends z.infer<typeof profileSchema> {
  readonly name: string;
  /** The seccomp policy's text, x32 rule included, as nsjail compiles it. */
  readonly seccomp: string;
}

/** Thrown at start-up when a profile file is invalid; the message names the file. */
export class ProfileError extends Error {
  override readonly name = "ProfileError";
}

/** Loads and checks every `*.json` in `dir`; the file name without `.json` is the profile's name. */
export async function loadProfiles(dir: string): Promise<ReadonlyMap<string, Profile>> {
  const names = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
  if (names.length === 0) throw new ProfileError(`${dir}: no *.json profile found`);
  const profiles = new Map<string, Profile>();
  for (const file of names) {
    const where = path.join(dir, file);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(where, "utf8"));
    } catch (err) {
      throw new ProfileError(`${where}: not valid JSON: ${(err as Error).message}`);
    }
    const parsed = profileSchema.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`);
      throw new ProfileError(`${where}: ${problems.join("; ")}`);
    }
    const name = file.slice(0, -".json".length);
    const seccomp = await loadSeccompPolicy(dir, parsed.data.seccompPolicy).catch((err: Error) => {
      throw new ProfileError(`${where}: seccompPolicy ${parsed.data.seccompPolicy}: ${err.message}`);
    });
    profiles.set(name, Object.freeze({ name, ...parsed.data, seccomp }));
  }
  return profiles;
}

/** Compiles each profile's seccomp policy with nsjail; the error names the profile and the file. */
export async function checkSeccompPolicies(
  profiles: ReadonlyMap<string, Profile>,
  dir: string,
  nsjailPath: string,
): Promise<void> {
  const checked = new Map<string, string | undefined>();
  for (const p of profiles.values()) {
    if (!checked.has(p.seccomp)) checked.set(p.seccomp, await compileError(nsjailPath, p.seccomp));
    const problem = checked.get(p.seccomp);
    if (problem)
      throw new ProfileError(
        `${path.join(dir, p.name)}.json: seccompPolicy ${p.seccompPolicy} does not compile: ${problem}`,
      );
  }
}
