import { describe, expect, it } from 'vitest';
import { runExample, slow } from './run-example.ts';

describe('examples/prompt-comparison.ts', () => {
  it('scores both template variants on five texts with the judge, offline', slow, async () => {
    const { code, stdout, stderr } = await runExample('examples/prompt-comparison.ts');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toMatch(/^model: sim:demo \(simulated/);
    // The table: a header, then one row per text with a score (1 to 5) and pass/fail for each variant.
    expect(stdout).toMatch(/^# {2}text +A: brief +B: focused$/m);
    const rows = stdout.split('\n').filter((line) => /^[1-5] {2}/.test(line));
    expect(rows).toHaveLength(5);
    for (const row of rows) expect(row).toMatch(/[1-5]\.\d (pass|fail) +[1-5]\.\d (pass|fail)$/);
    expect(stdout).toMatch(
      /variant A \(examples\/summary-brief\): mean score [1-5]\.\d\d \/ 5, \d\/5 passed, 0 error/,
    );
    expect(stdout).toMatch(
      /variant B \(examples\/summary-focused\): mean score [1-5]\.\d\d \/ 5, \d\/5 passed, 0 error/,
    );
    // 2 variants × 5 texts × (summary + verdict).
    expect(stdout).toMatch(/usage: 20 calls, \d+ tokens/);
  });
});
