import { describe, expect, it } from 'vitest';
import { runExample, slow } from './run-example.ts';

describe('examples/eval-batch.ts', () => {
  it(
    'classifies the labelled rows offline and counts the broken row as an error, not a wrong answer',
    slow,
    async () => {
      const { code, stdout, stderr } = await runExample('examples/eval-batch.ts');
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout.split('\n')[0]).toMatch(/^model: sim:demo \(simulated/);
      const rows = stdout.split('\n').filter((line) => /^\d+ +(bug|feature|billing|question) /.test(line));
      expect(rows).toHaveLength(11);
      const answered = rows.filter((row) => / [✓✗] /.test(row));
      expect(answered).toHaveLength(10);
      expect(rows[10]).toMatch(/^11 +question +ERROR +\(empty\)$/);
      expect(stdout).toContain('invalid_input: Input of chain "ticket-triage" is invalid: input.text');
      const correct = answered.filter((row) => row.includes('✓')).length;
      const accuracy = ((100 * correct) / 10).toFixed(1);
      expect(stdout).toContain(`accuracy: ${accuracy}% (${correct} of 10 answered rows correct)`);
      expect(stdout).toContain(`wrong answers: ${10 - correct}, errors: 1 (not counted in the accuracy)`);
      // The broken row never reached the model.
      expect(stdout).toMatch(/usage: 10 calls, \d+ input \+ \d+ output tokens/);
    },
  );
});
