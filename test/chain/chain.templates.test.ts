// The chain's `templates` option: a directory searched before SYMPHONIZER_PROMPTS, ./prompts and the
// package's prompts, or a TemplateLoader used as it is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { classifier } from '../../agents/index.ts';
import {
  InvalidOptionError,
  ModelClient,
  ProviderRegistry,
  TemplateLoader,
  TemplateNotFoundError,
  chain,
  type ModelRequest,
} from '../../src/index.ts';
import { ScriptedProvider, type ScriptedReply } from '../helpers/scripted-provider.ts';

function clientWith(reply: (request: ModelRequest) => ScriptedReply): {
  client: ModelClient;
  provider: ScriptedProvider;
} {
  const provider = new ScriptedProvider('fake', reply);
  const registry = new ProviderRegistry().register(provider);
  return { client: new ModelClient({ registry, retry: { maxRetries: 0, baseDelayMs: 1 } }), provider };
}

const lastUser = (request: ModelRequest): string => {
  const last = request.messages.at(-1);
  return last?.role === 'user' ? last.content : '';
};

let dir: string;

function write(relative: string, content: string): void {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'symphonizer-chain-templates-'));
  write(
    'brief.hbs',
    '{{!-- system --}}\n{{> persona role="a reporter"}}\n{{!-- user --}}\nBrief on {{input.topic}}.',
  );
  write('partials/persona.hbs', 'You are {{role}}, in this project.');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('chain({ templates })', () => {
  it("a directory path: its templates and partials first, the ready agents' templates from the package", async () => {
    const { client, provider } = clientWith((request) =>
      request.output !== undefined ? { json: { reason: 'r', label: 'news', confidence: 0.9 } } : 'A brief.',
    );
    const brief = chain({ input: z.object({ topic: z.string() }), model: 'fake:m', client, templates: dir })
      .prompt('brief', { template: 'brief' })
      .prompt('kind', classifier({ labels: ['news', 'essay'] as const, from: 'brief' }))
      .build();
    const result = await brief.run({ topic: 'tides' });
    expect(provider.requests[0]?.system).toBe('You are a reporter, in this project.');
    expect(lastUser(provider.requests[0] as ModelRequest)).toBe('Brief on tides.');
    // agents/classifier is not in `dir`: it comes from the package's prompts/agents/classifier.hbs.
    expect(provider.requests[1]?.system).toMatch(/^You classify texts\./);
    expect(lastUser(provider.requests[1] as ModelRequest)).toContain('<text>\nA brief.\n</text>');
    expect(result.outputs.kind.label).toBe('news');
  });

  it('still accepts a TemplateLoader, used as it is', async () => {
    const { client, provider } = clientWith(() => 'ok');
    const loader = new TemplateLoader({ dir });
    const brief = chain({
      input: z.object({ topic: z.string() }),
      model: 'fake:m',
      client,
      templates: loader,
    })
      .prompt('brief', { template: 'brief' })
      .build();
    await brief.run({ topic: 'x' });
    expect(lastUser(provider.requests[0] as ModelRequest)).toBe('Brief on x.');
    // A dir loader is isolated: the package's agents are not found through it.
    const agent = chain({ input: z.string(), model: 'fake:m', client, templates: loader })
      .prompt('kind', classifier({ labels: ['a', 'b'] as const }))
      .build();
    await expect(agent.run('text')).rejects.toMatchObject({
      cause: expect.any(TemplateNotFoundError) as unknown,
    });
  });

  it('without the option, reads SYMPHONIZER_PROMPTS when a node renders, not when the chain is built', async () => {
    const { client, provider } = clientWith(() => 'ok');
    const brief = chain({ input: z.object({ topic: z.string() }), model: 'fake:m', client })
      .prompt('brief', { template: 'brief' })
      .build();
    const saved = process.env.SYMPHONIZER_PROMPTS;
    process.env.SYMPHONIZER_PROMPTS = dir;
    try {
      await brief.run({ topic: 'env' });
    } finally {
      if (saved === undefined) delete process.env.SYMPHONIZER_PROMPTS;
      else process.env.SYMPHONIZER_PROMPTS = saved;
    }
    expect(lastUser(provider.requests[0] as ModelRequest)).toBe('Brief on env.');
  });

  it('a missing template names every place searched, the option first', async () => {
    const { client } = clientWith(() => 'ok');
    const run = chain({ input: z.string(), model: 'fake:m', client, templates: dir })
      .prompt('x', { template: 'nowhere' })
      .build()
      .run('in');
    const error = await run.then(
      () => undefined,
      (caught: unknown) => caught as { cause?: unknown },
    );
    const notFound = error?.cause;
    expect(notFound).toBeInstanceOf(TemplateNotFoundError);
    const searched = (notFound as TemplateNotFoundError).searched;
    expect(searched[0]).toMatchObject({ dir: path.resolve(dir), reason: 'option' });
    expect(searched.at(-1)?.reason).toMatch(/^(package|cwd)$/);
    expect((notFound as TemplateNotFoundError).message).toContain('(the templates option)');
  });

  it('refuses a templates option that is neither a path nor a TemplateLoader', () => {
    const build = (templates: unknown) => () =>
      chain({ input: z.string(), templates: templates as string })
        .prompt('x', { template: 'x' })
        .build();
    expect(build('')).toThrow(InvalidOptionError);
    expect(build(42)).toThrow(/templates/);
  });
});
