import { constants } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, rm } from "node:fs/promises";
import path from "node:path";
import type { InputFile } from "../domain.js";

/** A job's folder on the host, removed with the job. */
export interface Workspace {
  /** Becomes the sandbox's working directory. */
  readonly hostDir: string;
  /** The service's own files for this job (nsjail configs); never mounted in a sandbox. */
  readonly privateDir: string;
  /** Removes the directory and everything the job left in it. */
  remove(): Promise<void>;
}

/**
 * Makes `<root>/job-<id>` (mode 0700) holding `work/`, with the job's files, and `run/`, the
 * service's private files. `files` must be
 * validated already (relative, no `..`); each is still created with O_EXCL | O_NOFOLLOW so
 * that nothing is written outside the directory or through a link.
 */
export async function createWorkspace(root: string, jobId: string, files: readonly InputFile[]): Promise<Workspace> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const jobDir = path.join(root, `job-${jobId}`);
  await mkdir(jobDir, { mode: 0o700 });
  const hostDir = path.join(jobDir, "work");
  const privateDir = path.join(jobDir, "run");
  const workspace = { hostDir, privateDir, remove: () => removeTree(jobDir) };
  try {
    await mkdir(privateDir, { mode: 0o700 });
    await mkdir(hostDir, { mode: 0o700 });
    for (const file of files) {
      const target = path.join(hostDir, file.path);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
      const handle = await open(
        target,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        await handle.writeFile(file.content);
        await handle.chmod(file.mode);
      } finally {
        await handle.close();
      }
    }
    return workspace;
  } catch (err) {
    await workspace.remove();
    throw err;
  }
}

/**
 * Makes `root` (mode 0700) unless it exists, and checks that it is a folder of this user's that
 * nobody else may write: another user's folder there could swap a job's files or its nsjail
 * config under the service. Then removes every job folder a crashed predecessor left in it;
 * returns how many.
 */
export async function sweepWorkspaces(root: string): Promise<number> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const st = await lstat(root);
  const uid = process.getuid?.();
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0)
    throw new Error(
      `scratch folder ${root} must be a directory owned by uid ${uid} and writable by it alone (found uid ${st.uid}, mode 0${(st.mode & 0o7777).toString(8)}): remove it or set CORRAL_SCRATCH_DIR`,
    );
  const names = (await readdir(root).catch(() => [])).filter((n) => n.startsWith("job-"));
  for (const name of names) await removeTree(path.join(root, name));
  return names.length;
}

/** `rm -rf`, first giving back owner write/search permission a job may have taken away. */
export async function removeTree(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
  } catch {
    await restorePermissions(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

async function restorePermissions(dir: string): Promise<void> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await chmod(dir, 0o700);
  for (const name of await readdir(dir)) await restorePermissions(path.join(dir, name));
}
