import { constants } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import type { Mount } from "./profiles.js";

/** The host path behind `sandboxPath`, through the longest matching bind mount. */
export function hostPathOf(sandboxPath: string, mounts: readonly Mount[]): string | undefined {
  let best: { src: string; dst: string } | undefined;
  for (const m of mounts) {
    if (m.type !== "bind") continue;
    const under = sandboxPath === m.dst || sandboxPath.startsWith(m.dst.endsWith("/") ? m.dst : m.dst + "/");
    if (under && (!best || m.dst.length > best.dst.length)) best = m;
  }
  return best && path.join(best.src, sandboxPath.slice(best.dst.length));
}

/**
 * Finds argv[0] the way a shell would: as given when it holds a "/", else the first
 * executable `dir/argv0` along `pathEnv`. nsjail execs a path without searching PATH, so the
 * service searches it, through the profile's bind mounts, on the host side.
 */
export async function resolveExecutable(
  argv0: string,
  pathEnv: string,
  mounts: readonly Mount[],
): Promise<string | undefined> {
  if (argv0.includes("/")) return argv0;
  for (const dir of pathEnv.split(":")) {
    if (!dir.startsWith("/")) continue;
    const candidate = path.posix.join(dir, argv0);
    const host = hostPathOf(candidate, mounts);
    if (host === undefined) continue;
    try {
      await access(host, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
