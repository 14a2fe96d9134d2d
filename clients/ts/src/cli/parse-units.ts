import { limits, type Limits } from "../index.js";
import { UsageError } from "./usage-error.js";

/** "1.5" seconds -> 1500n milliseconds. */
export function parseSeconds(text: string, flag: string): bigint {
  if (!/^\d+(\.\d{1,3})?$/.test(text)) throw new UsageError(`${flag} ${text}: expected seconds, e.g. 2 or 0.5`);
  const ms = BigInt(Math.round(Number(text) * 1000));
  if (ms === 0n) throw new UsageError(`${flag} ${text}: must be more than 0`);
  return ms;
}

const UNITS: Record<string, bigint> = { "": 1n, K: 1024n, M: 1024n ** 2n, G: 1024n ** 3n };

/** "64M" -> bytes (K, M, G are powers of 1024; an optional trailing "i" or "B" is accepted). */
export function parseSize(text: string, flag: string): bigint {
  const m = /^(\d+)([KMG]?)(?:i?B)?$/i.exec(text);
  if (!m) throw new UsageError(`${flag} ${text}: expected a size, e.g. 65536, 64K, 256M or 1G`);
  const value = BigInt(m[1]!) * UNITS[m[2]!.toUpperCase()]!;
  if (value === 0n) throw new UsageError(`${flag} ${text}: must be more than 0`);
  return value;
}

/** "16" -> 16: a whole number from 1 to 2^32 - 1. */
export function parseCount(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 0xffffffff)
    throw new UsageError(`${flag} ${text}: expected a whole number from 1 to 4294967295`);
  return n;
}

/** "-3" -> -3: a queue priority from -10 to 10. */
export function parsePriority(text: string): number {
  const n = Number(text);
  if (!/^-?\d+$/.test(text) || Math.abs(n) > 10)
    throw new UsageError(`--priority ${text}: expected a whole number from -10 to 10`);
  return n;
}

/** The limit flags `run` and `judge` share, as a request's Limits (unset ones: the profile's). */
export function limitsFromFlags(v: {
  "wall-time"?: string;
  "cpu-time"?: string;
  memory?: string;
  pids?: string;
  "output-limit"?: string;
}): Limits {
  return limits({
    ...(v["wall-time"] && { wallTimeMs: parseSeconds(v["wall-time"], "--wall-time") }),
    ...(v["cpu-time"] && { cpuTimeMs: parseSeconds(v["cpu-time"], "--cpu-time") }),
    ...(v.memory && { memoryBytes: parseSize(v.memory, "--memory") }),
    ...(v.pids && { processes: parseCount(v.pids, "--pids") }),
    ...(v["output-limit"] && { outputBytes: parseSize(v["output-limit"], "--output-limit") }),
  });
}
