/**
 * symphonizer's side of the chain peer bench: the 5-call chain built once with `chain()`, run with
 * `runAll` (its Perform keeps 100 chains in flight: highWater 100, lowWater 100), on either a constant
 * provider (a zero-latency {@link Provider} that answers every call with the same response, registered in a
 * {@link ProviderRegistry} of its own) or the built-in simulated model (`sim:bench` on the default client).
 * Only the public API is used.
 */
import {
  ModelClient,
  ProviderRegistry,
  chain,
  type ModelRequest,
  type ModelResponse,
  type Provider,
  type StreamEvent,
} from '../../src/index.ts';
import {
  BRANCHES,
  JSON_ANSWER,
  Section,
  TEXT_ANSWER,
  branchPrompt,
  checkReport,
  inputOf,
  planPrompt,
  reportPrompt,
  type ChainVariant,
  type Mode,
} from './chain-shared.ts';
import { z } from '../../node_modules/zod/index.js';

/**
 * A provider that answers at once with a fixed response: {@link TEXT_ANSWER}, or for a structured request
 * the JSON text {@link JSON_ANSWER} (no pre-parsed `json`, so the client parses and validates it like any
 * provider's text).
 */
export function createConstantProvider(name = 'const'): Provider {
  const usage = { inputTokens: 24, outputTokens: 16 };
  const text: ModelResponse = {
    provider: name,
    model: 'fixed',
    text: TEXT_ANSWER,
    toolCalls: [],
    finishReason: 'stop',
    usage,
  };
  const json: ModelResponse = { ...text, text: JSON_ANSWER };
  const answer = (request: ModelRequest): ModelResponse => (request.output === undefined ? text : json);
  return {
    name,
    complete: (request) => Promise.resolve(answer(request)),
    async *stream(request): AsyncIterable<StreamEvent> {
      await Promise.resolve();
      const response = answer(request);
      yield { type: 'text-delta', text: response.text };
      yield { type: 'finish', response };
    },
  };
}

function build(mode: Mode, model: string, client: ModelClient | undefined) {
  const output = mode === 'structured' ? Section : undefined;
  const [a, b, c] = BRANCHES;
  return chain({ name: 'peer-bench', input: z.object({ topic: z.string() }), model, client })
    .prompt('plan', { prompt: ({ input }) => planPrompt(input), output })
    .prompt(a, { after: ['plan'], prompt: ({ plan }) => branchPrompt(a, plan), output })
    .prompt(b, { after: ['plan'], prompt: ({ plan }) => branchPrompt(b, plan), output })
    .prompt(c, { after: ['plan'], prompt: ({ plan }) => branchPrompt(c, plan), output })
    .prompt('report', {
      after: [a, b, c],
      prompt: ({ facts, risks, ideas }) => reportPrompt(facts, risks, ideas),
      output,
    })
    .build();
}

function variant(provider: 'const' | 'sim'): ChainVariant {
  return {
    prepare(mode) {
      const client =
        provider === 'const'
          ? new ModelClient({ registry: new ProviderRegistry().register(createConstantProvider()) })
          : undefined; // the default client: the built-in `sim` provider, as a user gets it
      const benchChain = build(mode, provider === 'const' ? 'const:fixed' : 'sim:bench', client);
      return Promise.resolve(async (count, concurrency) => {
        const inputs = Array.from({ length: count }, (_, i) => inputOf(i));
        const settled = await benchChain.runAll(inputs, { highWater: concurrency, lowWater: concurrency });
        let first = true;
        for (const entry of settled) {
          if (entry.status === 'rejected') throw entry.reason;
          // `sim` answers are generated from the prompt, so only the constant provider's are known.
          if (first && provider === 'const') checkReport(mode, entry.value.outputs.report);
          first = false;
        }
      });
    },
  };
}

/** symphonizer on the constant provider. */
export const symphonizerConstant: ChainVariant = variant('const');

/** symphonizer on the built-in simulated model. */
export const symphonizerSim: ChainVariant = variant('sim');
