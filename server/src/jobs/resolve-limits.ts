import { FailedPreconditionError, InvalidArgumentError } from "../errors.js";
import { LIMIT_FIELDS, type LimitName, type Limits, type RequestedLimits } from "../domain.js";

/** The most a request may ask for, per limit (server config). */
export type Ceilings = Limits;

/**
 * A step's effective limits: the request's where given, else the profile's default (capped
 * at the ceiling). A request above a ceiling is refused naming the field; a request for a
 * limit this host cannot enforce is refused too, never run without it. Pure.
 */
export function resolveLimits(
  requested: RequestedLimits,
  defaults: Limits,
  ceilings: Ceilings,
  unenforceable: ReadonlySet<LimitName>,
  field: string,
): Limits {
  const out = {} as Record<LimitName, number>;
  for (const key of Object.keys(LIMIT_FIELDS) as LimitName[]) {
    const name = `${field}.${LIMIT_FIELDS[key]}`;
    const asked = requested[key];
    if (asked !== undefined && unenforceable.has(key))
      throw new FailedPreconditionError(`${name}: this host cannot enforce this limit (see \`corral doctor\`)`);
    if (asked !== undefined && asked > ceilings[key])
      throw new InvalidArgumentError(name, `${asked} is above this server's ceiling of ${ceilings[key]}`);
    out[key] = asked ?? Math.min(defaults[key], ceilings[key]);
  }
  return out;
}
