#!/usr/bin/env node
// The `corral` command. A committed file so that npm can link it before the build runs;
// the code is the compiled clients/ts/src/cli/main.ts (`npm run build`).
import "../dist/cli/main.js";
