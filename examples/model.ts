/**
 * Which model the examples use, shared by every example script:
 *
 *   1. SYMPHONIZER_MODEL, when set (any `provider:model`, e.g. `ollama:llama3.1:8b`);
 *   2. else `openai:gpt-4.1-mini` when OPENAI_API_KEY is set;
 *   3. else `anthropic:claude-sonnet-4-5` when ANTHROPIC_API_KEY is set;
 *   4. else `sim:demo`, the offline simulated model (no key, no network, deterministic answers).
 *
 * An empty variable counts as unset, so `OPENAI_API_KEY= node examples/x.ts` runs offline.
 */
import { ModelClient } from '../src/index.ts';

/** Reads an environment variable; empty or blank means unset. */
function env(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** The model to run the examples on (see the list above). */
export function pickModel(): string {
  return (
    env('SYMPHONIZER_MODEL') ??
    (env('OPENAI_API_KEY') !== undefined
      ? 'openai:gpt-4.1-mini'
      : env('ANTHROPIC_API_KEY') !== undefined
        ? 'anthropic:claude-sonnet-4-5'
        : 'sim:demo')
  );
}

/** True for the offline simulated model (`sim:*`). */
export function isSimulated(model: string): boolean {
  return model.startsWith('sim:');
}

/** The line every example prints first, so you always know what answered. */
export function modelBanner(model: string): string {
  return isSimulated(model)
    ? `model: ${model} (simulated: offline and deterministic; answers are placeholders. Set OPENAI_API_KEY, ANTHROPIC_API_KEY or SYMPHONIZER_MODEL for a real model)`
    : `model: ${model} (real model: calls cost money)`;
}

/**
 * A ModelClient with sensible guards for a demo: a few requests at once to real providers (the simulated
 * one is unlimited), retries on 429/5xx, one re-ask when structured output fails its schema, and a spending
 * ceiling so a loop can never run up a bill.
 */
const realLimits = { maxConcurrency: 4, requestsPerMinute: 300 };

export function exampleClient(maxUsd = 0.5): ModelClient {
  return new ModelClient({
    limits: { openai: realLimits, anthropic: realLimits },
    retry: { maxRetries: 3, baseDelayMs: 500 },
    repairAttempts: 1,
    budget: { maxUsd },
  });
}
