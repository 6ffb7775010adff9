/**
 * The retry decisions of one logical call, made attempt by attempt: transport failures go to the client's
 * {@link RetryPolicy} with their own count; invalid outputs are re-asked at once from a separate budget, with
 * feedback for the model; and when retrying stops, which error the caller sees.
 */
import type { ChatMessage } from './types.ts';
import { RetriesExhaustedError, type RetryDecision, type RetryPolicy } from './retry.ts';
import { OutputValidationError, repairFeedback } from './structured-output.ts';

/**
 * The retry state of one logical call (shared by all its attempts: a node's runner and its `retryTask()`
 * children, or each model call of an agent's loop). Make one with `ModelClient.callRetries()` and pass it to
 * every `ModelClient.attempt()` of the call.
 */
export class CallRetries {
  readonly #policy: RetryPolicy;
  readonly #repairAttempts: number;
  readonly #errors: unknown[] = [];
  #transportFailures = 0;
  #repairs = 0;
  #firstStartedAt: number | undefined;
  #feedback: readonly ChatMessage[] | undefined;

  /** @internal Use `ModelClient.callRetries()`. */
  constructor(policy: RetryPolicy, repairAttempts: number) {
    this.#policy = policy;
    this.#repairAttempts = repairAttempts;
  }

  /** What every failed attempt threw, oldest first. */
  get errors(): readonly unknown[] {
    return this.#errors;
  }

  /** Transport failures so far (invalid outputs not counted). */
  get transportFailures(): number {
    return this.#transportFailures;
  }

  /** The messages a re-ask appends after an invalid output (the reply and what was wrong with it), if any. */
  get feedback(): readonly ChatMessage[] | undefined {
    return this.#feedback;
  }

  /** Marks an attempt's start; the first one starts the clock of the policy's `deadlineMs`. */
  started(): void {
    this.#firstStartedAt ??= performance.now();
  }

  /**
   * The verdict on a failed attempt: an invalid output is re-asked (no delay) while the repair budget
   * lasts, anything else goes to the policy with the count of transport failures so far.
   */
  decide(error: unknown): RetryDecision {
    this.#errors.push(error);
    if (error instanceof OutputValidationError) {
      this.#feedback = [
        { role: 'assistant', content: error.rawText },
        { role: 'user', content: repairFeedback(error) },
      ];
      if (this.#repairs >= this.#repairAttempts) {
        return {
          retry: false,
          stop: 'not_retryable',
          reason: `the output failed validation and the repair budget of ${this.#repairAttempts} re-asks is spent`,
        };
      }
      this.#repairs += 1;
      return {
        retry: true,
        delayMs: 0,
        source: 'backoff',
        reason: `the output failed validation (${error.kind}); re-ask ${this.#repairs} of ${this.#repairAttempts}`,
      };
    }
    this.#transportFailures += 1;
    const elapsedMs = performance.now() - (this.#firstStartedAt ?? performance.now());
    return this.#policy.shouldRetry(error, this.#transportFailures, elapsedMs);
  }

  /**
   * What the caller sees once retrying stopped on `error`: the error itself when it is an abort, the first
   * failure or an invalid output; else a {@link RetriesExhaustedError} holding every attempt's error.
   */
  failure(error: unknown, decision: Extract<RetryDecision, { retry: false }>): unknown {
    if (decision.stop === 'aborted' || this.#errors.length === 1 || error instanceof OutputValidationError) {
      return error;
    }
    return new RetriesExhaustedError(decision.stop, decision.reason, this.#errors);
  }
}
