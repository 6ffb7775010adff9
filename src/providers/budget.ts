/**
 * A client's spending ceiling in flight: a call is checked against its {@link Budget} with the estimates of
 * the client's calls already sent and not yet recorded, and holds its own estimate while it is in flight, so
 * many concurrent calls cannot overspend the budget together.
 */
import type { ModelRequest } from './types.ts';
import { BudgetExceededError, type Budget, type PriceTable } from './usage.ts';

/** Output tokens assumed for a request that sets no `maxTokens`, in estimates. */
export const defaultOutputTokens = 1024;

/** One call's estimate, in tokens and USD. */
interface Estimate {
  readonly tokens: number;
  readonly usd: number;
}

/** @internal The in-flight view of a client's {@link Budget}. */
export class InFlightBudget {
  readonly #budget: Budget;
  readonly #prices: PriceTable;
  /** Sum of the estimates of the calls sent and not yet recorded; zeroed once none is in flight. */
  readonly #pending = { calls: 0, tokens: 0, usd: 0 };

  constructor(budget: Budget, prices: PriceTable) {
    this.#budget = budget;
    this.#prices = prices;
  }

  /**
   * Refuses a call whose estimate, with the estimates of this client's calls in flight, would pass the budget.
   * @returns the call's estimate.
   * @throws {BudgetExceededError} then; `spent` includes the in-flight estimates, `estimate` is this call's.
   */
  check(modelId: string, request: ModelRequest, estimatedTokens: number): Estimate {
    const outputTokens = request.maxTokens ?? defaultOutputTokens;
    const usd =
      this.#prices.costOf(modelId, {
        inputTokens: Math.max(0, estimatedTokens - outputTokens),
        outputTokens,
      }).costUsd ?? 0;
    const pending = this.#pending;
    try {
      this.#budget.check({ tokens: estimatedTokens + pending.tokens, costUsd: usd + pending.usd });
    } catch (error) {
      if (!(error instanceof BudgetExceededError) || pending.calls === 0) throw error;
      // Report this call's own estimate; what is in flight counts as spent.
      const tokens = error.kind === 'tokens';
      throw new BudgetExceededError(
        error.kind,
        error.limit,
        error.spent + (tokens ? pending.tokens : pending.usd),
        tokens ? estimatedTokens : usd,
      );
    }
    return { tokens: estimatedTokens, usd };
  }

  /**
   * {@link InFlightBudget.check}, then holds the estimate until the returned function is called (calling
   * it again does nothing).
   */
  reserve(modelId: string, request: ModelRequest, estimatedTokens: number): () => void {
    const estimate = this.check(modelId, request, estimatedTokens);
    const pending = this.#pending;
    pending.calls += 1;
    pending.tokens += estimate.tokens;
    pending.usd += estimate.usd;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      pending.calls -= 1;
      pending.tokens -= estimate.tokens;
      pending.usd -= estimate.usd;
      if (pending.calls === 0) {
        // No float residue once nothing is in flight.
        pending.tokens = 0;
        pending.usd = 0;
      }
    };
  }
}
