/**
 * The simulated model's streaming: a per-token latency (option or `SYMPHONIZER_SIM_TOKEN_MS`) so a person
 * can watch an answer arrive offline, JSON answers cut into small pieces, and conversations with system
 * messages answered deterministically.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError } from '../../src/core/errors.ts';
import { AbortedError } from '../../src/providers/errors.ts';
import { createSimulatedProvider } from '../../src/providers/simulated/index.ts';
import type { ModelRequest, StreamEvent } from '../../src/providers/types.ts';

const ask = (content: string, extra: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'echo',
  messages: [{ role: 'user', content }],
  ...extra,
});

async function timed(events: AsyncIterable<StreamEvent>): Promise<{ event: StreamEvent; at: number }[]> {
  const started = performance.now();
  const out: { event: StreamEvent; at: number }[] = [];
  for await (const event of events) out.push({ event, at: performance.now() - started });
  return out;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the simulated model streaming', () => {
  it('waits tokenLatencyMs between pieces, and not before the first or in complete()', async () => {
    const sim = createSimulatedProvider({ tokenLatencyMs: 15 });
    const events = await timed(sim.stream(ask('one two three four five')));
    const deltas = events.filter((e) => e.event.type === 'text-delta');
    expect(deltas.length).toBe(6); // "[simulated] " and the five words
    expect(deltas[0]?.at ?? Infinity).toBeLessThan(15);
    for (let i = 1; i < deltas.length; i++) {
      expect((deltas[i]?.at ?? 0) - (deltas[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(12);
    }
    const started = performance.now();
    await sim.complete(ask('one two three four five'));
    expect(performance.now() - started).toBeLessThan(15);
  });

  it('reads SYMPHONIZER_SIM_TOKEN_MS when the option is not given, and refuses a bad value naming it', async () => {
    vi.stubEnv('SYMPHONIZER_SIM_TOKEN_MS', '12');
    const events = await timed(createSimulatedProvider().stream(ask('a b c')));
    const deltas = events.filter((e) => e.event.type === 'text-delta');
    expect((deltas.at(-1)?.at ?? 0) - (deltas[0]?.at ?? 0)).toBeGreaterThanOrEqual(3 * 10);
    // The option wins over the variable.
    const fast = await timed(createSimulatedProvider({ tokenLatencyMs: 0 }).stream(ask('a b c')));
    expect(fast.at(-1)?.at ?? Infinity).toBeLessThan(12);
    vi.stubEnv('SYMPHONIZER_SIM_TOKEN_MS', 'fast');
    expect(() => createSimulatedProvider()).toThrow(InvalidOptionError);
    expect(() => createSimulatedProvider()).toThrow(/SYMPHONIZER_SIM_TOKEN_MS/);
    expect(() => createSimulatedProvider({ tokenLatencyMs: -1 })).toThrow(/tokenLatencyMs/);
  });

  it('stops at an abort during the wait between pieces', async () => {
    const sim = createSimulatedProvider({ tokenLatencyMs: 50 });
    const controller = new AbortController();
    const seen: StreamEvent[] = [];
    const reading = (async () => {
      for await (const event of sim.stream(ask('one two three four', { signal: controller.signal }))) {
        seen.push(event);
        if (seen.length === 1)
          setTimeout(() => {
            controller.abort();
          }, 10);
      }
    })();
    await expect(reading).rejects.toBeInstanceOf(AbortedError);
    expect(seen.length).toBe(1);
  });

  it('streams a JSON answer in small pieces that join to the answer', async () => {
    const sim = createSimulatedProvider();
    const request: ModelRequest = {
      model: 'default',
      messages: [{ role: 'user', content: 'A plan for tides' }],
      output: {
        name: 'plan',
        schema: {
          type: 'object',
          properties: { title: { type: 'string' }, steps: { type: 'array', items: { type: 'string' } } },
          required: ['title', 'steps'],
          additionalProperties: false,
        },
      },
    };
    const events = (await timed(sim.stream(request))).map((e) => e.event);
    const deltas = events.flatMap((e) => (e.type === 'text-delta' ? [e.text] : []));
    const finish = events.at(-1);
    expect(finish?.type).toBe('finish');
    const text = finish?.type === 'finish' ? finish.response.text : '';
    expect(deltas.join('')).toBe(text);
    expect(deltas.length).toBeGreaterThanOrEqual(Math.floor(text.length / 6));
    expect(Math.max(...deltas.map((d) => Array.from(d).length))).toBeLessThanOrEqual(6);
  });

  it('answers a conversation with system messages deterministically, and differently from one without', async () => {
    const sim = createSimulatedProvider();
    const withSystem: ModelRequest = {
      model: 'default',
      messages: [
        { role: 'system', content: 'Be terse.' },
        { role: 'user', content: 'Tell me about tides' },
      ],
    };
    const first = await sim.complete(withSystem);
    expect((await sim.complete(withSystem)).text).toBe(first.text);
    const without = await sim.complete({ ...withSystem, messages: withSystem.messages.slice(1) });
    expect(without.requestId).not.toBe(first.requestId);
  });
});
