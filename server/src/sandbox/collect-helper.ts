/**
 * `node collect-helper.js DIR PATH...`: collectFiles(DIR, PATHS) as JSON on stdout, contents in
 * base64. Run by collectInHolder inside a workspace holder's namespaces, as root there, where it
 * may read the files a job running as a subordinate uid left, whatever their modes.
 */
import { collectFiles } from "./collect.js";

const [dir, ...paths] = process.argv.slice(2);
const files = await collectFiles(dir!, paths);
process.stdout.write(
  JSON.stringify(files.map((f) => (f.collected ? { ...f, content: Buffer.from(f.content).toString("base64") } : f))),
);
