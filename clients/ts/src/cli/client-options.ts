import { readFileSync } from "node:fs";
import type { ClientOptions } from "../index.js";
import { UsageError } from "./usage-error.js";

/**
 * The CLI's credentials, from the environment so that they stay out of `ps`: CORRAL_TOKEN, and
 * CORRAL_CLIENT_TLS_CA (with CORRAL_CLIENT_TLS_CERT and CORRAL_CLIENT_TLS_KEY for mutual TLS),
 * PEM file paths. (CORRAL_TLS_* are the server's own.)
 */
export function clientOptions(env: NodeJS.ProcessEnv): ClientOptions {
  const file = (p: string | undefined) => (p ? readFileSync(p) : undefined);
  const ca = file(env.CORRAL_CLIENT_TLS_CA);
  if (!ca && (env.CORRAL_CLIENT_TLS_CERT || env.CORRAL_CLIENT_TLS_KEY))
    throw new UsageError(
      "CORRAL_CLIENT_TLS_CERT/KEY need CORRAL_CLIENT_TLS_CA, the CA that signed the server's certificate",
    );
  return {
    ...(env.CORRAL_TOKEN && { token: env.CORRAL_TOKEN }),
    ...(ca && { tls: { ca, cert: file(env.CORRAL_CLIENT_TLS_CERT), key: file(env.CORRAL_CLIENT_TLS_KEY) } }),
  };
}
