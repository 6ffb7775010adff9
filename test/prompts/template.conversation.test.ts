/**
 * Conversation templates: `{{!-- assistant --}}` parts (few-shot answers), several user parts, and the
 * `{{!-- history --}}` marker, rendered as `turns`; a template with one user part renders as before.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PromptTemplate, TemplateLoader, TemplateSyntaxError } from '../../src/prompts/index.ts';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const FEW_SHOT = [
  '{{!-- system --}}',
  'You label tickets.',
  '{{!-- user --}}',
  'My card was charged twice.',
  '{{!-- assistant --}}',
  'billing',
  '{{!-- history --}}',
  '{{!-- user --}}',
  '{{text}}',
].join('\n');

describe('conversation templates', () => {
  it('renders turns in file order, with the place of the history, and the last user part as user', () => {
    const template = PromptTemplate.fromString(FEW_SHOT, { name: 'labels' });
    expect(template.render({ text: 'The app crashes.' })).toEqual({
      system: 'You label tickets.',
      user: 'The app crashes.',
      turns: [
        { role: 'user', content: 'My card was charged twice.' },
        { role: 'assistant', content: 'billing' },
        { role: 'history' },
        { role: 'user', content: 'The app crashes.' },
      ],
    });
  });

  it('treats text before the first marker as a user turn when an assistant part follows it', () => {
    const template = PromptTemplate.fromString(
      'Q1 {{a}}\n{{!-- assistant --}}\nA1\n{{!-- user --}}\nQ2 {{b}}',
      {
        name: 'shots',
      },
    );
    expect(template.render({ a: 1, b: 2 })).toEqual({
      user: 'Q2 2',
      turns: [
        { role: 'user', content: 'Q1 1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'Q2 2' },
      ],
    });
  });

  it('leaves out parts that render empty, and reports lines of the file in errors', () => {
    const template = PromptTemplate.fromString(
      '{{!-- history --}}\n{{!-- user --}}\n{{#if q}}{{q}}{{/if}}\n{{!-- assistant --}}\n{{prefill}}',
      { name: 'empty-parts' },
    );
    expect(template.render({ prefill: 'Sure:' })).toEqual({
      user: '',
      turns: [{ role: 'history' }, { role: 'assistant', content: 'Sure:' }],
    });
    const error = thrown(() => template.render({})) as { line: number; variable: string };
    expect(error).toMatchObject({ line: 5 });
  });

  it('keeps a template with one user part as it was: no turns', () => {
    const plain = PromptTemplate.fromString('{{!-- system --}}\nS\n{{!-- user --}}\nU {{x}}', {
      name: 'plain',
    });
    expect(plain.render({ x: 1 })).toEqual({ system: 'S', user: 'U 1' });
  });

  it('refuses a second history marker, text after the history marker, and text before a user marker', () => {
    const twice = thrown(() =>
      PromptTemplate.fromString('{{!-- history --}}\n{{!-- user --}}\nx\n{{!-- history --}}', { name: 'h2' }),
    ) as TemplateSyntaxError;
    expect(twice).toBeInstanceOf(TemplateSyntaxError);
    expect(twice.line).toBe(4);
    expect(twice.message).toMatch(/second \{\{!-- history --\}\} marker/);
    const text = thrown(() =>
      PromptTemplate.fromString('{{!-- history --}}\nstray words\n{{!-- user --}}\nx', { name: 'h-text' }),
    ) as TemplateSyntaxError;
    expect(text).toBeInstanceOf(TemplateSyntaxError);
    expect(text.message).toMatch(/text after \{\{!-- history --\}\}/);
    expect(() =>
      PromptTemplate.fromString('stray\n{{!-- system --}}\nS\n{{!-- user --}}\nU', { name: 'two-users' }),
    ).toThrow(/second user part/);
  });

  it('allows repeated user and assistant parts, and a comment after the history marker', () => {
    const template = PromptTemplate.fromString(
      [
        '{{!-- user --}}',
        'a',
        '{{!-- assistant --}}',
        'b',
        '{{!-- user --}}',
        'c',
        '{{!-- assistant --}}',
        'd',
        '{{!-- history --}}',
        '{{!-- the conversation goes here --}}',
      ].join('\n'),
      { name: 'repeat' },
    );
    expect(template.render({}).turns).toEqual([
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
      { role: 'assistant', content: 'd' },
      { role: 'history' },
    ]);
  });
});

describe('conversation templates from files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-turns-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads a .hbs file with assistant and history parts', () => {
    mkdirSync(join(dir, 'chat'), { recursive: true });
    writeFileSync(join(dir, 'chat', 'labels.hbs'), `${FEW_SHOT}\n`);
    const loader = new TemplateLoader({ dir });
    const rendered = loader.load('chat/labels').render({ text: 'Refund?' });
    expect(rendered.turns?.map((t) => t.role)).toEqual(['user', 'assistant', 'history', 'user']);
    expect(rendered.user).toBe('Refund?');
  });
});
