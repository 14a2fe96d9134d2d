import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import type { Limits, RequestedLimits } from "./types.js";

/** The most a request may ask for, per limit (server config). */
export interface Ceilings {
  readonly wallTimeMs: number;
  readonly outputBytes: number;
}

/** Limits a request may name that this server cannot enforce yet: never run unlimited. */
const UNENFORCED = [
  ["cpuTimeMs", "cpu_time_ms"],
  ["memoryBytes", "memory_bytes"],
  ["processes", "processes"],
] as const;

/**
 * A step's effective limits: the request's where given, else the profile's default; a
 * request above the server's ceiling is refused, naming the field. Pure.
 */
export function resolveLimits(requested: RequestedLimits, defaults: Limits, ceilings: Ceilings, field: string): Limits {
  for (const [key, name] of UNENFORCED) {
    if (requested[key] !== undefined)
      throw new FailedPreconditionError(
        `${field}.${name}: this server cannot enforce this limit yet; leave it unset rather than run unlimited`,
      );
  }
  const pick = (key: keyof Limits, name: string): number => {
    const value = requested[key] ?? Math.min(defaults[key], ceilings[key]);
    if (value > ceilings[key])
      throw new InvalidArgumentError(`${field}.${name}`, `${value} is above this server's ceiling of ${ceilings[key]}`);
    return value;
  };
  return { wallTimeMs: pick("wallTimeMs", "wall_time_ms"), outputBytes: pick("outputBytes", "output_bytes") };
}
