/**
 * Instance ids: a per-process prefix plus a counter. Cheap on the hot path (no crypto per id) and unique
 * within a process; the random prefix keeps ids from two processes apart in merged logs.
 */

const prefix = Math.floor(Math.random() * 36 ** 4)
  .toString(36)
  .padStart(4, '0');
let counter = 0;

/** Returns a new id such as `n-k3f9-1a`; `kind` is a one-letter tag (`n` note, `r` runner, `c` composition). */
export function nextId(kind: string): string {
  counter += 1;
  return `${kind}-${prefix}-${counter.toString(36)}`;
}
