import { constants } from "node:fs";
import { access } from "node:fs/promises";

/** Thrown at start-up when this host lacks something the service cannot run without. */
export class HostError extends Error {
  override readonly name = "HostError";
}

/** Checks that the configured nsjail can be executed; the error names the fix. */
export async function checkNsjail(nsjailPath: string): Promise<void> {
  try {
    await access(nsjailPath, constants.X_OK);
  } catch {
    throw new HostError(
      `nsjail not found or not executable at ${nsjailPath}: run \`sudo npm run setup\` in the repository, or set CORRAL_NSJAIL to an nsjail 3.6 binary`,
    );
  }
}
