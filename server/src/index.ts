/** Public surface of the server package, used by the CLI and the tests. */
export { loadConfig, printableConfig, ConfigError, type Config } from "./config.js";
export { startService, createLogger, type Service } from "./main.js";
export { installAppArmor } from "./sandbox/apparmor.js";
export { delegateCgroups } from "./sandbox/cgroup/delegate-cgroups.js";
export { checkHost, type HostCheck } from "./sandbox/host.js";
