import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ChainDefinitionError,
  ChainRunError,
  InputValidationError,
  ModelClient,
  ProviderRegistry,
  ReservedNameError,
  TemplateVariableError,
  chain,
  toServerSentEvents,
  tool,
  type ChainEvent,
  type ModelRequest,
} from '../../src/index.ts';
import { ScriptedProvider, type ScriptedReply } from '../helpers/scripted-provider.ts';

function clientWith(reply: (request: ModelRequest, n: number) => ScriptedReply): {
  client: ModelClient;
  provider: ScriptedProvider;
} {
  const provider = new ScriptedProvider('fake', reply);
  const registry = new ProviderRegistry().register(provider);
  return { client: new ModelClient({ registry, retry: { maxRetries: 2, baseDelayMs: 1 } }), provider };
}

const lastUser = (request: ModelRequest): string => {
  const last = request.messages.at(-1);
  return last?.role === 'user' ? last.content : '';
};

const Outline = z.object({ title: z.string(), sections: z.array(z.string()).min(1) });

describe('chain.run()', () => {
  it('runs prompt nodes in order, feeding typed outputs downstream through templates and functions', async () => {
    const { client, provider } = clientWith((request) =>
      request.output !== undefined
        ? { json: { title: 'Tides', sections: ['Moon', 'Sun'] } }
        : `draft of: ${lastUser(request)}`,
    );
    const report = chain({ name: 'report', input: z.object({ topic: z.string() }), model: 'fake:m', client })
      .prompt('outline', { template: 'Outline a report on {{input.topic}}.', output: Outline })
      .prompt('draft', {
        after: ['outline'],
        prompt: ({ outline, input }) => ({
          system: 'You write.',
          user: `${outline.title} (${input.topic}): ${outline.sections.join(', ')}`,
        }),
      })
      .build();
    const result = await report.run({ topic: 'tides' });
    expect(result.outputs.outline).toEqual({ title: 'Tides', sections: ['Moon', 'Sun'] });
    expect(result.outputs.draft).toBe('draft of: Tides (tides): Moon, Sun');
    expect(provider.requests[0]?.messages[0]).toEqual({
      role: 'user',
      content: 'Outline a report on tides.',
    });
    expect(provider.requests[1]?.system).toBe('You write.');
    expect(result.trace.map((r) => [r.key, r.status])).toEqual([
      ['outline', 'completed'],
      ['draft', 'completed'],
    ]);
    expect(result.usage.calls).toBe(2);
    expect(result.usageByNode.outline?.inputTokens).toBe(10);
  });

  it('fans out and in: parallel nodes, then one that reads them all', async () => {
    let inFlight = 0;
    let peak = 0;
    const provider = new ScriptedProvider('fake', (request) => `answer to ${lastUser(request)}`);
    const slow = {
      name: 'slow',
      complete: async (request: ModelRequest) => {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight -= 1;
        return provider.complete(request);
      },
      stream: (request: ModelRequest) => provider.stream(request),
    };
    const client = new ModelClient({ registry: new ProviderRegistry().register(slow) });
    const c = chain({ input: z.object({ q: z.string() }), model: 'slow:m', client })
      .prompt('a', { template: 'A {{input.q}}' })
      .prompt('b', { template: 'B {{input.q}}' })
      .prompt('c', { template: 'C {{input.q}}' })
      .prompt('merge', { after: ['a', 'b', 'c'], prompt: ({ a, b, c: third }) => [a, b, third].join(' | ') })
      .build();
    const { outputs } = await c.run({ q: 'x' });
    expect(peak).toBe(3);
    expect(outputs.merge).toBe('answer to answer to A x | answer to B x | answer to C x');
  });

  it('validates the input against the schema before anything runs', async () => {
    const { client, provider } = clientWith(() => 'x');
    const c = chain({
      name: 'strict',
      input: z.object({ topic: z.string().min(3) }),
      model: 'fake:m',
      client,
    })
      .prompt('a', { template: '{{input.topic}}' })
      .build();
    const error = await c.run({ topic: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputValidationError);
    expect((error as InputValidationError).issues[0]?.path).toBe('topic');
    expect((error as Error).message).toMatch(/Input of chain "strict" is invalid: input\.topic/);
    expect(provider.requests).toHaveLength(0);
  });

  it('fails with a ChainRunError naming the node, keeping the outputs so far', async () => {
    const { client } = clientWith((request) =>
      lastUser(request).startsWith('bad') ? new Error('model exploded') : 'fine',
    );
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .prompt('good', { template: 'good input' })
      .prompt('bad', { after: ['good'], template: 'bad input' })
      .build();
    const error = (await c.run({}).catch((e: unknown) => e)) as ChainRunError;
    expect(error).toBeInstanceOf(ChainRunError);
    expect(error.code).toBe('chain_failed');
    expect(error.node).toBe('bad');
    expect(error.outputs).toEqual({ good: 'fine' });
    expect(error.message).toContain('model exploded');
  });

  it('applies per-node overrides of model and template', async () => {
    const { client, provider } = clientWith((request) => `${request.model}: ${lastUser(request)}`);
    const c = chain({ input: z.object({ x: z.string() }), model: 'fake:base', client })
      .prompt('a', { template: 'one {{input.x}}' })
      .build();
    const { outputs } = await c.run(
      { x: 'y' },
      { overrides: { a: { model: 'fake:other', template: 'two {{input.x}}' } } },
    );
    expect(outputs.a).toBe('other: two y');
    expect(provider.requests[0]?.model).toBe('other');
    expect(() => c.compose({ x: 'y' }, { overrides: { nope: { model: 'fake:m' } } })).toThrow(
      ChainDefinitionError,
    );
  });

  it('runs every node on a run-wide model, unless a node override says otherwise', async () => {
    const { client, provider } = clientWith((request) => request.model);
    const c = chain({ input: z.object({}), model: 'fake:base', client })
      .prompt('a', { template: 'first one' })
      .prompt('b', { template: 'second one' })
      .build();
    const { outputs } = await c.run(
      {},
      { model: 'fake:everyone', overrides: { b: { model: 'fake:special' } } },
    );
    expect(outputs).toEqual({ a: 'everyone', b: 'special' });
    expect(provider.requests).toHaveLength(2);
  });

  it('runs many inputs through one Perform', async () => {
    const { client } = clientWith((request) => lastUser(request).toUpperCase());
    const c = chain({ input: z.object({ word: z.string() }), model: 'fake:m', client })
      .prompt('shout', { template: '{{input.word}}' })
      .build();
    const results = await c.runAll(
      [{ word: 'a' }, { word: 'b' }, { word: 1 } as unknown as { word: string }],
      { highWater: 2 },
    );
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.outputs.shout : 'rejected'))).toEqual([
      'A',
      'B',
      'rejected',
    ]);
  });

  it('re-runs a failed call through retryTask, visible in the trace and as a retry event', async () => {
    const failOnce = Object.assign(new Error('overloaded'), { status: 529, isRetryable: true });
    const { client } = clientWith((_request, n) => (n === 1 ? failOnce : 'ok'));
    const events: ChainEvent[] = [];
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .prompt('a', { template: 'Say hi.' })
      .build();
    const result = await c.run({}, { onEvent: (e) => events.push(e) });
    expect(result.trace.map((r) => [r.status, r.attempt, r.error?.status])).toEqual([
      ['retrying', 1, 529],
      ['completed', 2, undefined],
    ]);
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'node-start').map((e) => e.attempt)).toEqual([1, 2]);
  });

  it('refuses bad definitions with clear errors', () => {
    const base = chain({ input: z.object({}) });
    expect(() => base.prompt('input' as never, { template: 'x' })).toThrow(/not allowed/);
    expect(() => base.prompt('a', {})).toThrow(/neither a template nor a prompt/);
    expect(() => base.prompt('a', { after: ['zzz' as never], template: 'x' })).toThrow(
      /runs after "zzz", which is not in the chain/,
    );
    expect(() => base.build()).toThrow(/at least one node/);
  });

  it('draws itself as Mermaid and DOT', () => {
    const c = chain({ name: 'g', input: z.object({}), model: 'sim:x' })
      .prompt('a', { template: 'x' })
      .prompt('b', { after: ['a'], template: 'y' })
      .build();
    expect(c.toMermaid()).toContain('input --> a');
    expect(c.toMermaid()).toContain('a --> b');
    expect(c.toDot()).toContain('"a" -> "b";');
    expect(c.toDot()).toMatch(/^digraph "g" \{/);
  });

  it('works offline on the simulated model, and says so', async () => {
    const client = new ModelClient({ registry: new ProviderRegistry({ simulated: {} }) });
    const c = chain({ input: z.object({ topic: z.string() }), model: 'sim:demo', client })
      .prompt('outline', { template: 'Outline {{input.topic}}', output: Outline })
      .build();
    const result = await c.run({ topic: 'rivers' });
    expect(Outline.safeParse(result.outputs.outline).success).toBe(true);
    expect(result.simulated).toBe(true);
  });
});

describe('chain.stream()', () => {
  it('yields chain-start, node-start, tokens, node-done and chain-done in order', async () => {
    const { client } = clientWith(() => 'one two three');
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .prompt('a', { template: 'Say hi.' })
      .build();
    const stream = c.stream({});
    const events: ChainEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      'chain-start',
      'node-start',
      'token',
      'token',
      'token',
      'node-done',
      'chain-done',
    ]);
    expect(
      events
        .filter((e) => e.type === 'token')
        .map((e) => e.text)
        .join(''),
    ).toBe('one two three');
    const done = events.at(-1);
    expect(done?.type === 'chain-done' && done.status).toBe('completed');
    await expect(stream.result).resolves.toMatchObject({ outputs: { a: 'one two three' } });
  });

  it('becomes server-sent events', async () => {
    const { client } = clientWith(() => 'hello world');
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .prompt('a', { template: 'Say hi.' })
      .build();
    const text = await new Response(toServerSentEvents(c.stream({}))).text();
    const events = text.trim().split('\n\n');
    expect(events[0]).toMatch(/^event: chain-start\ndata: \{"type":"chain-start"/);
    expect(events.at(-1)).toMatch(/^event: chain-done\ndata: .*"status":"completed"/);
    expect(events.filter((e) => e.startsWith('event: token'))).toHaveLength(2);
  });
});

describe('agent nodes', () => {
  const add = tool({
    name: 'add',
    description: 'Adds two numbers.',
    input: z.object({ a: z.number(), b: z.number() }),
    run: ({ a, b }) => a + b,
  });
  const fail = tool({
    name: 'fail',
    description: 'Always fails.',
    input: z.object({}),
    run: () => {
      throw new Error('tool broke');
    },
  });

  it('calls tools in a loop, sends tool errors back as results, then returns the final answer', async () => {
    const { client, provider } = clientWith((request, n) => {
      if (n === 1)
        return {
          toolCalls: [
            { name: 'add', arguments: { a: 2, b: 3 } },
            { name: 'fail', arguments: {} },
          ],
        };
      if (n === 2) return { toolCalls: [{ name: 'add', arguments: { a: 'x' } }] };
      const results = request.messages.filter((m) => m.role === 'tool').map((m) => m.content);
      return `done with ${results.join(' / ')}`;
    });
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('calc', { template: 'Add 2 and 3', tools: [add, fail] })
      .build();
    const result = await c.run({});
    expect(result.outputs.calc).toBe(
      'done with 5 / Error: tool broke / Error: invalid arguments for "add": a: Invalid input: expected number, received string; b: Invalid input: expected number, received undefined',
    );
    expect(result.steps.calc?.map((s) => s.toolCalls.map((t) => t.ok))).toEqual([[true, false], [false], []]);
    expect(provider.requests[0]?.tools?.map((t) => t.name)).toEqual(['add', 'fail']);
  });

  it('stops calling tools after maxSteps and asks for a validated final answer', async () => {
    const Answer = z.object({ total: z.number() });
    const { client, provider } = clientWith((request) =>
      request.tools !== undefined
        ? { toolCalls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }
        : { json: { total: 2 } },
    );
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('calc', { template: 'Loop please.', tools: [add], maxSteps: 2, output: Answer })
      .build();
    const result = await c.run({});
    expect(result.outputs.calc).toEqual({ total: 2 });
    expect(provider.requests).toHaveLength(3);
    expect(provider.requests[2]?.tools).toBeUndefined();
    expect(provider.requests[2]?.output?.name).toBe('calc');
  });

  it('runs on the simulated model, which calls the first tool and then answers', async () => {
    const client = new ModelClient({ registry: new ProviderRegistry({ simulated: {} }) });
    let calls = 0;
    const lookup = tool({
      name: 'lookup',
      description: 'Looks a word up.',
      input: z.object({ word: z.string() }),
      run: ({ word }) => {
        calls += 1;
        return { word, meaning: 'a test' };
      },
    });
    const c = chain({ input: z.object({}), model: 'sim:agent', client })
      .agent('define', { template: 'Define "tide".', tools: [lookup] })
      .build();
    const result = await c.run({});
    expect(calls).toBe(1);
    expect(result.outputs.define).toMatch(/^\[simulated\]/);
  });

  it('refuses duplicate tool names', () => {
    expect(() => chain({ input: z.object({}) }).agent('x', { template: 't', tools: [add, add] })).toThrow(
      /two tools named "add"/,
    );
  });
});

describe('chains and JSON keys that objects already have', () => {
  const hidden = (): unknown => JSON.parse('{"__proto__":{"isAdmin":true}}');

  it('refuses a node named __proto__, constructor or toString with a ReservedNameError naming it', () => {
    const base = chain({ input: z.object({}) });
    for (const name of ['__proto__', 'constructor', 'toString']) {
      let caught: unknown;
      try {
        base.prompt(name, { template: 'x' });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ReservedNameError);
      expect(caught).toMatchObject({ code: 'reserved_name', nodeName: name });
      expect((caught as Error).message).toContain(`"${name}"`);
    }
  });

  it('keeps "__proto__" keys of the input and of outputs as own data, in null-prototype records', async () => {
    const { client } = clientWith((request) =>
      request.output !== undefined ? { json: { meta: hidden() } } : `echo: ${lastUser(request)}`,
    );
    const seen: unknown[] = [];
    const c = chain({ name: 'keys', input: z.object({ doc: z.unknown() }), model: 'fake:m', client })
      .prompt('first', { template: 'Read {{json input.doc}}', output: z.object({ meta: z.unknown() }) })
      .prompt('second', {
        after: ['first'],
        prompt: (context) => {
          seen.push(context.first.meta);
          return `meta ${JSON.stringify(context.first.meta)}`;
        },
      })
      .build();
    const result = await c.run({ doc: hidden() });
    expect(Object.getPrototypeOf(result.outputs)).toBeNull();
    expect(Object.keys(result.outputs).sort()).toEqual(['first', 'second']);
    expect('constructor' in result.outputs).toBe(false);
    expect('toString' in result.usageByNode).toBe(false);
    expect(Object.getPrototypeOf(result.steps)).toBeNull();
    const meta = result.outputs.first.meta as Record<string, unknown>;
    expect(meta['isAdmin']).toBeUndefined();
    expect(Object.keys(meta)).toEqual(['__proto__']);
    expect((seen[0] as Record<string, unknown>)['isAdmin']).toBeUndefined();
    expect(result.outputs.second).toBe('echo: meta {"__proto__":{"isAdmin":true}}');
    expect(JSON.stringify(result.outputs)).toBe(
      '{"first":{"meta":{"__proto__":{"isAdmin":true}}},"second":"echo: meta {\\"__proto__\\":{\\"isAdmin\\":true}}"}',
    );
  });

  it('fails a template that reads an inherited member of the input as a missing variable', async () => {
    const { client, provider } = clientWith(() => 'never');
    const c = chain({ name: 'keys', input: z.object({ doc: z.unknown() }), model: 'fake:m', client })
      .prompt('first', { template: 'Is admin: {{input.doc.constructor}}' })
      .build();
    const failure = await c.run({ doc: hidden() }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ChainRunError);
    expect((failure as ChainRunError).cause).toBeInstanceOf(TemplateVariableError);
    expect((failure as ChainRunError).cause).toMatchObject({
      variable: 'input.doc.constructor',
      nodeKey: 'first',
    });
    expect(provider.requests).toHaveLength(0);
  });
});
