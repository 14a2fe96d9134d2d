import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { CollectedFile } from "../domain.js";
import { enterHolder } from "./holder-ns.js";

/** Caps on what one step hands back. */
const COLLECT_CAPS = { fileBytes: 16 * 1024 * 1024, totalBytes: 32 * 1024 * 1024 } as const;

/**
 * Reads the files a step asked for from its working directory, after every process of the
 * step is gone. `paths` are checked already (relative, no `..`). Only regular files are read:
 * every parent is checked not to be a link (lstat), the file itself is opened with O_NOFOLLOW
 * and checked on the open descriptor, so nothing outside the workspace can be reached through a
 * link the job left. Each path gets a result; none makes the call fail.
 */
export async function collectFiles(workDir: string, paths: readonly string[]): Promise<CollectedFile[]> {
  let total = 0;
  const out: CollectedFile[] = [];
  for (const rel of paths) {
    const no = (reason: string): void => void out.push({ path: rel, collected: false, reason });
    const parts = rel.split("/");
    let parentLink: string | undefined;
    for (let i = 1; i < parts.length && !parentLink; i++) {
      const st = await lstat(path.join(workDir, ...parts.slice(0, i))).catch(() => undefined);
      if (st && !st.isDirectory()) parentLink = parts.slice(0, i).join("/");
    }
    if (parentLink) {
      no(`'${parentLink}' is not a directory (a link or a file); not followed`);
      continue;
    }
    let handle;
    try {
      handle = await open(path.join(workDir, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      no(
        code === "ENOENT"
          ? "no such file"
          : code === "ELOOP"
            ? "a symbolic link; not followed"
            : `cannot open it (${code})`,
      );
      continue;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) {
        no(
          st.isDirectory() ? "a directory" : st.isFIFO() ? "a FIFO" : st.isSocket() ? "a socket" : "not a regular file",
        );
        continue;
      }
      if (st.size > COLLECT_CAPS.fileBytes) {
        no(`${st.size} bytes, over the ${COLLECT_CAPS.fileBytes}-byte cap per file`);
        continue;
      }
      if (total + st.size > COLLECT_CAPS.totalBytes) {
        no(`would pass the ${COLLECT_CAPS.totalBytes}-byte cap for all collected files`);
        continue;
      }
      const content = await handle.readFile();
      total += content.length;
      out.push({ path: rel, collected: true, content, mode: st.mode & 0o777 });
    } finally {
      await handle.close();
    }
  }
  return out;
}

const HELPER = fileURLToPath(new URL("./collect-helper.js", import.meta.url));

/**
 * collectFiles, run inside a workspace holder's user and mount namespaces (as root there), for
 * a job that ran as a subordinate uid: the service itself may not read files that uid kept to
 * itself. `dir` is the workspace as the holder sees it.
 */
export async function collectInHolder(
  holderPid: number,
  dir: string,
  paths: readonly string[],
): Promise<CollectedFile[]> {
  const [nsenter, ...args] = enterHolder(holderPid);
  const child = spawn(nsenter!, [...args, process.execPath, HELPER, dir, ...paths], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {},
    cwd: "/",
  });
  const out: Buffer[] = [];
  let err = "";
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`collecting the step's files failed: ${err.trim() || `exit ${code}`}`);
  type Wire = { path: string; collected: boolean; content?: string; mode?: number; reason?: string };
  const files = JSON.parse(Buffer.concat(out).toString("utf8")) as Wire[];
  return files.map((f): CollectedFile =>
    f.collected
      ? { path: f.path, collected: true, content: Buffer.from(f.content ?? "", "base64"), mode: f.mode ?? 0 }
      : { path: f.path, collected: false, reason: f.reason ?? "" },
  );
}
