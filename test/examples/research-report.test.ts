import { describe, expect, it } from 'vitest';
import { runExample, slow } from './run-example.ts';

describe('examples/research-report.ts', () => {
  it('writes a report offline: every node, the trace, usage and the Mermaid graph', slow, async () => {
    const { code, stdout, stderr } = await runExample('examples/research-report.ts', ['volcanoes']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toMatch(/^model: sim:demo \(simulated/);
    expect(stdout).toContain('topic: volcanoes');
    expect(stdout).toContain('=== Final report ===');
    expect(stdout).toContain('[simulated]');
    for (const node of ['history', 'science', 'outlook', 'outline', 'draft', 'critique', 'revise']) {
      expect(stdout).toContain(`done: ${node} (completed)`);
      expect(stdout).toMatch(new RegExp(`^  ${node} completed \\(attempt 1\\)`, 'm'));
    }
    expect(stdout).toMatch(/critique: score [\d.]+\/10/);
    expect(stdout).toMatch(/7 calls, \d+ input \+ \d+ output tokens/);
    expect(stdout).toContain('(simulated model: free)');
    expect(stdout).toContain('flowchart TD');
    for (const edge of [
      'history --> outline',
      'science --> outline',
      'outlook --> outline',
      'critique --> revise',
    ])
      expect(stdout).toContain(edge);
  });

  it('defaults the topic to "ocean tides" and streams the text nodes with --stream', slow, async () => {
    const { code, stdout } = await runExample('examples/research-report.ts', ['--stream']);
    expect(code).toBe(0);
    expect(stdout).toContain('topic: ocean tides');
    expect(stdout).toContain('  --- draft:');
    expect(stdout).toContain('  --- revise:');
    expect(stdout).toContain('=== Final report ===');
  });

  it('prints only the graph with --graph', slow, async () => {
    const { code, stdout } = await runExample('examples/research-report.ts', ['--graph']);
    expect(code).toBe(0);
    expect(stdout.startsWith('flowchart TD')).toBe(true);
    expect(stdout).not.toContain('model:');
  });
});
