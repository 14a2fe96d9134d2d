import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** apparmor_parser lives in /usr/sbin, outside an ordinary user's PATH. */
export const APPARMOR_PARSER =
  ["/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"].find((p) => existsSync(p)) ?? "apparmor_parser";

/** The profiles Corral ships in deploy/apparmor/, in load order. */
export const APPARMOR_PROFILES = ["corral-job", "corral-nsjail"] as const;

/** Whether this kernel has AppArmor switched on. */
export function appArmorEnabled(): boolean {
  try {
    return readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").trim() === "Y";
  } catch {
    return false;
  }
}

/** Whether a profile of that name is loaded; undefined when this user may not read the list (only root may). */
export function appArmorLoaded(name: string): boolean | undefined {
  try {
    return readFileSync("/sys/kernel/security/apparmor/profiles", "utf8")
      .split("\n")
      .some((l) => l.startsWith(`${name} `));
  } catch {
    return undefined;
  }
}

/** The major version of the installed apparmor_parser, or undefined without one. */
export async function parserMajor(): Promise<number | undefined> {
  try {
    const { stdout } = await run(APPARMOR_PARSER, ["--version"]);
    return Number(/version (\d+)\./.exec(stdout)?.[1]);
  } catch {
    return undefined;
  }
}

/**
 * A shipped profile's text, ready for this host: the nsjail path filled in, and `userns`
 * rules masked where the parser predates them (AppArmor < 4.0, e.g. Debian 12's 3.0, whose
 * kernels do not restrict user namespaces anyway).
 */
export async function renderProfile(
  deployDir: string,
  name: string,
  nsjailPath: string,
  major: number,
): Promise<string> {
  let text = await readFile(path.join(deployDir, name), "utf8");
  text = text.replace(/^@\{CORRAL_NSJAIL\} = .*$/m, `@{CORRAL_NSJAIL} = "${nsjailPath}"`);
  if (major < 4) text = text.replace(/^(\s*)userns,/gm, "$1# userns, (masked: AppArmor parser older than 4.0)");
  return text;
}

/**
 * `corral setup-host` on a host with AppArmor: installs the profiles into /etc/apparmor.d and
 * loads them. Returns one line per thing done; says so when AppArmor is not in the kernel.
 */
export async function installAppArmor(deployDir: string, nsjailPath: string): Promise<string[]> {
  if (!appArmorEnabled())
    return ["AppArmor: not in this kernel; profiles not installed (namespaces and seccomp still hold)"];
  const major = await parserMajor();
  if (major === undefined) throw new Error("AppArmor is on but apparmor_parser is missing: apt-get install apparmor");
  const said: string[] = [];
  for (const name of APPARMOR_PROFILES) {
    const target = path.join("/etc/apparmor.d", name);
    await writeFile(target, await renderProfile(deployDir, name, nsjailPath, major));
    await run(APPARMOR_PARSER, ["-r", target]);
    said.push(`AppArmor: ${target} installed and loaded`);
  }
  return said;
}
