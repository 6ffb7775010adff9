/**
 * A run store holding a constructed run for the results-matrix tests: `rows` rows × two variants ("base",
 * "candidate"), with object outputs, hostile text, FAIL rows and ERROR rows at known lines.
 */
import { RunStore } from '../../src/eval/store.ts';
import type { RowRecord, RowStatus } from '../../src/eval/types.ts';
import { emptyUsage } from '../../src/providers/usage.ts';

/** The hostile text every output and input carries: it must show as text and never run. */
export const HOSTILE = '<img src=x onerror="window.__xss=1"></script><script>window.__xss=2</script>';

/** The status of row `line` of `variant` in {@link matrixStore}'s run. */
export function statusOf(variant: string, line: number): RowStatus {
  if (variant === 'candidate' && line % 7 === 0) return 'error';
  if (line % 5 === 0) return 'fail';
  return 'pass';
}

/** An in-memory store with run "m" of `rows` rows × variants base and candidate. */
export function matrixStore(rows: number): RunStore {
  const store = RunStore.open(':memory:');
  store.beginRun({ run: 'm', chain: 'c', variants: ['base', 'candidate'] });
  for (const variant of ['base', 'candidate']) {
    for (let line = 1; line <= rows; line++) {
      const status = statusOf(variant, line);
      const record: RowRecord = {
        run: 'm',
        variant,
        rowId: `r${line}`,
        line,
        status,
        input: { question: `question ${line} ${HOSTILE}` },
        expected: { label: line % 5 === 0 ? 'spam' : 'ham' },
        ...(status === 'error'
          ? {}
          : {
              outputs: {
                draft: `draft ${line}`,
                answer: {
                  label: status === 'fail' ? 'ham' : line % 5 === 0 ? 'spam' : 'ham',
                  note: `${variant} ${HOSTILE}`,
                },
              },
            }),
        scores:
          status === 'error'
            ? {}
            : { em: status === 'pass' ? { score: 1 } : { score: 0, reason: 'expected "spam", got "ham"' } },
        usage: {
          ...emptyUsage(),
          inputTokens: 10,
          outputTokens: 5,
          totalTokens: 15,
          costUsd: 0.0001,
          calls: 1,
        },
        latencyMs: 40 + (line % 13),
        attempts: 1,
        ...(status === 'error'
          ? {
              error: {
                code: 'provider_error',
                message: `the model refused row ${line} ${HOSTILE}`,
                node: 'answer',
              },
            }
          : {}),
        cached: line % 11 === 0,
        finishedAt: 1_700_000_000_000 + line,
      };
      store.putRow(record);
    }
  }
  return store;
}
