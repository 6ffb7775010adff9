/**
 * The floor of the chain peer bench: the same 5-call chain as plain async functions, `Promise.all` for the
 * fan-out, each "model call" a zero-latency async function returning the fixed answer. In structured mode
 * each call also does the work no framework can skip: `JSON.parse` of the answer and validation with the
 * schema. What a framework costs per call above this floor is its overhead.
 */
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

type Answer = string | Section;

// Each reads its prompt, so the prompt is built as in the frameworks' chains.
const textCall = (prompt: string): Promise<Answer> => Promise.resolve(prompt.length > 0 ? TEXT_ANSWER : '');
const structuredCall = (prompt: string): Promise<Answer> =>
  Promise.resolve(Section.parse(JSON.parse(prompt.length > 0 ? JSON_ANSWER : '{}')));

/** Plain `Promise.all` of zero-latency async functions. */
export const promiseAll: ChainVariant = {
  prepare(mode) {
    const call = mode === 'text' ? textCall : structuredCall;
    const [a, b, c] = BRANCHES;
    const runOne = async (index: number): Promise<void> => {
      const plan = await call(planPrompt(inputOf(index)));
      const [facts, risks, ideas] = await Promise.all(
        [a, b, c].map((name) => call(branchPrompt(name, plan))),
      );
      const report = await call(reportPrompt(facts!, risks!, ideas!));
      if (index === 0) checkReport(mode, report);
    };
    return Promise.resolve((count, concurrency) => pool(count, concurrency, runOne));
  },
};
