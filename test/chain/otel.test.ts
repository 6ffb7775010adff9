/**
 * OpenTelemetry spans of chain runs, through the real OpenAI SDK against the loopback fake server, into the
 * OpenTelemetry SDK's in-memory exporter: the span tree of a fan-out/fan-in chain whose first call fails
 * once with a 500 and is retried, the GenAI attributes, parent links, content only on opt-in, no secrets;
 * the global tracer provider picked up by default; and nothing of OpenTelemetry loaded without it.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ChainRunError,
  InvalidOptionError,
  ModelClient,
  type ModelClientOptions,
  ProviderRegistry,
  chain,
  createOpenAIProvider,
  mcpTools,
  tool,
} from '../../src/index.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { fakeKey } from '../helpers/fake-keys.ts';

const KEY = fakeKey('test', 'openai', 'S3CRETotel0123456789wxyz');
const MODEL = 'openai:gpt-4.1-mini';

let server: FakeProviderServer;
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('otel-test');

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
  await provider.shutdown();
});
beforeEach(() => {
  server.reset();
  exporter.reset();
  server.options.respond = (request) =>
    request.tools.length > 0 && !request.lastIsToolResult
      ? { toolCalls: [{ id: 'call_lookup_1', name: 'lookup', arguments: { term: 'otel' } }] }
      : { text: `answer to: ${request.lastUserText.slice(0, 24)}` };
});

function client(limits?: ModelClientOptions['limits']): ModelClient {
  const registry = new ProviderRegistry().register(
    createOpenAIProvider({ baseURL: server.openaiBaseURL, apiKey: KEY }),
  );
  return new ModelClient({ registry, retry: { baseDelayMs: 2, maxRetries: 2 }, limits });
}

const lookup = tool({
  name: 'lookup',
  description: 'Looks a term up.',
  input: z.object({ term: z.string() }),
  run: ({ term }) => `${term}: spans of a run`,
});

/** plan -> (facts | research agent) -> merge. */
function fanChain(c: ModelClient, telemetry?: Parameters<typeof chain>[0]['telemetry']) {
  return chain({ name: 'report', input: z.object({ topic: z.string() }), model: MODEL, client: c, telemetry })
    .prompt('plan', { prompt: ({ input }) => `Plan a report on ${input.topic}` })
    .prompt('facts', { after: ['plan'], prompt: ({ plan }) => `Facts for ${plan}` })
    .agent('research', {
      after: ['plan'],
      tools: [lookup],
      maxSteps: 2,
      prompt: ({ plan }) => `Research ${plan}`,
    })
    .prompt('merge', {
      after: ['facts', 'research'],
      prompt: ({ facts, research }) => `Merge ${facts} and ${research}`,
    })
    .build();
}

const spanId = (s: ReadableSpan): string => s.spanContext().spanId;
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
const named = (spans: readonly ReadableSpan[], name: string): ReadableSpan[] =>
  spans.filter((s) => s.name === name);
function one(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = named(spans, name);
  expect(found, name).toHaveLength(1);
  return found[0] as ReadableSpan;
}
const ms = (t: readonly [number, number]): number => t[0] * 1e3 + t[1] / 1e6;
const childrenOf = (spans: readonly ReadableSpan[], parent: ReadableSpan): ReadableSpan[] =>
  spans.filter((s) => parentOf(s) === spanId(parent));

describe('chain telemetry', () => {
  it('a fan-out/fan-in run with a retry: run > nodes > chat and execute_tool spans, GenAI attributes', async () => {
    server.failNth(1, 500);
    const result = await fanChain(client(), { tracer }).run({ topic: 'tracing' });
    const spans = exporter.getFinishedSpans();
    const run = one(spans, 'chain report');
    expect(parentOf(run)).toBeUndefined();
    expect(run.attributes).toMatchObject({
      'symphonizer.chain.name': 'report',
      'symphonizer.run.id': result.runId,
    });
    expect(spans.every((s) => s.spanContext().traceId === run.spanContext().traceId)).toBe(true);

    const nodes = ['plan', 'facts', 'merge'].map((n) => one(spans, `node ${n}`));
    const research = one(spans, 'invoke_agent research');
    for (const node of [...nodes, research]) expect(parentOf(node)).toBe(spanId(run));
    expect(research.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': 'research',
    });
    // Fan-in: merge starts after both branches ended.
    const [plan, facts, merge] = nodes as [ReadableSpan, ReadableSpan, ReadableSpan];
    expect(ms(merge.startTime)).toBeGreaterThanOrEqual(ms(facts.endTime));
    expect(ms(merge.startTime)).toBeGreaterThanOrEqual(ms(research.endTime));
    expect(ms(facts.startTime)).toBeGreaterThanOrEqual(ms(plan.endTime));

    // The plan node: a failed chat span (the 500), a retry event, then the chat span that answered.
    const planCalls = childrenOf(spans, plan);
    expect(planCalls.map((s) => s.name)).toEqual(['chat gpt-4.1-mini', 'chat gpt-4.1-mini']);
    const [failed, answered] = planCalls as [ReadableSpan, ReadableSpan];
    expect(failed.attributes['error.type']).toBe('server_error');
    expect(failed.status.code).toBe(2); // ERROR
    expect(answered.attributes['error.type']).toBeUndefined();
    expect(ms(answered.startTime)).toBeGreaterThanOrEqual(ms(failed.endTime));
    const retry = plan.events.find((e) => e.name === 'retry');
    expect(retry?.attributes).toMatchObject({
      'symphonizer.retry.attempt': 1,
      'symphonizer.retry.kind': 'transport',
    });
    expect(plan.attributes['symphonizer.node.attempts']).toBe(2);
    expect(answered.kind).toBe(2); // CLIENT
    expect(answered.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4.1-mini',
      'gen_ai.response.model': expect.stringContaining('gpt-4.1-mini') as string,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': result.usageByNode.plan?.inputTokens,
      'gen_ai.usage.output_tokens': result.usageByNode.plan?.outputTokens,
    });
    expect(answered.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);

    // The agent: chat (asks for the tool), execute_tool, chat (final answer without tools), in order.
    const agentSpans = childrenOf(spans, research).sort((a, b) => ms(a.startTime) - ms(b.startTime));
    expect(agentSpans.map((s) => s.name)).toEqual([
      'chat gpt-4.1-mini',
      'execute_tool lookup',
      'chat gpt-4.1-mini',
    ]);
    expect(agentSpans[0]?.attributes['gen_ai.response.finish_reasons']).toEqual(['tool_calls']);
    const toolSpan = agentSpans[1] as ReadableSpan;
    expect(toolSpan.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'lookup',
      'gen_ai.tool.call.id': 'call_lookup_1',
    });
    expect(toolSpan.attributes['gen_ai.tool.call.arguments']).toBeUndefined();
    expect(ms(toolSpan.startTime)).toBeGreaterThanOrEqual(ms(agentSpans[0]?.endTime ?? [0, 0]));

    // Each span lies within its parent's time.
    const byId = new Map(spans.map((s) => [spanId(s), s]));
    for (const s of spans) {
      const parent = byId.get(parentOf(s) ?? '');
      if (parent === undefined) continue;
      expect(ms(s.startTime), s.name).toBeGreaterThanOrEqual(ms(parent.startTime));
      expect(ms(s.endTime), s.name).toBeLessThanOrEqual(ms(parent.endTime));
    }
    // Every model call of the run has its span: 1 failed + 1 (plan) + 1 (facts) + 2 (agent) + 1 (merge).
    expect(named(spans, 'chat gpt-4.1-mini')).toHaveLength(6);
    expect(server.requests).toBe(6);
    // No content by default, and never the key.
    const everything = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events]));
    expect(everything).not.toContain('gen_ai.input.messages');
    expect(everything).not.toContain('Plan a report');
    expect(everything).not.toContain('S3CRETotel');
  });

  it('recordContent puts prompts, answers and tool arguments on the spans', async () => {
    await fanChain(client(), { tracer, recordContent: true }).run({ topic: 'tracing' });
    const spans = exporter.getFinishedSpans();
    const planCall = childrenOf(spans, one(spans, 'node plan'))[0] as ReadableSpan;
    const input = JSON.parse(String(planCall.attributes['gen_ai.input.messages'])) as unknown;
    expect(input).toEqual([{ role: 'user', parts: [{ type: 'text', content: 'Plan a report on tracing' }] }]);
    const output = JSON.parse(String(planCall.attributes['gen_ai.output.messages'])) as unknown;
    expect(output).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'answer to: Plan a report on tracing' }] },
    ]);
    // The agent's turns: the tool call it asked for, then its answer.
    const turns = childrenOf(spans, one(spans, 'invoke_agent research'))
      .filter((s) => s.name.startsWith('chat '))
      .sort((a, b) => ms(a.startTime) - ms(b.startTime))
      .map((s) => JSON.parse(String(s.attributes['gen_ai.output.messages'])) as unknown);
    expect(turns).toEqual([
      [
        {
          role: 'assistant',
          parts: [{ type: 'tool_call', id: 'call_lookup_1', name: 'lookup', arguments: { term: 'otel' } }],
        },
      ],
      [
        {
          role: 'assistant',
          parts: [{ type: 'text', content: expect.stringMatching(/^answer to: /) as string }],
        },
      ],
    ]);
    const toolSpan = one(spans, 'execute_tool lookup');
    expect(toolSpan.attributes['gen_ai.tool.call.arguments']).toBe('{"term":"otel"}');
    expect(toolSpan.attributes['gen_ai.tool.call.result']).toBe('otel: spans of a run');
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('S3CRETotel');
  });

  it('a failing run: the failed call, node and run spans carry error.type with the code', async () => {
    server.failNth(1, 401);
    const c = client();
    await expect(fanChain(c, { tracer }).run({ topic: 'x' })).rejects.toBeInstanceOf(ChainRunError);
    const spans = exporter.getFinishedSpans();
    const plan = one(spans, 'node plan');
    const call = one(childrenOf(spans, plan), 'chat gpt-4.1-mini');
    expect(call.attributes['error.type']).toBe('authentication_error');
    expect(plan.attributes['error.type']).toBe('authentication_error');
    expect(plan.status.code).toBe(2);
    const run = one(spans, 'chain report');
    expect(run.attributes['error.type']).toBe('authentication_error');
    expect(run.attributes['symphonizer.run.status']).toBe('error');
    expect(named(spans, 'node facts')).toHaveLength(0);
    expect(JSON.stringify(spans.map((s) => [s.attributes, s.status]))).not.toContain('S3CRETotel');
  });

  it('a streamed run under a concurrency limit: the waiting call span holds a rate_limit_wait event', async () => {
    server.options.latencyMs = 20; // so the two branches overlap and one waits for the other's slot
    const report = fanChain(client({ openai: { maxConcurrency: 1 } }), { tracer });
    const seen: string[] = [];
    const run = report.stream({ topic: 'limits' });
    for await (const event of run) seen.push(event.type);
    await run.result;
    expect(seen).toContain('token');
    const spans = exporter.getFinishedSpans();
    const calls = named(spans, 'chat gpt-4.1-mini');
    expect(calls).toHaveLength(5);
    const waits = calls.flatMap((s) => s.events.filter((e) => e.name === 'rate_limit_wait'));
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]?.attributes?.['symphonizer.reason']).toEqual(expect.any(String));
    // Streamed calls report usage and finish reasons like the others.
    for (const call of calls) {
      expect(call.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(call.attributes['gen_ai.response.finish_reasons']).toHaveLength(1);
    }
  });

  it('an MCP tool call (server-everything over stdio) is an execute_tool span of its agent', async () => {
    const root = resolve(import.meta.dirname, '../..');
    const everything = mcpTools(
      {
        command: process.execPath,
        args: [resolve(root, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'],
        stderr: 'ignore',
      },
      { name: 'everything', include: ['echo'] },
    );
    server.options.respond = (request) =>
      request.lastIsToolResult
        ? { text: `done: ${request.lastUserText}` }
        : { toolCalls: [{ id: 'call_echo_1', name: 'echo', arguments: { message: 'traced' } }] };
    try {
      const helper = chain({
        name: 'helper',
        input: z.object({ q: z.string() }),
        model: MODEL,
        client: client(),
        telemetry: { tracer, recordContent: true },
      })
        .agent('ask', { prompt: ({ input }) => input.q, tools: [everything], maxSteps: 2 })
        .build();
      await helper.run({ q: 'echo something' });
    } finally {
      await everything.close();
    }
    const spans = exporter.getFinishedSpans();
    const call = one(spans, 'execute_tool echo');
    expect(parentOf(call)).toBe(spanId(one(spans, 'invoke_agent ask')));
    expect(call.attributes).toMatchObject({
      'gen_ai.tool.name': 'echo',
      'gen_ai.tool.call.id': 'call_echo_1',
      'gen_ai.tool.call.arguments': '{"message":"traced"}',
    });
    expect(String(call.attributes['gen_ai.tool.call.result'])).toContain('traced');
    expect(call.attributes['error.type']).toBeUndefined();
  });

  it('retries that run out: one failed chat span per attempt with its own code, the node retries_exhausted', async () => {
    server.failRate(1, [500]);
    await expect(fanChain(client(), { tracer }).run({ topic: 'x' })).rejects.toBeInstanceOf(ChainRunError);
    const spans = exporter.getFinishedSpans();
    const plan = one(spans, 'node plan');
    const calls = childrenOf(spans, plan);
    expect(calls).toHaveLength(3); // maxRetries 2
    expect(calls.map((s) => s.attributes['error.type'])).toEqual([
      'server_error',
      'server_error',
      'server_error',
    ]);
    expect(plan.events.filter((e) => e.name === 'retry')).toHaveLength(2);
    expect(plan.attributes['error.type']).toBe('retries_exhausted');
  });

  it('an invalid structured output re-asked: its call span failed with output_validation, then the answer', async () => {
    server.options.respond = (request) =>
      request.index === 1 ? { json: { shade: 'red' } } : { json: { colour: 'red' } };
    const picker = chain({ name: 'pick', input: z.object({ q: z.string() }), model: MODEL, client: client() })
      .prompt('pick', { output: z.object({ colour: z.string() }), prompt: ({ input }) => input.q })
      .build();
    const result = await picker.run({ q: 'a colour' }, { telemetry: { tracer } });
    expect(result.outputs.pick).toEqual({ colour: 'red' });
    const spans = exporter.getFinishedSpans();
    const node = one(spans, 'node pick');
    const calls = childrenOf(spans, node).sort((a, b) => ms(a.startTime) - ms(b.startTime));
    expect(calls.map((s) => s.attributes['error.type'])).toEqual(['output_validation', undefined]);
    expect(calls[0]?.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0); // it answered
    expect(node.events.find((e) => e.name === 'retry')?.attributes).toMatchObject({
      'symphonizer.retry.kind': 'repair',
    });
    expect(node.attributes['error.type']).toBeUndefined();
  });

  it('a tracer that throws does not fail the run: a warning says the spans may be missing', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      let calls = 0;
      const flaky = {
        startSpan: (...args: Parameters<typeof tracer.startSpan>) => {
          calls += 1;
          if (calls === 3) throw new Error('exporter queue broke');
          return tracer.startSpan(...args);
        },
      };
      const result = await fanChain(client(), { tracer: flaky }).run({ topic: 'x' });
      expect(result.outputs.merge).toEqual(expect.any(String));
      const broken = {
        startSpan: () => {
          throw new Error('no spans today');
        },
      };
      await fanChain(client(), { tracer: broken }).run({ topic: 'x' });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([
      expect.stringContaining('spans of this run may be missing: exporter queue broke') as string,
      expect.stringContaining('this run has no spans: no spans today') as string,
    ]);
  });

  it('telemetry: false emits nothing; a bad option is a typed error', async () => {
    await fanChain(client(), false).run({ topic: 'x' });
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(() => fanChain(client(), 'yes' as unknown as boolean).compose({ topic: 'x' })).toThrow(
      InvalidOptionError,
    );
  });

  describe('with a global tracer provider registered', () => {
    afterEach(() => {
      trace.disable();
    });

    it('a run emits spans by default, and a run option turns them off', async () => {
      const c = client();
      const report = fanChain(c);
      await report.run({ topic: 'x' });
      expect(exporter.getFinishedSpans()).toHaveLength(0); // nothing registered yet
      trace.setGlobalTracerProvider(provider);
      await report.run({ topic: 'x' });
      const spans = exporter.getFinishedSpans();
      expect(one(spans, 'chain report').instrumentationScope.name).toBe('symphonizer');
      expect(named(spans, 'chat gpt-4.1-mini')).toHaveLength(5);
      exporter.reset();
      await report.run({ topic: 'x' }, { telemetry: false });
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    });
  });
});

describe('without telemetry', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  /** What a fresh process that imports symphonizer/chain and runs a chain resolves of `@opentelemetry`. */
  function otelResolved(telemetry: string): string[] {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = [];
      registerHooks({
        resolve(specifier, context, next) {
          if (specifier.includes('@opentelemetry')) seen.push(specifier);
          return next(specifier, context);
        },
      });
      const { chain } = await import('./src/chain/index.ts');
      const { z } = await import('zod');
      const c = chain({ name: 'c', input: z.object({ q: z.string() }), telemetry: ${telemetry} })
        .prompt('a', { prompt: ({ input }) => input.q })
        .build();
      await c.run({ q: 'hi' });
      console.log(JSON.stringify(seen));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, SYMPHONIZER_MODEL: 'sim:default' },
    });
    return JSON.parse(out.trim().split('\n').at(-1) ?? '') as string[];
  }

  it('importing symphonizer/chain and running a chain loads nothing of @opentelemetry', () => {
    expect(otelResolved('undefined')).toEqual([]);
    // The same probe sees the package once a run asks for telemetry.
    expect(otelResolved('true')).toEqual(['@opentelemetry/api']);
  });
});
