import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runExample, slow } from './run-example.ts';

const dir = mkdtempSync(join(tmpdir(), 'symphonizer-eval-report-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('examples/eval-report.ts', () => {
  it('evaluates two variants offline and writes an HTML report with the summary table', slow, async () => {
    const out = join(dir, 'report.html');
    const { code, stdout, stderr } = await runExample('examples/eval-report.ts', ['--out', out]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toMatch(/^model: sim:demo \(simulated/);
    // 21 dataset lines × 2 variants; the malformed line and the empty ticket are ERROR rows in both.
    expect(stdout).toContain('42 row × variant units this time, 0 resumed, 2 unreadable dataset rows');
    expect(stdout).toMatch(/^A: agent template +21 +\d+ +\d+ +2 /m);
    expect(stdout).toMatch(/^B: terse template +21 +\d+ +\d+ +2 /m);
    expect(stdout).toContain('invalid_row  line 13: Invalid JSON');
    expect(stdout).toContain('line 15: The input does not match the schema: text: the ticket text is empty');
    expect(stdout).toMatch(/A: agent template vs B: terse template on "label": \d+ wins/);
    expect(stdout).toContain(`report (html): ${out}`);

    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<table class="summary">');
    expect(html).toContain('<table class="comparisons">');
    expect(html).toContain('A: agent template');
    expect(html).toContain('B: terse template');
    expect(html).toContain('label (mean, 95% CI)');
    expect(html).toContain('judge (mean, 95% CI)');
  });

  it(
    'writes Markdown for an .md path, and resumes a kept run store instead of redoing rows',
    slow,
    async () => {
      const out = join(dir, 'report.md');
      const store = join(dir, 'runs.sqlite');
      const first = await runExample('examples/eval-report.ts', ['--out', out, '--store', store]);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const markdown = readFileSync(out, 'utf8');
      expect(markdown).toMatch(/^# Ticket triage/);
      expect(markdown).toContain('| A: agent template |');
      expect(markdown).toContain('| B: terse template |');

      const again = await runExample('examples/eval-report.ts', ['--out', out, '--store', store]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('0 row × variant units this time, 42 resumed');
      expect(again.stdout).toContain('chain: 0 calls');
      // Same stored rows, same table.
      const table = (s: string): string[] => s.split('\n').filter((l) => /^[AB]: \w+ template {2}/.test(l));
      expect(table(again.stdout)).toEqual(table(first.stdout));
    },
  );
});
