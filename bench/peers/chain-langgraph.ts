/**
 * LangGraph.js's side of the chain peer bench: the same 5-call chain as a `StateGraph` (`plan` fans out to
 * three nodes by plain edges, a multi-source edge fans them in to `report`), compiled once, one `invoke`
 * per chain, on `FakeListChatModel` from `@langchain/core/utils/testing` answering at once with a fixed
 * message. Structured calls go through `withStructuredOutput(Section)`; the fake model's version only parses
 * the JSON, so each node validates with the schema as a real model's structured output does.
 */
import type { BaseMessage } from '@langchain/core/messages';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import {
  JSON_ANSWER,
  Section,
  TEXT_ANSWER,
  branchPrompt,
  checkReport,
  inputOf,
  planPrompt,
  pool,
  reportPrompt,
  type ChainInputValue,
  type ChainVariant,
  type Mode,
} from './chain-shared.ts';

type Answer = string | Section;

// A state key cannot share a node's name: each node writes `<node>Answer`.
const State = Annotation.Root({
  topic: Annotation<string>(),
  planAnswer: Annotation<Answer>(),
  factsAnswer: Annotation<Answer>(),
  risksAnswer: Annotation<Answer>(),
  ideasAnswer: Annotation<Answer>(),
  reportAnswer: Annotation<Answer>(),
});

function build(mode: Mode) {
  const model = new FakeListChatModel({ responses: [mode === 'text' ? TEXT_ANSWER : JSON_ANSWER] });
  const structured = model.withStructuredOutput(Section);
  const call =
    mode === 'text'
      ? async (prompt: string): Promise<Answer> => ((await model.invoke(prompt)) as BaseMessage).text
      : async (prompt: string): Promise<Answer> => Section.parse(await structured.invoke(prompt));
  const branch = (name: 'facts' | 'risks' | 'ideas') => async (state: typeof State.State) => ({
    [`${name}Answer`]: await call(branchPrompt(name, state.planAnswer)),
  });
  return new StateGraph(State)
    .addNode('plan', async (state) => ({ planAnswer: await call(planPrompt(state as ChainInputValue)) }))
    .addNode('facts', branch('facts'))
    .addNode('risks', branch('risks'))
    .addNode('ideas', branch('ideas'))
    .addNode('report', async (state) => ({
      reportAnswer: await call(reportPrompt(state.factsAnswer, state.risksAnswer, state.ideasAnswer)),
    }))
    .addEdge(START, 'plan')
    .addEdge('plan', 'facts')
    .addEdge('plan', 'risks')
    .addEdge('plan', 'ideas')
    .addEdge(['facts', 'risks', 'ideas'], 'report')
    .addEdge('report', END)
    .compile();
}

/** LangGraph.js with a zero-latency fake chat model. */
export const langGraph: ChainVariant = {
  prepare(mode) {
    const graph = build(mode);
    const runOne = async (index: number): Promise<void> => {
      const state = await graph.invoke({ topic: inputOf(index).topic });
      if (index === 0) checkReport(mode, state.reportAnswer);
    };
    return Promise.resolve((count, concurrency) => pool(count, concurrency, runOne));
  },
};
