import { doctor } from "./doctor.js";
import { judge } from "./judge.js";
import { profiles } from "./profiles.js";
import { run } from "./run.js";
import { serve } from "./serve.js";
import { setupHost } from "./setup-host.js";
import { cancel, submit, watch } from "./submitted.js";
import { UsageError } from "./usage-error.js";

const HELP = `usage:
  corral serve [--print-config]     start the service (CORRAL_LISTEN, default 127.0.0.1:50051)
  corral run [options] -- ARGV...   run a program in a sandbox; see docs/cli.md
  corral judge --profile P --file SRC --tests DIR
                                    build once, run every N.in against N.out, print verdicts
  corral submit [run options] -- ARGV...
                                    queue a job that outlives this command; print its id
  corral watch ID [--from N]        follow a submitted job's output; exit as it did
  corral cancel ID                  stop a submitted job
  corral setup-host --user NAME     as root: delegate cgroups to the service user (once per boot)
  corral doctor                     check this host; print each missing piece and its fix
  corral profiles [--server ADDR]   list the server's sandbox profiles and their limits
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serve(rest);
    case "run":
      return run(rest);
    case "judge":
      return judge(rest);
    case "submit":
      return submit(rest);
    case "watch":
      return watch(rest);
    case "cancel":
      return cancel(rest);
    case "setup-host":
      return setupHost(rest);
    case "doctor":
      return doctor();
    case "profiles":
      return profiles(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`corral: ${(err as Error).message}\n${usage ? HELP : ""}`);
    process.exitCode = usage ? 2 : 1;
  },
);
