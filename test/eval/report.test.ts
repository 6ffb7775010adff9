import { describe, expect, it } from 'vitest';
import {
  compareVariants,
  renderHtmlReport,
  renderMarkdownReport,
  renderTextTable,
  summarize,
} from '../../src/eval/report.ts';
import type { RowRecord, RowStatus, ScoreResult } from '../../src/eval/types.ts';
import { InvalidOptionError } from '../../src/index.ts';

function usage(tokens: number, costUsd = 0, unpricedCalls = 0) {
  return {
    inputTokens: tokens / 2,
    outputTokens: tokens / 2,
    totalTokens: tokens,
    costUsd,
    calls: 1,
    unpricedCalls,
  };
}

function record(
  variant: string,
  line: number,
  status: RowStatus,
  scores: Record<string, ScoreResult>,
  extra: Partial<RowRecord> = {},
): RowRecord {
  return {
    run: 'run-1',
    variant,
    rowId: `r${line}`,
    line,
    status,
    input: { q: line },
    scores,
    usage: usage(100, 0.001),
    latencyMs: line * 10,
    attempts: 1,
    cached: false,
    finishedAt: 1_000 + line,
    ...extra,
  };
}

const s = (score: number, reason?: string): ScoreResult =>
  reason === undefined ? { score } : { score, reason };

/** Variant A wins rows 1–8 over B; row 9 ties; row 10 is an error in A. */
function records(): RowRecord[] {
  const out: RowRecord[] = [];
  for (let line = 1; line <= 8; line++) {
    out.push(record('baseline <b>', line, 'pass', { em: s(1), sim: s(0.9) }));
    out.push(
      record('candidate', line, 'fail', {
        em: s(0, 'expected "x", got "<script>alert(1)</script>"'),
        sim: s(0.4),
      }),
    );
  }
  out.push(record('baseline <b>', 9, 'fail', { em: s(0), sim: s(0.5) }));
  out.push(record('candidate', 9, 'fail', { em: s(0), sim: s(0.5) }));
  out.push(
    record(
      'baseline <b>',
      10,
      'error',
      { em: s(0) },
      {
        error: {
          code: 'chain_failed',
          node: 'answer',
          message: 'Model said <img src=x onerror=alert(1)> | oops',
        },
        latencyMs: 99_999,
        usage: usage(40, 0.0005),
      },
    ),
  );
  out.push(record('candidate', 10, 'pass', { em: s(1), sim: s(1) }));
  return out;
}

/** The cells of every row of the `<table class="name">`, DOM-less. */
function tableCells(html: string, name: string): string[][] {
  const table = new RegExp(`<table class="${name}">([\\s\\S]*?)</table>`).exec(html)?.[1];
  if (table === undefined) throw new Error(`no table ${name}`);
  return [...table.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? '').matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((cell) => cell[1] ?? ''),
  );
}

describe('summarize', () => {
  it('counts pass, fail and error; errors are out of the pass rate and the means', () => {
    const summary = summarize(records(), { scorers: ['em', 'sim'] });
    expect(summary.variants.map((v) => v.variant)).toEqual(['baseline <b>', 'candidate']);
    const [base, cand] = summary.variants;
    expect(base).toMatchObject({ rows: 10, pass: 8, fail: 1, error: 1, cached: 0 });
    expect(base?.passRate).toBeCloseTo(8 / 9, 10); // not 8 / 10
    expect(base?.scores.em).toMatchObject({ mean: 8 / 9, n: 9 }); // the error's 0 is not a score
    expect(base?.scores.sim?.n).toBe(9);
    expect(base?.latencyMs).toEqual({ p50: 50, p95: 86, n: 9 }); // the error's 99,999 ms is left out
    expect(base?.usage).toMatchObject({ totalTokens: 940, calls: 10 });
    expect(base?.usage.costUsd).toBeCloseTo(0.0095, 10);
    expect(base?.errors).toEqual([
      { rowId: 'r10', line: 10, node: 'answer', code: 'chain_failed', message: expect.any(String) as string },
    ]);
    expect(base?.failures.map((f) => f.rowId)).toEqual(['r9']);
    expect(cand).toMatchObject({ rows: 10, pass: 1, fail: 9, error: 0, passRate: 0.1 });
  });

  it('keeps the last record of a repeated row, and leaves cached rows out of latency', () => {
    const summary = summarize(
      [
        record('v', 1, 'error', {}, { error: { message: 'flaky' }, finishedAt: 1 }),
        record('v', 1, 'pass', { em: s(1) }, { finishedAt: 2 }),
        record('v', 2, 'pass', { em: s(1) }, { cached: true, latencyMs: 1 }),
      ],
      { scorers: ['em', 'absent'] },
    );
    const [v] = summary.variants;
    expect(v).toMatchObject({ rows: 2, pass: 2, error: 0, cached: 1, latencyMs: { p50: 10, n: 1 } });
    expect(v?.scores.absent?.n).toBe(0);
    expect(v?.scores.absent?.mean).toBeNaN();
  });
});

describe('compareVariants', () => {
  it('pairs rows both variants ran without error; 8 wins, 0 losses → p = 0.0078', () => {
    const comparison = compareVariants(records(), 'baseline <b>', 'candidate', 'em');
    expect(comparison).toMatchObject({
      a: 'baseline <b>',
      b: 'candidate',
      scorer: 'em',
      wins: 8,
      losses: 0,
      ties: 1,
      n: 9,
      unpaired: 2, // row 10: an error in A, so neither side is paired
      test: 'sign',
    });
    expect(comparison.pValue).toBeCloseTo(0.0078125, 10);
    expect(() => compareVariants(records(), 'nope', 'candidate', 'em')).toThrow(InvalidOptionError);
  });
});

describe('renderHtmlReport', () => {
  const summary = summarize(records(), { scorers: ['em', 'sim'] });
  const comparison = compareVariants(records(), 'baseline <b>', 'candidate', 'sim');
  const html = renderHtmlReport(summary, [comparison], { title: 'Q&A <eval>' });

  it('is one self-contained file: inline CSS, no scripts, no external assets', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script/i);
    // Every `<` of the text is escaped, so each `<` starts a real tag: none loads anything.
    expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/<[^>]*\s(src|href)=/i);
    expect(new Set(html.match(/https?:\/\/[^"\s]+/g))).toEqual(new Set(['http://www.w3.org/2000/svg'])); // a namespace
    expect(html).toContain('<title>Q&amp;A &lt;eval&gt;</title>');
  });

  it('has the summary table with the right cells', () => {
    const [head, base, cand] = tableCells(html, 'summary');
    expect(head).toEqual([
      'Variant',
      'Rows',
      'Pass',
      'Fail',
      'Error',
      'Pass rate (95% CI)',
      'em (mean, 95% CI)',
      'sim (mean, 95% CI)',
      'p50 latency',
      'p95 latency',
      'Tokens',
      'Cost',
    ]);
    // Wilson intervals of 8/9 (pass rate, and the mean of 0/1 em scores): [0.565, 0.980], inside [0, 1].
    expect(base?.slice(0, 6)).toEqual(['baseline &lt;b&gt;', '10', '8', '1', '1', '88.9% [56.5, 98.0]']);
    expect(base?.[6]).toBe('0.889 [0.565, 0.980]');
    expect(base?.slice(8)).toEqual(['50 ms', '86 ms', '940', '$0.0095']);
    expect(cand?.slice(0, 6)).toEqual(['candidate', '10', '1', '9', '0', '10.0% [1.8, 40.4]']);
  });

  it('has a bar chart with CI whiskers per scorer, and the comparison, failures and errors tables', () => {
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html.match(/<rect /g)).toHaveLength(4);
    expect(html.match(/class="whisker"/g)).toHaveLength(4 * 3);
    const [head, row] = tableCells(html, 'comparisons');
    expect(head?.[0]).toBe('A');
    expect(row).toEqual([
      'baseline &lt;b&gt;',
      'candidate',
      'sim',
      '9',
      '8',
      '0',
      '1',
      '+0.444',
      '0.0078',
      'sign (exact)',
    ]);
    const errors = tableCells(html, 'errors');
    expect(errors[1]).toEqual([
      'baseline &lt;b&gt;',
      'r10',
      '10',
      'answer',
      'chain_failed',
      'Model said &lt;img src=x onerror=alert(1)&gt; | oops',
    ]);
    const failures = tableCells(html, 'failures');
    expect(failures).toHaveLength(1 + 1 + 9);
    expect(failures[2]?.[3]).toBe(
      '0.000: expected &quot;x&quot;, got &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;',
    );
  });

  it('escapes every piece of text, and caps the listed rows', () => {
    expect(html).not.toContain('<b>');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const capped = renderHtmlReport(summary, [], { maxFailures: 2, maxErrors: 0 });
    expect(tableCells(capped, 'failures')).toHaveLength(3);
    expect(capped).toContain('… and 8 more.');
    expect(capped).not.toContain('<table class="errors">');
    expect(() => renderHtmlReport(summary, [], { maxErrors: -1 })).toThrow(InvalidOptionError);
  });
});

describe('renderMarkdownReport and renderTextTable', () => {
  const summary = summarize(records(), { scorers: ['em'] });
  const comparison = compareVariants(records(), 'baseline <b>', 'candidate', 'em');

  it('renders Markdown tables with escaped cells', () => {
    const md = renderMarkdownReport(summary, [comparison]);
    expect(md).toContain('| Variant | Rows | Pass | Fail | Error | Pass rate (95% CI) | em (mean, 95% CI) |');
    expect(md).toContain(
      '| baseline &lt;b&gt; | 10 | 8 | 1 | 1 | 88.9% [56.5, 98.0] | 0.889 [0.565, 0.980] |',
    );
    expect(md).toContain('## Comparisons');
    expect(md).toContain('| 9 | 8 | 0 | 1 | +0.889 | 0.0078 | sign (exact) |');
    expect(md).toContain('Model said &lt;img src=x onerror=alert(1)&gt; \\| oops');
    expect(md).not.toContain('<script>');
  });

  it('renders aligned plain-text tables for the terminal', () => {
    const text = renderTextTable(summary, [comparison]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(
      /^Variant\s+Rows\s+Pass\s+Fail\s+Error\s+Pass rate \(95% CI\)\s+em \(mean, 95% CI\)/,
    );
    expect(lines[1]).toMatch(/^-+( +-+)+$/);
    expect(lines[2]).toMatch(/^baseline <b>\s+10\s+8\s+1\s+1\s+88\.9%/);
    // Columns line up: every table line of the summary is as wide as its rule.
    expect(lines[2]?.length).toBeLessThanOrEqual(lines[1]?.length ?? 0);
    expect(text).toContain('Errors (1):');
    expect(text).not.toContain('Failed rows');
  });
});
