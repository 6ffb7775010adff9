import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../src/cli/suggest.ts';

describe('editDistance()', () => {
  it('counts insertions, deletions, substitutions and adjacent swaps', () => {
    expect(editDistance('input', 'input')).toBe(0);
    expect(editDistance('', 'run')).toBe(3);
    expect(editDistance('run', '')).toBe(3);
    expect(editDistance('inptu', 'input')).toBe(1); // one swap
    expect(editDistance('rnu', 'run')).toBe(1);
    expect(editDistance('modle', 'model')).toBe(1);
    expect(editDistance('stor', 'store')).toBe(1); // insertion
    expect(editDistance('jsonn', 'json')).toBe(1); // deletion
    expect(editDistance('expert', 'export')).toBe(1); // substitution
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('ca', 'abc')).toBe(3); // optimal string alignment: no edit of a swapped pair
  });

  it('is symmetric', () => {
    for (const [a, b] of [
      ['dataset', 'data'],
      ['concurency', 'concurrency'],
      ['graph', 'grpah'],
    ] as const) {
      expect(editDistance(a, b)).toBe(editDistance(b, a));
    }
  });
});

describe('closest()', () => {
  const options = ['dataset', 'export', 'scorers', 'variants', 'run', 'store', 'report', 'model', 'json'];

  it('suggests the nearest candidate within a third of the word (at least one edit)', () => {
    expect(closest('inptu', ['input', 'export', 'model'])).toBe('input');
    expect(closest('rnu', ['run', 'graph', 'eval', 'runs'])).toBe('run');
    expect(closest('scorer', options)).toBe('scorers');
    expect(closest('Model', options)).toBe('model'); // case is ignored
    expect(closest('veriants', options)).toBe('variants');
  });

  it('falls back to the only candidate the word begins', () => {
    expect(closest('data', options)).toBe('dataset');
    expect(closest('re', ['report', 'retry-errors'])).toBeUndefined(); // two begin with it
  });

  it('suggests nothing when nothing is close', () => {
    expect(closest('frobnicate', ['run', 'graph', 'eval'])).toBeUndefined();
    expect(closest('xyz', options)).toBeUndefined();
    expect(closest('x', [])).toBeUndefined();
  });
});
