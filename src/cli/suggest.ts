/**
 * "Did you mean …?" for the command line: the edit distance between two words, and the known word nearest
 * to a misspelt one.
 */

/**
 * The optimal-string-alignment distance between `a` and `b`: the fewest single-character insertions,
 * deletions, substitutions and swaps of two adjacent characters that turn one into the other (Damerau–
 * Levenshtein, without editing a substring twice). Case-sensitive; O(|a|·|b|) time, O(|b|) memory.
 *
 * @example
 * ```ts
 * editDistance('inptu', 'input'); // 1 (one swap)
 * editDistance('dataset', 'data'); // 3
 * ```
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rows of the dynamic-programming table: two rows back (for swaps), the last one, the current one.
  let before: number[] = [];
  let last = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((last[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (last[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (before[j - 2] ?? 0) + 1);
      }
      row.push(d);
    }
    before = last;
    last = row;
  }
  return last[b.length] ?? 0;
}

/**
 * The candidate a misspelt `word` most likely meant, or `undefined` when none is close: the nearest by
 * {@link editDistance} (ignoring case) within a third of the word's length (at least 1), the first listed on a
 * tie; failing that, the only candidate that starts with `word` (for a word of two characters or more).
 *
 * @example
 * ```ts
 * closest('rnu', ['run', 'graph', 'eval']); // 'run'
 * closest('data', ['dataset', 'export']); // 'dataset' (the only one it begins)
 * closest('frobnicate', ['run', 'graph']); // undefined
 * ```
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const prefixed: string[] = [];
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
    if (lower.length >= 2 && candidate.toLowerCase().startsWith(lower)) prefixed.push(candidate);
  }
  if (best !== undefined && bestDistance <= limit) return best;
  return prefixed.length === 1 ? prefixed[0] : undefined;
}
