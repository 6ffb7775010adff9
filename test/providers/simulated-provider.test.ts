import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidOptionError } from '../../src/core/errors.ts';
import { AbortedError, InternalServerError, RateLimitError } from '../../src/providers/errors.ts';
import { createSimulatedProvider, sampleJsonSchema } from '../../src/providers/simulated/index.ts';
import type { JsonSchema, ModelRequest, StreamEvent } from '../../src/providers/types.ts';

const ask = (content: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'sim-1',
  messages: [{ role: 'user', content }],
  ...extra,
});

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

const articleSchema = {
  type: 'object',
  properties: {
    title: { type: 'string', minLength: 5, maxLength: 40 },
    author: { type: 'string' },
    published: { type: 'string', format: 'date' },
    contact: { type: 'string', format: 'email' },
    link: { type: 'string', format: 'uri' },
    sentiment: { type: 'string', enum: ['positive', 'neutral', 'negative'] },
    score: { type: 'number', minimum: 0, maximum: 1 },
    stars: { type: 'integer', minimum: 1, maximum: 5 },
    tags: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 4, uniqueItems: true },
    sections: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        properties: { heading: { type: 'string' }, words: { type: 'integer', minimum: 10 } },
        required: ['heading', 'words'],
        additionalProperties: false,
      },
    },
    draft: { type: 'boolean' },
    note: { type: ['string', 'null'] },
  },
  required: [
    'title',
    'author',
    'published',
    'contact',
    'link',
    'sentiment',
    'score',
    'stars',
    'tags',
    'sections',
    'draft',
    'note',
  ],
  additionalProperties: false,
} satisfies JsonSchema;

const validatorFor = (schema: JsonSchema) => z.fromJSONSchema(schema, {});

describe('createSimulatedProvider()', () => {
  it('answers the same request identically, and marks the answer simulated', async () => {
    const sim = createSimulatedProvider();
    const a = await sim.complete(ask('Explain quarterly revenue growth drivers'));
    const b = await createSimulatedProvider().complete(ask('Explain quarterly revenue growth drivers'));
    expect(a.text).toBe(b.text);
    expect(a.text.startsWith('[simulated] ')).toBe(true);
    expect(a.simulated).toBe(true);
    expect(a.provider).toBe('sim');
    expect(a.text).toMatch(/quarterly|revenue|growth|drivers/);
    expect(a.text.length).toBeLessThan(200);
  });

  it('changes the answer with the seed, the prompt or the system text', async () => {
    const texts = new Set<string>();
    for (const [seed, prompt, system] of [
      [0, 'Compare apples oranges bananas', 'a'],
      [1, 'Compare apples oranges bananas', 'a'],
      [2, 'Compare apples oranges bananas', 'a'],
      [0, 'Compare pears plums figs', 'a'],
    ] as const) {
      texts.add((await createSimulatedProvider({ seed }).complete(ask(prompt, { system }))).text);
    }
    expect(texts.size).toBeGreaterThan(2);
  });

  it('echoes the last user message for the echo model', async () => {
    const response = await createSimulatedProvider().complete(ask('hello world', { model: 'echo' }));
    expect(response.text).toBe('[simulated] hello world');
  });

  it('estimates usage as characters / 4', async () => {
    const response = await createSimulatedProvider().complete(ask('x'.repeat(40), { system: 'y'.repeat(8) }));
    expect(response.usage.inputTokens).toBe(12);
    expect(response.usage.outputTokens).toBe(Math.ceil(response.text.length / 4));
  });

  it('returns schema-valid JSON with plausible values for structured output', async () => {
    const sim = createSimulatedProvider();
    const validator = validatorFor(articleSchema);
    const response = await sim.complete(
      ask('Write a review of the new electric bicycle', {
        output: { name: 'article', schema: articleSchema },
      }),
    );
    expect(validator.safeParse(response.json).success).toBe(true);
    expect(JSON.parse(response.text)).toEqual(response.json);
    const json = response.json as Record<string, unknown>;
    expect(json['contact']).toMatch(/^[^@\s]+@example\.com$/);
    expect(json['published']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(String(json['title'])).not.toMatch(/lorem|ipsum/i);
  });

  it('produces schema-valid samples for any seed', () => {
    const validator = validatorFor(articleSchema);
    fc.assert(
      fc.property(
        fc.integer(),
        fc.array(fc.string({ minLength: 3 }), { maxLength: 5 }),
        (seed, vocabulary) => {
          const value = sampleJsonSchema(articleSchema, { seed, vocabulary });
          const result = validator.safeParse(value);
          if (!result.success) throw new Error(JSON.stringify({ value, issues: result.error.issues }));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('honours $ref, anyOf, const, multipleOf and exclusive bounds', () => {
    const schema: JsonSchema = {
      type: 'object',
      $defs: {
        point: {
          type: 'object',
          properties: { x: { type: 'number', multipleOf: 0.5, exclusiveMinimum: 0, maximum: 3 } },
          required: ['x'],
        },
      },
      properties: {
        a: { $ref: '#/$defs/point' },
        b: { anyOf: [{ type: 'null' }, { type: 'integer', exclusiveMaximum: 3, minimum: 2 }] },
        c: { const: 'fixed' },
      },
      required: ['a', 'b', 'c'],
    };
    const validator = validatorFor(schema);
    for (let seed = 0; seed < 50; seed++) {
      const value = sampleJsonSchema(schema, { seed });
      expect(validator.safeParse(value).success).toBe(true);
      expect(value).toMatchObject({ b: 2, c: 'fixed' });
    }
  });

  it('uses the first matching script entry, by substring or regex, against system + last user message', async () => {
    const sim = createSimulatedProvider({
      script: [
        {
          match: /capital of (\w+)/i,
          reply: (r: ModelRequest) => `Capital reply for ${r.messages.length} message(s)`,
        },
        { match: 'capital', reply: 'never reached' },
        { match: 'PIRATE', reply: { arr: 'matey' } },
      ],
    });
    expect((await sim.complete(ask('What is the capital of France?'))).text).toBe(
      'Capital reply for 1 message(s)',
    );
    const json = await sim.complete(ask('hello', { system: 'Talk like a PIRATE' }));
    expect(json.json).toEqual({ arr: 'matey' });
    expect(json.text).toBe('{"arr":"matey"}');
    expect((await sim.complete(ask('unrelated'))).text.startsWith('[simulated]')).toBe(true);
  });

  it('calls the first tool, then answers once a tool result arrives', async () => {
    const sim = createSimulatedProvider();
    const tools = [
      {
        name: 'lookup_city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    ];
    const first = await sim.complete(ask('Where is Lisbon?', { tools }));
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls).toHaveLength(1);
    expect(first.toolCalls[0]).toMatchObject({
      name: 'lookup_city',
      arguments: { city: expect.any(String) as unknown },
    });
    const second = await sim.complete(
      ask('', {
        tools,
        messages: [
          { role: 'user', content: 'Where is Lisbon?' },
          { role: 'assistant', content: '', toolCalls: first.toolCalls },
          { role: 'tool', toolCallId: first.toolCalls[0]!.id, content: 'Portugal' },
        ],
      }),
    );
    expect(second.finishReason).toBe('stop');
    expect(second.text).toContain('Portugal');
  });

  it('fails deterministically at failureRate with a retryable InternalServerError, and a retry gets a new draw', async () => {
    const run = async () => {
      const sim = createSimulatedProvider({ failureRate: 0.5 });
      const outcomes: string[] = [];
      for (let i = 0; i < 40; i++) {
        try {
          await sim.complete(ask(`question ${i % 10}`));
          outcomes.push('ok');
        } catch (error) {
          expect(error).toBeInstanceOf(InternalServerError);
          expect((error as InternalServerError).isRetryable).toBe(true);
          outcomes.push('fail');
        }
      }
      return outcomes;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(first.filter((o) => o === 'fail').length).toBeGreaterThan(5);
    expect(first.filter((o) => o === 'ok').length).toBeGreaterThan(5);
  });

  it('fails with the configured status', async () => {
    const sim = createSimulatedProvider({ failureRate: 1, failureStatus: 429 });
    await expect(sim.complete(ask('x'))).rejects.toBeInstanceOf(RateLimitError);
  });

  it('validates its options', () => {
    expect(() => createSimulatedProvider({ failureRate: 1.5 })).toThrow(InvalidOptionError);
    expect(() => createSimulatedProvider({ failureRate: Number.NaN })).toThrow(InvalidOptionError);
    expect(() => createSimulatedProvider({ latency: { minMs: 5, maxMs: 1 } })).toThrow(InvalidOptionError);
    expect(() => createSimulatedProvider({ failureStatus: 200 })).toThrow(InvalidOptionError);
  });

  it('streams word-sized deltas that add up to the text, then one finish', async () => {
    const sim = createSimulatedProvider();
    const request = ask('Summarise the meeting notes about budget planning');
    const events = await collect(sim.stream(request));
    const deltas = events.filter((e) => e.type === 'text-delta').map((e) => e.text);
    const finish = events.at(-1);
    expect(finish?.type).toBe('finish');
    if (finish?.type !== 'finish') return;
    expect(deltas.join('')).toBe(finish.response.text);
    expect(deltas.length).toBeGreaterThan(3);
    expect(finish.response).toEqual(
      await sim.complete(request).then((r) => ({ ...r, requestId: finish.response.requestId })),
    );
  });

  it('aborts the latency wait with AbortedError and removes its listener', async () => {
    const sim = createSimulatedProvider({ latency: { minMs: 10_000, maxMs: 10_000 } });
    const controller = new AbortController();
    const pending = sim.complete(ask('x', { signal: controller.signal }));
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    await expect(sim.complete(ask('x', { signal: AbortSignal.abort() }))).rejects.toBeInstanceOf(
      AbortedError,
    );
    const quick = createSimulatedProvider({ latency: { minMs: 1, maxMs: 1 } });
    const live = new AbortController();
    await quick.complete(ask('x', { signal: live.signal }));
    expect(getEventListeners(live.signal, 'abort')).toHaveLength(0);
  });

  it('honours a latency function and a small latency range', async () => {
    const seen: string[] = [];
    const sim = createSimulatedProvider({
      latency: (request) => {
        seen.push(request.model);
        return 1;
      },
    });
    await sim.complete(ask('x'));
    expect(seen).toEqual(['sim-1']);
    const ranged = createSimulatedProvider({ latency: { minMs: 0, maxMs: 2 } });
    expect((await ranged.complete(ask('y'))).simulated).toBe(true);
  });

  it('aborts mid-stream', async () => {
    const sim = createSimulatedProvider();
    const controller = new AbortController();
    const run = async () => {
      for await (const event of sim.stream(
        ask('one two three four five six seven', { signal: controller.signal }),
      )) {
        if (event.type === 'text-delta') controller.abort();
      }
    };
    await expect(run()).rejects.toBeInstanceOf(AbortedError);
  });
});
