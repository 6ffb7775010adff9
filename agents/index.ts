/**
 * Ready agents: typed node-spec factories to pass to `.prompt(name, spec)` (or to spread into
 * `.agent(name, { ...spec, tools })`), each with its template in `prompts/agents/` and an exported zod output
 * schema.
 * @packageDocumentation
 */

export {
  type Classification,
  classificationSchema,
  classifier,
  type ClassificationSchema,
  type ClassifierOptions,
} from './classifier.ts';
export { asText, inputText, type AgentNodeSpec, type CommonAgentOptions, type Reads } from './common.ts';
export { Critique, CritiqueIssue, critic, defaultCriteria, type CriticOptions } from './critic.ts';
export {
  extractionFields,
  extractor,
  type Extraction,
  type ExtractionField,
  type ExtractorOptions,
} from './extractor.ts';
export {
  defaultJudgeScale,
  defaultPassAt,
  judge,
  judgmentSchema,
  type Judgment,
  type JudgeOptions,
  type JudgeScale,
  type JudgmentSchema,
} from './judge.ts';
export { judgeScorer, type JudgeScorerOptions } from './judge-scorer.ts';
export { reviser, type ReviserOptions } from './reviser.ts';
export { routeSchema, router, type RouteChoice, type RouteSchema, type RouterOptions } from './router.ts';
export { Summary, summarizer, type SummarizerOptions } from './summarizer.ts';
