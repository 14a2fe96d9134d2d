import { parseArgs } from "node:util";
import { delegateCgroups, installAppArmor, loadConfig } from "@corral/server";
import { UsageError } from "./usage-error.js";

/**
 * `corral setup-host --user NAME`: as root, delegates cgroups to the service user and, on hosts
 * with AppArmor, installs and loads Corral's profiles. Idempotent.
 */
export async function setupHost(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: "string" },
      "cgroup-root": { type: "string", default: "/sys/fs/cgroup" },
      parent: { type: "string", default: "corral" },
    },
  });
  if (!values.user) throw new UsageError("setup-host: name the service user with --user NAME");
  if (process.getuid?.() !== 0)
    throw new UsageError("setup-host: run as root (sudo npx corral setup-host --user NAME)");
  const config = loadConfig(process.env);
  const lines = [
    ...(await delegateCgroups({ user: values.user, cgroupRoot: values["cgroup-root"], parent: values.parent })),
    ...(await installAppArmor(config.appArmorDir, config.nsjailPath)),
  ];
  for (const line of lines) process.stdout.write(`setup-host: ${line}\n`);
  return 0;
}
