/**
 * Calling user code (hooks, listeners, callbacks) from inside a running mechanism.
 */

/**
 * Call `hook` with `args` so that a throwing hook cannot corrupt the caller's state: its error is rethrown on a
 * microtask, where it surfaces as an uncaught exception (as an EventEmitter listener's would), and the caller
 * goes on.
 */
export function callHook<Args extends readonly unknown[]>(
  hook: (...args: Args) => unknown,
  ...args: Args
): void {
  try {
    hook(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
