import { lstat, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { InputFile } from "../index.js";
import { UsageError } from "./usage-error.js";

/** A host file's content and permission bits. */
export async function readFileWithMode(file: string): Promise<{ content: Buffer; mode: number }> {
  const st = await lstat(file).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`${file}: not a regular file`);
  return { content: await readFile(file), mode: st.mode & 0o777 };
}

/** Every regular file under `dir`, with paths relative to it and modes kept; a link is refused. */
export async function readDirFiles(dir: string, prefix = ""): Promise<InputFile[]> {
  const files: InputFile[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...(await readDirFiles(dir, rel)));
    else if (entry.isFile()) files.push({ path: rel, ...(await readFileWithMode(path.join(dir, rel))) });
    else
      throw new UsageError(`--dir: ${path.join(dir, rel)} is not a regular file or directory; only those are copied`);
  }
  return files;
}
