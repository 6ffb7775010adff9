/**
 * The AI SDK's side of the chain peer bench: the same 5-call chain written the way the AI SDK documents it,
 * `generateText` per call and `Promise.all` for the fan-out, on `MockLanguageModelV3` from `ai/test`
 * answering at once with a fixed result. Structured calls pass `output: Output.object({ schema })` (the
 * AI SDK 7 form of `generateObject`), built once per schema and reused, which is the best case for it.
 */
import { Output, generateText } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import {
  BRANCHES,
  JSON_ANSWER,
  Section,
  TEXT_ANSWER,
  branchPrompt,
  checkReport,
  inputOf,
  planPrompt,
  pool,
  reportPrompt,
  type ChainVariant,
} from './chain-shared.ts';

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;

function result(text: string): GenerateResult {
  return {
    content: [{ type: 'text', text }],
    finishReason: { unified: 'stop', raw: 'stop' },
    usage: {
      inputTokens: { total: 24, noCache: 24, cacheRead: undefined, cacheWrite: undefined },
      outputTokens: { total: 16, text: 16, reasoning: undefined },
    },
    warnings: [],
  };
}

/** The AI SDK 7 with a zero-latency mock model. */
export const aiSdk: ChainVariant = {
  prepare(mode) {
    const text = result(TEXT_ANSWER);
    const json = result(JSON_ANSWER);
    const model = new MockLanguageModelV3({
      doGenerate: (options) => Promise.resolve(options.responseFormat?.type === 'json' ? json : text),
    });
    const output = Output.object({ schema: Section });
    const [a, b, c] = BRANCHES;

    const runText = async (index: number): Promise<void> => {
      const plan = await generateText({ model, prompt: planPrompt(inputOf(index)) });
      const [facts, risks, ideas] = await Promise.all(
        [a, b, c].map((branch) => generateText({ model, prompt: branchPrompt(branch, plan.text) })),
      );
      const report = await generateText({
        model,
        prompt: reportPrompt(facts!.text, risks!.text, ideas!.text),
      });
      // The mock keeps every call's options; drop them so its own memory does not count against the SDK.
      model.doGenerateCalls.length = 0;
      if (index === 0) checkReport(mode, report.text);
    };

    const runStructured = async (index: number): Promise<void> => {
      const plan = await generateText({ model, output, prompt: planPrompt(inputOf(index)) });
      const [facts, risks, ideas] = await Promise.all(
        [a, b, c].map((branch) => generateText({ model, output, prompt: branchPrompt(branch, plan.output) })),
      );
      const report = await generateText({
        model,
        output,
        prompt: reportPrompt(facts!.output, risks!.output, ideas!.output),
      });
      model.doGenerateCalls.length = 0;
      if (index === 0) checkReport(mode, report.output);
    };

    const runOne = mode === 'text' ? runText : runStructured;
    return Promise.resolve((count, concurrency) => pool(count, concurrency, runOne));
  },
};
