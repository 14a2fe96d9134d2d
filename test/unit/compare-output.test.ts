import { describe, expect, it } from "vitest";
import { compareOutput } from "../../server/src/jobs/compare-output.js";
import { summarise } from "../../server/src/jobs/run-tests.js";
import type { TestResult, Verdict } from "../../server/src/domain.js";

const b = (s: string): Buffer => Buffer.from(s, "latin1");

describe("compareOutput", () => {
  it("exact: byte for byte, saying where the first difference is", () => {
    expect(compareOutput(b("1\n2\n"), b("1\n2\n"), "exact")).toEqual({ same: true, message: "" });
    expect(compareOutput(b("1\n3\n"), b("1\n2\n"), "exact")).toEqual({
      same: false,
      message: 'line 2: expected "2", got "3"',
    });
    expect(compareOutput(b("1\n2"), b("1\n2\n"), "exact").same).toBe(false);
    expect(compareOutput(b("1 \n"), b("1\n"), "exact").same).toBe(false);
    expect(compareOutput(b("1\n"), b("1\n2\n3\n"), "exact").message).toBe(
      'line 2: expected "2", got the end of the output',
    );
    expect(compareOutput(b("1\n2"), b("1\n2\n"), "exact").message).toBe("the output lacks the expected final newline");
    expect(compareOutput(b("1\n"), b("1"), "exact").message).toBe(
      "the output ends with a newline where the expected does not",
    );
    expect(compareOutput(b("1\n2\n3\n"), b("1\n"), "exact").message).toBe(
      'line 2: expected the end of the output, got "2"',
    );
  });

  it("ignore-trailing-whitespace: line-end spaces, tabs, CR and blank lines at the end do not count", () => {
    const loose = (a: string, e: string) => compareOutput(b(a), b(e), "ignore-trailing-whitespace").same;
    expect(loose("1 \t\r\n2\n\n\n", "1\n2")).toBe(true);
    expect(loose("1\n2", "1\n2\n")).toBe(true);
    expect(loose("", "\n\n")).toBe(true);
    expect(loose(" 1\n", "1\n")).toBe(false); // leading space counts
    expect(loose("1\n\n2\n", "1\n2\n")).toBe(false); // a blank line inside counts
    expect(loose("1 2\n", "1  2\n")).toBe(false);
  });

  it("compares bytes, not text: invalid UTF-8 neither throws nor matches something else", () => {
    expect(compareOutput(Buffer.from([0xff, 0x0a]), Buffer.from([0xfe, 0x0a]), "exact").same).toBe(false);
    expect(compareOutput(Buffer.from([0xff]), Buffer.from([0xff]), "ignore-trailing-whitespace").same).toBe(true);
  });

  it("keeps a long line's excerpt short", () => {
    const { message } = compareOutput(b("x".repeat(1000)), b("y".repeat(1000)), "exact");
    expect(message.length).toBeLessThan(160);
    expect(message).toMatch(/\.\.\.$/);
  });
});

describe("summarise", () => {
  const results = (...v: Verdict[]): TestResult[] => v.map((verdict, i) => ({ testIndex: i, name: "", verdict }));

  it("counts verdicts and names the first failure by index, skipped cases aside", () => {
    expect(summarise(results("accepted", "accepted"))).toEqual({
      total: 2,
      accepted: 2,
      failed: 0,
      skipped: 0,
      verdict: "accepted",
    });
    expect(summarise(results("accepted", "memory-limit", "wrong-answer", "skipped"))).toEqual({
      total: 4,
      accepted: 1,
      failed: 2,
      skipped: 1,
      verdict: "memory-limit",
    });
  });
});
