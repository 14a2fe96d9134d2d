import { readFileSync } from "node:fs";
import type { ClientOptions } from "../index.js";

/**
 * The CLI's credentials, from the environment so that they stay out of `ps`: CORRAL_TOKEN, and
 * CORRAL_TLS_CA (with CORRAL_TLS_CERT and CORRAL_TLS_KEY for mutual TLS), PEM file paths.
 */
export function clientOptions(env: NodeJS.ProcessEnv): ClientOptions {
  const file = (p: string | undefined) => (p ? readFileSync(p) : undefined);
  const ca = file(env.CORRAL_TLS_CA);
  return {
    ...(env.CORRAL_TOKEN && { token: env.CORRAL_TOKEN }),
    ...(ca && { tls: { ca, cert: file(env.CORRAL_TLS_CERT), key: file(env.CORRAL_TLS_KEY) } }),
  };
}
