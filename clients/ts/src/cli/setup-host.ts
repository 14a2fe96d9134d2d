import { parseArgs } from "node:util";
import { delegateCgroups } from "@corral/server";
import { UsageError } from "./usage-error.js";

/** `corral setup-host --user NAME`: as root, delegates cgroups to the service user. Idempotent. */
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
  for (const line of await delegateCgroups({
    user: values.user,
    cgroupRoot: values["cgroup-root"],
    parent: values.parent,
  }))
    process.stdout.write(`setup-host: ${line}\n`);
  return 0;
}
