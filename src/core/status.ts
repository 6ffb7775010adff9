/** Status unions and the transitions between them. */

/** Lifecycle of a {@link NodeRunner}. `completed`, `error`, `timed_out` and `cancelled` are final. */
export type RunnerStatus = 'new' | 'starting' | 'running' | 'completed' | 'error' | 'timed_out' | 'cancelled';

/**
 * How one run of a node ended, as reported to `onNodeDone` and in the trace:
 * - `completed`: the executor returned a value;
 * - `completed_error`: it threw `ContinueAfterError`; the node counts as done, successors run without its input;
 * - `retrying`: it threw `TryAgainError` and a `retryTask()` child will run;
 * - `error`: every other failure (including `TryAgainError` past `maxTries`); fails the composition;
 * - `timed_out`: the runner's `timeoutMs` passed; fails the composition;
 * - `cancelled`: it threw `StopScheduleError`, or it was cancelled (by the composition's signal, or a retry was
 *   dropped because the composition ended).
 */
export type NodeDoneStatus =
  'completed' | 'completed_error' | 'retrying' | 'error' | 'timed_out' | 'cancelled';

/** Lifecycle of a Composition. `completed`, `error` and `cancelled` are final. */
export type CompositionStatus = 'new' | 'running' | 'paused' | 'completed' | 'error' | 'cancelled';

/** Allowed runner transitions; anything else is a bug in symphonizer. */
export const runnerTransitions: Readonly<Record<RunnerStatus, readonly RunnerStatus[]>> = Object.freeze({
  new: ['starting', 'cancelled'],
  starting: ['running', 'cancelled', 'timed_out'],
  running: ['completed', 'error', 'timed_out', 'cancelled'],
  completed: [],
  error: [],
  timed_out: [],
  cancelled: [],
});

/** True for the final runner statuses. */
export function isFinalRunnerStatus(status: RunnerStatus): boolean {
  return status === 'completed' || status === 'error' || status === 'timed_out' || status === 'cancelled';
}
