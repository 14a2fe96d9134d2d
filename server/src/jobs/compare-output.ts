import type { Comparison } from "../domain.js";

/** What comparing a case's output with the expected one found. */
export interface ComparisonResult {
  readonly same: boolean;
  /** Where they first differ, for people; empty when the same. */
  readonly message: string;
}

/** Longest excerpt of a line a message quotes. */
const EXCERPT = 60;

/**
 * Compares a program's stdout with the expected output. `exact`: byte for byte.
 * `ignore-trailing-whitespace`: "\r\n" read as "\n", spaces and tabs at each line's end and
 * blank lines at the end ignored. Pure.
 */
export function compareOutput(actual: Uint8Array, expected: Uint8Array, how: Comparison): ComparisonResult {
  // latin1 maps each byte to one character: byte-exact, and never throws on invalid UTF-8.
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).toString("latin1");
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength).toString("latin1");
  if (how === "exact") return a === e ? SAME : firstDifference(a.split("\n"), e.split("\n"));
  const al = normalise(a);
  const el = normalise(e);
  return al.length === el.length && al.every((line, i) => line === el[i]) ? SAME : firstDifference(al, el);
}

const SAME: ComparisonResult = { same: true, message: "" };

function normalise(text: string): string[] {
  const lines = text.split("\n").map((l) => l.replace(/[ \t\r]+$/, ""));
  while (lines.length > 0 && lines.at(-1) === "") lines.pop();
  return lines;
}

function firstDifference(actual: string[], expected: string[]): ComparisonResult {
  // split("\n") leaves "" after a final newline: there, the text has ended.
  const show = (lines: string[], i: number): string =>
    i >= lines.length || (i === lines.length - 1 && lines[i] === "") ? "the end of the output" : excerpt(lines[i]!);
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++)
    if (actual[i] !== expected[i]) {
      const tail = i === n - 1 && (actual[i] ?? "") === "" && (expected[i] ?? "") === "";
      return {
        same: false,
        message: tail
          ? `the output ${actual.length > expected.length ? "ends with a newline where the expected does not" : "lacks the expected final newline"}`
          : `line ${i + 1}: expected ${show(expected, i)}, got ${show(actual, i)}`,
      };
    }
  return SAME;
}

function excerpt(line: string): string {
  const shown = Buffer.from(line.slice(0, EXCERPT), "latin1").toString("utf8");
  return JSON.stringify(shown) + (line.length > EXCERPT ? "..." : "");
}
