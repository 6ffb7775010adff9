/**
 * Every error symphonizer throws is a {@link SymphonizerError} with a stable, snake_case `code`, so callers
 * can branch on `err.code` rather than on message text, which may improve over time.
 */

const marker = Symbol.for('symphonizer.error');

/**
 * Codes of the errors `symphonizer/core` raises. Each layer defines the codes of its own errors; the root entry's
 * `ErrorCode` is the union of them all. New codes may be added; existing ones never change meaning.
 */
export type CoreErrorCode =
  | 'invalid_option'
  | 'invalid_payload'
  | 'invalid_graph'
  | 'conflicting_node'
  | 'reserved_name'
  | 'cycle'
  | 'runner_state'
  | 'cancelled'
  | 'timed_out'
  | 'try_again'
  | 'continue_after'
  | 'stop_schedule'
  | 'node_failed'
  | 'missing_peer_dependency';

/** The message of an error, or the string of a thrown value that is not an `Error`. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Options common to every {@link SymphonizerError}. */
export interface SymphonizerErrorOptions {
  /** The underlying error, if any. */
  readonly cause?: unknown;
  /** What the user can do about it, one sentence. */
  readonly hint?: string | undefined;
}

/**
 * Base class of every symphonizer error.
 *
 * @example
 * ```ts
 * if (SymphonizerError.isInstance(err) && err.code === 'cycle') { ... }
 * ```
 */
export class SymphonizerError<Code extends string = string> extends Error {
  /** Stable machine-readable code, one of its layer's codes (all of them: the root entry's `ErrorCode`). */
  readonly code: Code;
  /** What to do about it, if we know. */
  readonly hint: string | undefined;
  readonly [marker] = true;

  constructor(code: Code, message: string, options: SymphonizerErrorOptions = {}) {
    super(options.hint === undefined ? message : `${message} (${options.hint})`, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  /** True for any symphonizer error, even one from another copy of the package. */
  static isInstance(value: unknown): value is SymphonizerError {
    return typeof value === 'object' && value !== null && marker in value;
  }
}

/** An option had a bad value; `option` names it and `value` holds what was received. */
export class InvalidOptionError extends SymphonizerError<CoreErrorCode> {
  /** Name of the option, e.g. `highWater`. */
  readonly option: string;
  /** The value received. */
  readonly value: unknown;

  constructor(option: string, value: unknown, expected: string, options: SymphonizerErrorOptions = {}) {
    super('invalid_option', `Option \`${option}\` must be ${expected}, got ${describe(value)}.`, options);
    this.option = option;
    this.value = value;
  }
}

/** A DAGNote payload is not plain JSON; `path` points at the first offending value. */
export class InvalidPayloadError extends SymphonizerError<CoreErrorCode> {
  /** Name of the note whose payload was refused. */
  readonly nodeName: string;
  /** Path of the first bad value, e.g. `payload.items[2].at`. */
  readonly path: string;

  constructor(nodeName: string, path: string, problem: string) {
    super('invalid_payload', `DAGNote "${nodeName}": ${path} ${problem}.`, {
      hint: 'payloads must be plain JSON: null, booleans, finite numbers, strings, arrays and plain objects',
    });
    this.nodeName = nodeName;
    this.path = path;
  }
}

/**
 * Node names that JavaScript objects already have as keys: the members of `Object.prototype` and `prototype`.
 * A node's name is a key of the `inputs` its successors see (and, in a chain, of `outputs` and of the template
 * variables), so such a name would read an inherited member instead of the node's output, or (`__proto__`)
 * replace the prototype of the object holding the outputs. {@link DAGNote} and the chain builder refuse them.
 */
export const RESERVED_NODE_NAMES: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toString',
  'toLocaleString',
  'valueOf',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

/**
 * A node was given a reserved name (one of {@link RESERVED_NODE_NAMES}, such as `__proto__` or `constructor`).
 * Code `reserved_name`; `nodeName` holds the name.
 */
export class ReservedNameError extends SymphonizerError<CoreErrorCode> {
  /** The refused name. */
  readonly nodeName: string;

  constructor(nodeName: string) {
    super(
      'reserved_name',
      `Node name "${nodeName}" is reserved: it is a key every JavaScript object already has, so the node's output could not be told apart from it.`,
      { hint: 'rename the node, e.g. with a prefix or suffix' },
    );
    this.nodeName = nodeName;
  }
}

/** The graph given to a Composition is malformed (bad shape, or two different payloads under one key). */
export class InvalidGraphError extends SymphonizerError<CoreErrorCode> {
  /** Key of the node concerned, when there is one. */
  readonly nodeKey: string | undefined;

  constructor(code: 'invalid_graph' | 'conflicting_node', message: string, nodeKey?: string, hint?: string) {
    super(code, message, { hint });
    this.nodeKey = nodeKey;
  }
}

/** The graph has a cycle; thrown by the Composition constructor. */
export class CycleError extends SymphonizerError<CoreErrorCode> {
  /** Node keys, each an immediate predecessor of the next, first and last the same: `['A', 'B', 'A']`. */
  readonly cycle: string[];

  constructor(cycle: string[]) {
    super('cycle', `The graph has a cycle: ${cycle.join(' → ')}.`, {
      hint: 'a node cannot depend, directly or through others, on itself',
    });
    this.cycle = cycle;
  }
}

/** A runner or composition was used in a way its state does not allow (e.g. `execute()` twice). */
export class RunnerStateError extends SymphonizerError<CoreErrorCode> {
  constructor(message: string, hint?: string) {
    super('runner_state', message, { hint });
  }
}

/** A runner was cancelled; `execute()` rejects with it. */
export class CancelledError extends SymphonizerError<CoreErrorCode> {
  constructor(reason?: unknown) {
    super(
      'cancelled',
      reason === undefined
        ? 'The runner was cancelled.'
        : `The runner was cancelled: ${describeReason(reason)}.`,
      {
        cause: reason,
      },
    );
  }
}

/** A runner exceeded its `timeoutMs`; `execute()` rejects with it. */
export class NodeTimeoutError extends SymphonizerError<CoreErrorCode> {
  /** The timeout that was exceeded. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super('timed_out', `The runner timed out after ${timeoutMs} ms.`);
    this.timeoutMs = timeoutMs;
  }
}

/** Options of {@link TryAgainError}. */
export interface TryAgainOptions extends SymphonizerErrorOptions {
  /** Wait this long before the retry starts. @default 0 */
  readonly delayMs?: number | undefined;
}

/**
 * Thrown by an executor to have its node re-run through `runner.retryTask()`, at most `maxTries` times in all.
 *
 * @example
 * ```ts
 * throw new TryAgainError('upstream busy', { delayMs: 250 });
 * ```
 */
export class TryAgainError extends SymphonizerError<CoreErrorCode> {
  /** Delay before the retry, in milliseconds. */
  readonly delayMs: number;

  constructor(message = 'Try again.', options: TryAgainOptions = {}) {
    super('try_again', message, options);
    const delay = options.delayMs ?? 0;
    if (!Number.isFinite(delay) || delay < 0)
      throw new InvalidOptionError('delayMs', delay, 'a finite number >= 0');
    this.delayMs = delay;
  }
}

/** Thrown by an executor to record its error, mark the node done (`completed_error`) and let successors run. */
export class ContinueAfterError extends SymphonizerError<CoreErrorCode> {
  constructor(message = 'Continue after error.', options: SymphonizerErrorOptions = {}) {
    super('continue_after', message, options);
  }
}

/** Thrown by an executor to stop the whole composition (status `cancelled`); running nodes finish. */
export class StopScheduleError extends SymphonizerError<CoreErrorCode> {
  constructor(message = 'Stop the schedule.', options: SymphonizerErrorOptions = {}) {
    super('stop_schedule', message, options);
  }
}

/** A composition's `error` when one of its nodes failed; `cause` is what the node threw. */
export class NodeError extends SymphonizerError<CoreErrorCode> {
  /** Key of the node that failed. */
  readonly nodeKey: string;

  constructor(nodeKey: string, cause: unknown) {
    super('node_failed', `Node "${nodeKey}" failed: ${describeReason(cause)}`, { cause });
    this.nodeKey = nodeKey;
  }
}

/**
 * An optional peer dependency that a feature needs is not installed (`pg` for the PostgreSQL run store,
 * `ioredis` and `bullmq` for `symphonizer/distributed`). Raised where the package is first loaded, by every
 * layer that loads one, so callers branch on one class and one code.
 *
 * @example
 * ```ts
 * catch (err) { if (err instanceof MissingPeerDependencyError) console.error(`npm install ${err.packageName}`); }
 * ```
 */
export class MissingPeerDependencyError extends SymphonizerError<CoreErrorCode> {
  /** The npm package to install, e.g. `pg`. */
  readonly packageName: string;

  constructor(packageName: string, feature: string, cause?: unknown) {
    super(
      'missing_peer_dependency',
      `${feature} needs the optional package "${packageName}", which is not installed.`,
      {
        hint: `install it next to symphonizer: npm install ${packageName}`,
        cause,
      },
    );
    this.packageName = packageName;
  }
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  if (typeof reason === 'string') return reason;
  return describe(reason);
}

/** A short, safe description of a value for error messages: its type and a bounded preview. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    case 'number':
    case 'boolean':
      return `${String(value)} (${typeof value})`;
    case 'bigint':
      return `${value.toString()}n (bigint)`;
    case 'symbol':
      return value.toString();
    case 'function':
      return 'a function';
    case 'object': {
      if (Array.isArray(value)) return `an array of length ${value.length}`;
      const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
      const ctor = proto?.constructor?.name;
      return ctor !== undefined && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object';
    }
    default:
      return typeof value;
  }
}
