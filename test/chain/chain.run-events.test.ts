/**
 * A run's events are its own: concurrent runs through one client (runAll, or compositions in one Perform)
 * each get their own retries, usage and steps, while the client's own `onEvent` still sees every call. And
 * an agent node's or a streamed node's retried model call is an attempt of the node, in the trace like any
 * other.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ModelClient,
  Perform,
  ProviderRegistry,
  chain,
  tool,
  type CallEvent,
  type ChainEvent,
  type ModelRequest,
} from '../../src/index.ts';
import { ScriptedProvider, type ScriptedReply } from '../helpers/scripted-provider.ts';

const overloaded = (): Error => Object.assign(new Error('overloaded'), { status: 529, isRetryable: true });

function clientWith(reply: (request: ModelRequest, n: number) => ScriptedReply): {
  client: ModelClient;
  provider: ScriptedProvider;
  clientEvents: CallEvent[];
} {
  const provider = new ScriptedProvider('fake', reply);
  const clientEvents: CallEvent[] = [];
  const client = new ModelClient({
    registry: new ProviderRegistry().register(provider),
    retry: { maxRetries: 3, baseDelayMs: 1 },
    onEvent: (event) => clientEvents.push(event),
  });
  return { client, provider, clientEvents };
}

const firstUser = (request: ModelRequest): string => {
  const first = request.messages[0];
  return first?.role === 'user' ? first.content : '';
};

const echo = tool({
  name: 'echo',
  description: 'Echoes a number.',
  input: z.object({ n: z.number() }),
  run: ({ n }) => n,
});

/** Run `run <k>` calls the echo tool k times, then answers `done <k>`. */
function toolTurns(request: ModelRequest): ScriptedReply {
  const k = Number(/run (\d+)/.exec(firstUser(request))?.[1]);
  const turns = request.messages.filter((m) => m.role === 'tool').length;
  return turns < k ? { toolCalls: [{ name: 'echo', arguments: { n: turns } }] } : `done ${k}`;
}

describe('per-run events', () => {
  it('runAll gives each run only its own calls: usage, steps and outputs per run', async () => {
    const { client, clientEvents } = clientWith(toolTurns);
    const c = chain({ input: z.object({ k: z.number() }), model: 'fake:m', client })
      .agent('loop', { prompt: ({ input }) => `run ${input.k}`, tools: [echo], maxSteps: 10 })
      .build();
    const ks = [3, 0, 5, 1, 4, 2, 0, 6];
    const events: ChainEvent[] = [];
    const results = await c.runAll(
      ks.map((k) => ({ k })),
      { highWater: 4, onEvent: (e) => events.push(e) },
    );
    results.forEach((r, i) => {
      const k = ks[i] ?? 0;
      expect(r.status).toBe('fulfilled');
      if (r.status !== 'fulfilled') return;
      expect(r.value.outputs.loop).toBe(`done ${k}`);
      expect(r.value.usage.calls).toBe(k + 1);
      expect(r.value.usageByNode.loop?.calls).toBe(k + 1);
      expect(r.value.steps.loop).toHaveLength(k + 1);
    });
    const calls = ks.reduce((sum, k) => sum + k + 1, 0);
    expect(events.filter((e) => e.type === 'agent-step')).toHaveLength(calls);
    expect(events.filter((e) => e.type === 'chain-done')).toHaveLength(ks.length);
    // The client's own listener still sees every call of every run.
    expect(clientEvents.filter((e) => e.type === 'call')).toHaveLength(calls);
  });

  it('runs in one Perform each see only their own retries', async () => {
    const failures = new Map<string, number>();
    const { client, clientEvents } = clientWith((request) => {
      const prompt = firstUser(request);
      const want = Number(/fail (\d+)/.exec(prompt)?.[1]);
      const seen = failures.get(prompt) ?? 0;
      if (seen < want) {
        failures.set(prompt, seen + 1);
        return overloaded();
      }
      return `ok ${prompt}`;
    });
    const c = chain({ input: z.object({ id: z.number(), fail: z.number() }), model: 'fake:m', client })
      .prompt('a', { prompt: ({ input }) => `id ${input.id} fail ${input.fail}` })
      .build();
    const perform = new Perform({ highWater: 3 });
    const runs = Array.from({ length: 9 }, (_, id) => {
      const events: ChainEvent[] = [];
      const run = c.compose({ id, fail: id % 3 }, { onEvent: (e) => events.push(e) });
      void perform.add(run.composition);
      return { id, events, result: run.result };
    });
    for (const run of runs) {
      const result = await run.result;
      expect(result.outputs.a).toBe(`ok id ${run.id} fail ${run.id % 3}`);
      const retries = run.events.filter((e) => e.type === 'retry');
      expect(retries.map((e) => e.attempt)).toEqual(Array.from({ length: run.id % 3 }, (_, i) => i + 1));
      expect(result.trace).toHaveLength((run.id % 3) + 1);
      expect(run.events.filter((e) => e.type === 'chain-start')).toHaveLength(1);
      expect(run.events.filter((e) => e.type === 'chain-done')).toHaveLength(1);
      expect(result.usage.calls).toBe(1);
    }
    expect(clientEvents.filter((e) => e.type === 'retry')).toHaveLength(9);
  });
});

describe('agent retries', () => {
  it('a retried model call of an agent is a retryTask attempt of its node that resumes the loop', async () => {
    let ran = 0;
    const counted = tool({
      name: 'count',
      description: 'Counts its runs.',
      input: z.object({}),
      run: () => {
        ran += 1;
        return ran;
      },
    });
    const { client, provider } = clientWith((request, n) => {
      if (n === 1) return { toolCalls: [{ name: 'count', arguments: {} }] };
      if (n === 2) return overloaded();
      return `counted ${request.messages.filter((m) => m.role === 'tool').length}`;
    });
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .agent('agent', { template: 'Count once.', tools: [counted] })
      .build();
    const events: ChainEvent[] = [];
    const result = await c.run({}, { onEvent: (e) => events.push(e) });
    expect(result.outputs.agent).toBe('counted 1');
    expect(ran).toBe(1);
    expect(provider.requests).toHaveLength(3);
    // The retried request is the same conversation as the failed one.
    expect(provider.requests[2]?.messages).toEqual(provider.requests[1]?.messages);
    expect(result.trace.map((r) => [r.key, r.status, r.attempt, r.error?.status])).toEqual([
      ['agent', 'retrying', 1, 529],
      ['agent', 'completed', 2, undefined],
    ]);
    expect(result.trace[1]?.parentId).toBe(result.trace[0]?.runnerId);
    expect(events.filter((e) => e.type === 'retry').map((e) => [e.node, e.attempt])).toEqual([['agent', 1]]);
    expect(events.filter((e) => e.type === 'node-start').map((e) => e.attempt)).toEqual([1, 2]);
    expect(result.steps.agent?.map((s) => s.toolCalls.length)).toEqual([1, 0]);
    expect(result.usage.calls).toBe(2);
  });
});

describe('streamed node retries', () => {
  it('a streamed text node retried before its first token is a retryTask attempt in the trace', async () => {
    const { client } = clientWith((_request, n) => (n === 1 ? overloaded() : 'all of it'));
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .prompt('answer', { template: 'Say it.' })
      .build();
    const events: ChainEvent[] = [];
    const result = await c.run({}, { streamTokens: true, onEvent: (e) => events.push(e) });
    expect(result.outputs.answer).toBe('all of it');
    expect(result.trace.map((r) => [r.status, r.attempt, r.error?.status])).toEqual([
      ['retrying', 1, 529],
      ['completed', 2, undefined],
    ]);
    expect(events.filter((e) => e.type === 'retry')).toMatchObject([{ node: 'answer', attempt: 1 }]);
    expect(events.filter((e) => e.type === 'retry' && e.discardTokens === true)).toHaveLength(0);
    expect(
      events
        .filter((e) => e.type === 'token')
        .map((e) => e.text)
        .join(''),
    ).toBe('all of it');
  });
});

describe('chain.runAll() inputs', () => {
  it('reads inputs as room frees up: at most twice highWater runs prepared and not ended', async () => {
    let ended = 0;
    let mostAhead = 0;
    const { client } = clientWith(() => {
      ended += 1;
      return 'ok';
    });
    const c = chain({ input: z.object({ i: z.number() }), model: 'fake:m', client })
      .prompt('a', { prompt: ({ input }) => `n ${input.i}` })
      .build();
    function* inputs(): Generator<{ i: number }> {
      for (let i = 0; i < 40; i++) {
        mostAhead = Math.max(mostAhead, i - ended);
        yield { i };
      }
    }
    const results = await c.runAll(inputs(), { highWater: 3 });
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.outputs.a : ''))).toEqual(
      Array.from({ length: 40 }, () => 'ok'),
    );
    expect(mostAhead).toBeLessThanOrEqual(6);
  });

  it('rejects when the inputs themselves throw', async () => {
    const { client } = clientWith(() => 'ok');
    const c = chain({ input: z.object({}), model: 'fake:m', client })
      .prompt('a', { template: 'x' })
      .build();
    function* broken(): Generator<Record<string, never>> {
      yield {};
      throw new Error('no more inputs');
    }
    await expect(c.runAll(broken())).rejects.toThrow('no more inputs');
  });
});
