/**
 * What travels through Redis for one distributed run: the job (a chain name, its JSON input, the content
 * hash of the chain's definition, the run options; never a Composition), the job id derived from the run id,
 * the keys of a run's record and checkpoint, and chain results and errors as JSON and back.
 */
import { createHash } from 'node:crypto';
import { ChainRunError, InputValidationError } from '../chain/errors.ts';
import type { ChainResult, NodeOverride } from '../chain/types.ts';
import type { NodeRecord } from '../core/composition.ts';
import { SymphonizerError } from '../core/errors.ts';
import type { OutputIssue } from '../providers/structured-output.ts';
import type { UsageTotals } from '../providers/usage.ts';
import { ChainMismatchError, RunFailedError, UnknownChainError } from './errors.ts';

/** @internal The data of one job: one chain run. */
export interface ChainJobData {
  /** The chain's key in the `chains` record. */
  readonly chain: string;
  /** The content hash of the producer's chain definition (`chain.hash`). */
  readonly hash: string;
  /** The chain input, as JSON. */
  readonly input: unknown;
  readonly runId: string;
  readonly model?: string | undefined;
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
}

const plainId = /^[A-Za-z0-9_.-]{1,128}$/u;

/**
 * @internal The BullMQ job id of a run: `r-<runId>` for a plain id (letters, digits, `_`, `.`, `-`, at
 * most 128), else `h-` and a hash of it (BullMQ ids may not hold `:`).
 */
export function jobIdOf(runId: string): string {
  return plainId.test(runId)
    ? `r-${runId}`
    : `h-${createHash('sha256').update(runId).digest('base64url').slice(0, 32)}`;
}

/** @internal Redis keys of a queue's runs, in one hash slot per queue (`{prefix:queue}`). */
export interface RunKeys {
  /** The record that makes `submit` idempotent. */
  record(runId: string): string;
  /** The hash of a run's checkpointed nodes (and its failure, field `!failure`). */
  checkpoint(runId: string): string;
  /** The pub/sub channel of the queue's run events. */
  readonly events: string;
}

/** @internal The keys of `queue`'s runs under `prefix`. */
export function runKeys(prefix: string, queue: string): RunKeys {
  const tag = `{${prefix}:${queue}}`;
  return {
    record: (runId) => `${tag}:run:${runId}`,
    checkpoint: (runId) => `${tag}:cp:${runId}`,
    events: `${tag}:events`,
  };
}

/** @internal The field of a checkpoint hash that holds a failed run's error. */
export const FAILURE_FIELD = '!failure';

/** An error as JSON: enough to rebuild the typed chain error on the producer. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string | undefined;
  readonly status?: number | undefined;
  /** For a chain error: the chain, its status, the node, and what it kept. */
  readonly chain?: string | undefined;
  readonly runStatus?: 'error' | 'cancelled' | undefined;
  readonly node?: string | undefined;
  readonly outputs?: Readonly<Record<string, unknown>> | undefined;
  readonly trace?: readonly NodeRecord[] | undefined;
  readonly usage?: UsageTotals | undefined;
  readonly issues?: readonly OutputIssue[] | undefined;
  readonly expected?: string | undefined;
  readonly actual?: string | undefined;
  readonly known?: readonly string[] | undefined;
  readonly cause?: SerializedError | undefined;
}

/**
 * The error a remote worker raised, as the cause of a rebuilt {@link ChainRunError}: the original's class
 * `name`, `message`, `code` and HTTP `status` (for a provider error). It is not the original class.
 */
export class RemoteError extends Error {
  /** The original error's `code`, when it had one. */
  readonly code: string | undefined;
  /** The original error's HTTP status, when it had one. */
  readonly status: number | undefined;

  constructor(serialized: SerializedError) {
    super(serialized.message, {
      cause: serialized.cause === undefined ? undefined : new RemoteError(serialized.cause),
    });
    this.name = serialized.name;
    this.code = serialized.code;
    this.status = serialized.status;
  }
}

/** @internal `error` as JSON (causes up to 4 deep); `chain` names the chain of a {@link ChainRunError}. */
export function serializeError(error: unknown, chain?: string, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const e = error as Error & { code?: unknown; status?: unknown };
  const base = {
    name: e.name,
    message: e.message,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.status === 'number' ? { status: e.status } : {}),
    ...(depth < 4 && e.cause !== undefined ? { cause: serializeError(e.cause, undefined, depth + 1) } : {}),
  };
  if (error instanceof ChainRunError) {
    return {
      ...base,
      chain,
      runStatus: error.status,
      node: error.node,
      outputs: { ...error.outputs },
      trace: error.trace,
      usage: error.usage,
    };
  }
  if (error instanceof InputValidationError) return { ...base, chain: error.chain, issues: error.issues };
  if (error instanceof ChainMismatchError)
    return { ...base, chain: error.chain, expected: error.expected, actual: error.actual };
  if (error instanceof UnknownChainError) return { ...base, chain: error.chain, known: error.known };
  return base;
}

/**
 * @internal The typed error of a failed run, rebuilt from what its worker stored: a {@link ChainRunError}
 * (status, node, outputs, trace, usage; its cause a {@link RemoteError}), an {@link InputValidationError},
 * a {@link ChainMismatchError} or an {@link UnknownChainError}; anything else a {@link RunFailedError}.
 */
export function rebuildError(runId: string, serialized: SerializedError): SymphonizerError {
  switch (serialized.code) {
    case 'chain_failed':
    case 'chain_cancelled':
      return new ChainRunError({
        chain: serialized.chain ?? 'chain',
        status: serialized.runStatus ?? (serialized.code === 'chain_failed' ? 'error' : 'cancelled'),
        node: serialized.node,
        cause: serialized.cause === undefined ? undefined : new RemoteError(serialized.cause),
        outputs: nullRecord(serialized.outputs ?? {}),
        trace: serialized.trace ?? [],
        usage: serialized.usage ?? zeroUsage(),
      });
    case 'invalid_input':
      return new InputValidationError(serialized.chain ?? 'chain', serialized.issues ?? []);
    case 'chain_mismatch':
      return new ChainMismatchError(
        serialized.chain ?? 'chain',
        serialized.expected ?? '',
        serialized.actual ?? '',
      );
    case 'unknown_chain':
      return new UnknownChainError(serialized.chain ?? 'chain', serialized.known ?? [], 'worker');
    default:
      return new RunFailedError(runId, serialized.message);
  }
}

/** @internal A chain result as its worker returns it (JSON), with the submitted run id. */
export function serializeResult(runId: string, result: ChainResult<Record<string, unknown>>): unknown {
  return { ...result, runId };
}

/** @internal A chain result rebuilt from its JSON: node-keyed records get a null prototype again. */
export function rebuildResult(value: unknown): ChainResult<Record<string, unknown>> {
  const r = value as ChainResult<Record<string, unknown>>;
  return {
    ...r,
    outputs: nullRecord(r.outputs),
    usageByNode: nullRecord(r.usageByNode),
    steps: nullRecord(r.steps),
  };
}

function nullRecord<V>(record: Readonly<Record<string, V>>): Record<string, V> {
  return Object.assign(Object.create(null) as Record<string, V>, record);
}

function zeroUsage(): UsageTotals {
  return { inputTokens: 0, outputTokens: 0, totalTokens: 0, costUsd: 0, calls: 0, unpricedCalls: 0 };
}
