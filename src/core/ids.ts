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
  return formatId(kind, nextSeq());
}

/** Reserves the next sequence number; format it with {@link formatId} only when the id is read. */
export function nextSeq(): number {
  counter += 1;
  return counter;
}

/** The id of sequence number `seq`. */
export function formatId(kind: string, seq: number): string {
  return `${kind}-${prefix}-${seq.toString(36)}`;
}
