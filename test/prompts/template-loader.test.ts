import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  PartialNotFoundError,
  PromptTemplate,
  TemplateLoader,
  TemplateNotFoundError,
  TemplateSyntaxError,
  TemplateVariableError,
  defaultTemplateLoader,
  renderTemplate,
} from '../../src/prompts/index.ts';

let dir: string;

function write(relative: string, content: string): string {
  const file = path.join(dir, relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'symphonizer-prompts-'));
  write(
    'summarize.hbs',
    '{{!-- system --}}\n{{> persona role="an editor"}}\n{{!-- user --}}\nSummarise: {{text}}\n',
  );
  write('agents/judge.hbs', 'Judge this answer: {{answer}}');
  write('partials/persona.hbs', 'You are {{role}}.');
  write('partials/agents/rubric.hbs', 'Score 1-{{max}}.');
  write('notes.txt', 'not a template');
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('TemplateLoader.load', () => {
  it('loads a template by name, with partials from partials/', () => {
    const loader = new TemplateLoader({ dir });
    const template = loader.load('summarize');
    expect(template).toBeInstanceOf(PromptTemplate);
    expect(template.name).toBe('summarize');
    expect(template.path).toBe(path.join(dir, 'summarize.hbs'));
    expect(template.render({ text: "it's <ok>" })).toEqual({
      system: 'You are an editor.',
      user: "Summarise: it's <ok>",
    });
  });

  it('loads from subfolders and registers subfolder partials by their path', () => {
    write('agents/scored.hbs', '{{> agents/rubric max=5}} {{answer}}');
    const loader = new TemplateLoader({ dir });
    expect(loader.load('agents/judge').name).toBe('agents/judge');
    expect(loader.load('agents/scored').render({ answer: 'A' }).user).toBe('Score 1-5. A');
    expect(loader.environment.partialNames).toEqual(['agents/rubric', 'persona']);
  });

  it('returns the same compiled object for every spelling of a name', () => {
    const loader = new TemplateLoader({ dir });
    const first = loader.load('summarize');
    expect(loader.load('summarize')).toBe(first);
    expect(loader.load('summarize.hbs')).toBe(first);
    expect(loader.load('./summarize')).toBe(first);
    expect(loader.load('agents/../summarize')).toBe(first);
  });

  it('does not read a file again once compiled, until clear()', () => {
    const loader = new TemplateLoader({ dir });
    const first = loader.load('agents/judge');
    write('agents/judge.hbs', 'CHANGED {{answer}}');
    expect(loader.load('agents/judge')).toBe(first);
    expect(loader.load('agents/judge').render({ answer: 'a' }).user).toBe('Judge this answer: a');
    loader.clear();
    const second = loader.load('agents/judge');
    expect(second).not.toBe(first);
    expect(second.render({ answer: 'a' }).user).toBe('CHANGED a');
  });

  it('throws TemplateNotFoundError naming the path and listing the templates (partials and other files excluded)', () => {
    const loader = new TemplateLoader({ dir });
    let error: unknown;
    try {
      loader.load('sumarize');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TemplateNotFoundError);
    const notFound = error as TemplateNotFoundError;
    expect(notFound.code).toBe('template_not_found');
    expect(notFound.template).toBe('sumarize');
    expect(notFound.path).toBe(path.join(dir, 'sumarize.hbs'));
    expect(notFound.available).toEqual(['agents/judge', 'summarize']);
    expect(notFound.message).toContain(path.join(dir, 'sumarize.hbs'));
    expect(notFound.hint).toBe('available templates: agents/judge, summarize');
  });

  it('says so when the templates directory does not exist', () => {
    const loader = new TemplateLoader({ dir: path.join(dir, 'nope') });
    expect(() => loader.load('summarize')).toThrow(/does not exist/);
  });

  it('refuses names that leave the templates directory', () => {
    const loader = new TemplateLoader({ dir: path.join(dir, 'agents') });
    expect(() => loader.load('../summarize')).toThrow(TemplateNotFoundError);
  });

  it('compiles an inline template (a string with {{ or a newline) and caches it by source', () => {
    const loader = new TemplateLoader({ dir });
    const inline = loader.load('{{> persona role="a judge"}} Rate: {{answer}}');
    expect(inline.render({ answer: '42' }).user).toBe('You are a judge. Rate: 42');
    expect(loader.load('{{> persona role="a judge"}} Rate: {{answer}}')).toBe(inline);
    expect(inline.name).toMatch(/^<inline: /);
    const multiLine = loader.load('{{!-- system --}}\nSys\n{{!-- user --}}\nno braces here');
    expect(multiLine.render({})).toEqual({ system: 'Sys', user: 'no braces here' });
  });

  it('names the template and variable of an inline template in errors', () => {
    const loader = new TemplateLoader({ dir });
    expect(() => loader.load('Hello {{nme}}').render({ name: 'x' }, { nodeKey: 'greet' })).toThrow(
      TemplateVariableError,
    );
  });

  it('throws TemplateSyntaxError for a broken template file, naming it', () => {
    write('broken.hbs', 'ok\n{{#each items}}\n');
    const loader = new TemplateLoader({ dir });
    expect(() => loader.load('broken')).toThrow(TemplateSyntaxError);
    expect(() => loader.load('broken')).toThrow(/Template "broken"/);
  });

  it('throws PartialNotFoundError for an unknown partial', () => {
    write('uses-missing.hbs', '{{> nope}}');
    expect(() => new TemplateLoader({ dir }).load('uses-missing')).toThrow(PartialNotFoundError);
  });

  it('uses partialsDir when given, and no partials when it does not exist', () => {
    write('shared/persona.hbs', 'Shared {{role}}.');
    const loader = new TemplateLoader({ dir, partialsDir: path.join(dir, 'shared') });
    expect(loader.load('summarize').render({ text: 't' }).system).toBe('Shared an editor.');
    const none = new TemplateLoader({ dir, partialsDir: path.join(dir, 'missing') });
    expect(none.environment.partialNames).toEqual([]);
  });

  it('lists templates', () => {
    expect(new TemplateLoader({ dir }).templateNames()).toEqual(['agents/judge', 'summarize']);
  });

  it('refuses an empty name and bad options', () => {
    expect(() => new TemplateLoader({ dir }).load('')).toThrow(/nameOrSource/);
    expect(() => new TemplateLoader({ dir: '' })).toThrow(/dir/);
  });

  it('renders through loader.render and renderTemplate with a loader', () => {
    const loader = new TemplateLoader({ dir });
    expect(loader.render('agents/judge', { answer: 'a' }).user).toBe('Judge this answer: a');
    expect(renderTemplate('agents/judge', { answer: 'b' }, { loader, nodeKey: 'j' }).user).toBe(
      'Judge this answer: b',
    );
  });
});

describe('defaultTemplateLoader', () => {
  it("reads the package's prompts/ folder and its example partials", () => {
    expect(defaultTemplateLoader.searchPath().at(-1)?.dir).toBe(
      path.resolve(import.meta.dirname, '../../prompts'),
    );
    expect(defaultTemplateLoader.environment.partialNames).toEqual(
      expect.arrayContaining(['json-output', 'persona']),
    );
  });

  it('renders the example partials', () => {
    const persona = renderTemplate('{{> persona role="a careful editor"}}', {});
    expect(persona.user).toBe('You are a careful editor.');
    expect(renderTemplate('{{> persona role="a judge" expertise="law"}}', {}).user).toBe(
      'You are a judge, an expert in law.',
    );
    const bare = renderTemplate('{{> json-output}}', {}).user;
    expect(bare).toBe('Answer with one JSON object and nothing else: no prose, no Markdown code fences.');
    const withSchema = renderTemplate('{{> json-output schema=schema}}', { schema: { type: 'object' } }).user;
    expect(withSchema).toContain('It must match this JSON Schema:\n{\n  "type": "object"\n}');
  });
});
