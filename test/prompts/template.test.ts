import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  PartialNotFoundError,
  PromptEnvironment,
  PromptTemplate,
  TemplateRenderError,
  TemplateSyntaxError,
  TemplateVariableError,
} from '../../src/prompts/index.ts';
import { SymphonizerError } from '../../src/core/index.ts';

function render(source: string, variables: Record<string, unknown> = {}, nodeKey?: string): string {
  return PromptTemplate.fromString(source, { name: 'test' }).render(variables, { nodeKey }).user;
}

/** The error `fn` throws, for asserting on its fields. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('PromptTemplate escaping', () => {
  it('passes \', <, &, " and > through untouched (HTML escaping is off)', () => {
    const text = `O'Brien <b>&amp; "quotes"</b> & a > b`;
    expect(render('{{text}}', { text })).toBe(text);
    expect(render('{{{text}}}', { text })).toBe(text);
    expect(render('{{upper text}}', { text: "it's <x> & y" })).toBe("IT'S <X> & Y");
  });

  it('does not escape inside partials either', () => {
    const environment = new PromptEnvironment({ partials: { quote: '"{{text}}"' } });
    const template = PromptTemplate.fromString('{{> quote}}', { name: 't', environment });
    expect(template.render({ text: "<'&'>" }).user).toBe(`"<'&'>"`);
  });

  it('uses an isolated Handlebars instance: the global one gains no helpers or partials', async () => {
    const { default: Handlebars } = await import('handlebars');
    new PromptEnvironment({ partials: { isolatedCheck: 'x' } });
    expect(Handlebars.helpers['truncate']).toBeUndefined();
    expect(Handlebars.partials['isolatedCheck']).toBeUndefined();
    expect(Handlebars.compile('{{x}}')({ x: '<' })).toBe('&lt;');
  });
});

describe('PromptTemplate strict variables', () => {
  it('throws TemplateVariableError naming the template, the variable, the line and the node', () => {
    const template = PromptTemplate.fromString('Summarise:\n{{text}}', { name: 'summarize' });
    const error = thrown(() => template.render({ txt: 'x', words: 3 }, { nodeKey: 'summarize-1' }));
    expect(error).toBeInstanceOf(TemplateVariableError);
    const variableError = error as TemplateVariableError;
    expect(variableError.code).toBe('template_variable');
    expect(variableError.template).toBe('summarize');
    expect(variableError.variable).toBe('text');
    expect(variableError.nodeKey).toBe('summarize-1');
    expect(variableError.line).toBe(2);
    expect(variableError.provided).toEqual(['txt', 'words']);
    expect(variableError.message).toContain('"text"');
    expect(variableError.message).toContain('"summarize"');
    expect(variableError.message).toContain('"summarize-1"');
    expect(variableError.hint).toContain('provided variables: txt, words');
    expect(SymphonizerError.isInstance(variableError)).toBe(true);
  });

  it('names the full path of a nested variable, whether the parent or the leaf is missing', () => {
    const template = PromptTemplate.fromString('Title: {{outline.title}}', { name: 'outline' });
    for (const variables of [{}, { outline: {} }, { outline: null }]) {
      const error = thrown(() => template.render(variables)) as TemplateVariableError;
      expect(error).toBeInstanceOf(TemplateVariableError);
      expect(error.variable).toBe('outline.title');
    }
    expect(template.render({ outline: { title: 'Q3' } }).user).toBe('Title: Q3');
  });

  it('names a deep path and says when no variables were provided', () => {
    const error = thrown(() => render('{{a.b.c.d}}')) as TemplateVariableError;
    expect(error.variable).toBe('a.b.c.d');
    expect(error.provided).toEqual([]);
    expect(error.hint).toContain('no variables were provided');
  });

  it('suggests a provided variable when the missing one looks like a typo', () => {
    const error = thrown(() => render('{{nmae}}', { name: 'x', other: 1 })) as TemplateVariableError;
    expect(error.hint).toContain('did you mean "name"?');
  });

  it('treats a top-level undefined value as not provided', () => {
    const error = thrown(() => render('{{tone}}', { tone: undefined, text: 'x' })) as TemplateVariableError;
    expect(error.variable).toBe('tone');
    expect(error.provided).toEqual(['text']);
    expect(render('{{#if tone}}T{{else}}none{{/if}}', { tone: undefined })).toBe('none');
  });

  it('renders falsy values that were provided: 0, false, empty string and null', () => {
    expect(render('[{{a}}|{{b}}|{{c}}|{{d}}]', { a: 0, b: false, c: '', d: null })).toBe('[0|false||]');
  });

  it('checks helper arguments, subexpressions and hash values too', () => {
    expect((thrown(() => render('{{upper nme}}', { name: 'x' })) as TemplateVariableError).variable).toBe(
      'nme',
    );
    expect((thrown(() => render('{{#if (eq labl "spam")}}y{{/if}}')) as TemplateVariableError).variable).toBe(
      'labl',
    );
    expect(
      (thrown(() => render('{{list items numbered=isNumbered}}', { items: [] })) as TemplateVariableError)
        .variable,
    ).toBe('isNumbered');
    expect(
      (thrown(() => render('{{#each itmes}}x{{/each}}', { items: [] })) as TemplateVariableError).variable,
    ).toBe('itmes');
  });

  it('checks variables inside #each, with block params too', () => {
    const error = thrown(() =>
      render('{{#each items}}\n{{name}}{{/each}}', { items: [{ name: 'a' }, { nam: 'b' }] }),
    ) as TemplateVariableError;
    expect(error.variable).toBe('name');
    expect(error.line).toBe(2);
    const blockParam = thrown(() =>
      render('{{#each items as |item|}}{{item.nmae}}{{/each}}', { items: [{ name: 'a' }] }),
    ) as TemplateVariableError;
    expect(blockParam.variable).toBe('item.nmae');
    expect(render('{{#each items as |item|}}{{item.name}};{{/each}}', { items: [{ name: 'a' }] })).toBe('a;');
  });

  it('checks @data variables', () => {
    expect((thrown(() => render('{{@number}}')) as TemplateVariableError).variable).toBe('@number');
    expect(render('{{@root.a}}', { a: 1 })).toBe('1');
  });
});

describe('PromptTemplate optional variables', () => {
  it('lets {{#if}} and {{#unless}} test an absent variable', () => {
    expect(render('{{#if notes}}Notes: {{notes}}{{else}}No notes.{{/if}}')).toBe('No notes.');
    expect(render('{{#if notes}}Notes: {{notes}}{{/if}}', { notes: 'n' })).toBe('Notes: n');
    expect(render('{{#unless notes}}none{{/unless}}')).toBe('none');
  });

  it('lets {{#if}} test a nested path whose parent is absent (no TypeError)', () => {
    expect(render('{{#if outline.title}}T{{else}}none{{/if}}')).toBe('none');
    expect(render('{{#if a.b.c}}T{{else}}none{{/if}}', { a: { b: null } })).toBe('none');
    expect(render('{{#if a.b.c}}T{{else}}none{{/if}}', { a: { b: { c: 1 } } })).toBe('T');
  });

  it('lets {{#with}} fall back to {{else}} on an absent variable', () => {
    expect(render('{{#with author}}{{name}}{{else}}anonymous{{/with}}')).toBe('anonymous');
    expect(render('{{#with author}}{{name}}{{else}}anonymous{{/with}}', { author: { name: 'Ada' } })).toBe(
      'Ada',
    );
  });

  it('lets {{default}} read an absent variable inline', () => {
    expect(render('Tone: {{default tone "neutral"}}')).toBe('Tone: neutral');
    expect(render('Tone: {{default style.tone "neutral"}}')).toBe('Tone: neutral');
    expect(render('Tone: {{default tone "neutral"}}', { tone: 'dry' })).toBe('Tone: dry');
  });

  it('still checks the variables used inside an {{#if}} body', () => {
    expect(() => render('{{#if notes}}{{note}}{{/if}}', { notes: 'n' })).toThrow(TemplateVariableError);
  });

  it('does not let a block section test for presence ({{#x}} is strict; use {{#if x}})', () => {
    expect(() => render('{{#items}}x{{/items}}')).toThrow(TemplateVariableError);
  });
});

describe('PromptTemplate system and user parts', () => {
  it('splits at {{!-- system --}} and {{!-- user --}} lines and trims each part', () => {
    const template = PromptTemplate.fromString(
      '{{!-- system --}}\n\nYou are {{role}}.\n\n{{!-- user --}}\n  Summarise: {{text}}  \n',
      { name: 'split' },
    );
    expect(template.hasSystem).toBe(true);
    expect(template.render({ role: 'an editor', text: 'abc' })).toEqual({
      system: 'You are an editor.',
      user: 'Summarise: abc',
    });
  });

  it('takes the user part first and the system part second when written in that order', () => {
    const template = PromptTemplate.fromString('{{!-- user --}}\nQ: {{q}}\n{{!-- system --}}\nBe brief.', {
      name: 'order',
    });
    expect(template.render({ q: '?' })).toEqual({ system: 'Be brief.', user: 'Q: ?' });
  });

  it('treats text before any marker as the user part, and a file without markers as all user', () => {
    expect(
      PromptTemplate.fromString('Hi {{x}}\n{{!-- system --}}\nSys', { name: 'a' }).render({ x: 1 }),
    ).toEqual({
      system: 'Sys',
      user: 'Hi 1',
    });
    const plain = PromptTemplate.fromString('  Hello {{x}}\n', { name: 'b' });
    expect(plain.hasSystem).toBe(false);
    expect(plain.render({ x: 1 })).toEqual({ user: 'Hello 1' });
    expect('system' in plain.render({ x: 1 })).toBe(false);
  });

  it('allows a leading comment before the markers', () => {
    const template = PromptTemplate.fromString(
      '{{!-- Judge prompt: inputs answer, rubric --}}\n{{!-- system --}}\nJudge.\n{{!-- user --}}\n{{answer}}',
      { name: 'judge' },
    );
    expect(template.render({ answer: '42' })).toEqual({ system: 'Judge.', user: '42' });
  });

  it('omits system when the system part renders empty', () => {
    const template = PromptTemplate.fromString(
      '{{!-- system --}}\n{{#if persona}}{{persona}}{{/if}}\n{{!-- user --}}\nHi',
      { name: 'maybe-system' },
    );
    expect(template.render({})).toEqual({ user: 'Hi' });
    expect(template.render({ persona: 'P' })).toEqual({ system: 'P', user: 'Hi' });
  });

  it('reports lines of the file, not of the part', () => {
    const template = PromptTemplate.fromString('{{!-- system --}}\nA\n{{!-- user --}}\nB\n{{missing}}', {
      name: 'lines',
    });
    expect((thrown(() => template.render({})) as TemplateVariableError).line).toBe(5);
    const syntax = thrown(() =>
      PromptTemplate.fromString('{{!-- system --}}\nA\n{{!-- user --}}\nB\n{{#if x}}', { name: 'lines' }),
    ) as TemplateSyntaxError;
    expect(syntax.line).toBe(5);
  });

  it('refuses a repeated marker, and text before the markers when there is a user marker', () => {
    const repeated = thrown(() =>
      PromptTemplate.fromString('{{!-- system --}}\na\n{{!-- system --}}\nb', { name: 'twice' }),
    ) as TemplateSyntaxError;
    expect(repeated).toBeInstanceOf(TemplateSyntaxError);
    expect(repeated.line).toBe(3);
    expect(() =>
      PromptTemplate.fromString('stray text\n{{!-- user --}}\nuser', { name: 'two-users' }),
    ).toThrow(/second user part/);
  });

  it('handles CRLF line endings', () => {
    const template = PromptTemplate.fromString('{{!-- system --}}\r\nS {{a}}\r\n{{!-- user --}}\r\nU', {
      name: 'crlf',
    });
    expect(template.render({ a: 1 })).toEqual({ system: 'S 1', user: 'U' });
  });
});

describe('PromptTemplate compile errors', () => {
  it('throws TemplateSyntaxError with the line when the source does not parse', () => {
    const error = thrown(() =>
      PromptTemplate.fromString('line one\n{{#if x}}\nno close', { name: 'broken' }),
    );
    expect(error).toBeInstanceOf(TemplateSyntaxError);
    const syntax = error as TemplateSyntaxError;
    expect(syntax.code).toBe('template_syntax');
    expect(syntax.template).toBe('broken');
    expect(syntax.line).toBe(3);
    expect(syntax.message).toContain('Parse error');
    expect(syntax.cause).toBeInstanceOf(Error);
  });

  it('reports a mismatched close tag with its line', () => {
    const syntax = thrown(() =>
      PromptTemplate.fromString('a\n{{#if x}}y{{/iff}}', { name: 'mismatch' }),
    ) as TemplateSyntaxError;
    expect(syntax).toBeInstanceOf(TemplateSyntaxError);
    expect(syntax.line).toBe(2);
  });

  it('refuses an unknown helper at load time, listing the helpers', () => {
    const syntax = thrown(() => PromptTemplate.fromString('{{summarise text}}', { name: 'unknown' }));
    expect(syntax).toBeInstanceOf(TemplateSyntaxError);
    expect((syntax as TemplateSyntaxError).message).toContain('unknown helper "summarise"');
    expect((syntax as TemplateSyntaxError).hint).toContain('truncate');
  });

  it('wraps a helper misuse in TemplateRenderError naming the helper, template, node and line', () => {
    const template = PromptTemplate.fromString('x\n{{truncate text "ten"}}', { name: 'misuse' });
    const error = thrown(() => template.render({ text: 'abc' }, { nodeKey: 'n1' })) as TemplateRenderError;
    expect(error).toBeInstanceOf(TemplateRenderError);
    expect(error.code).toBe('template_render');
    expect(error.helper).toBe('truncate');
    expect(error.template).toBe('misuse');
    expect(error.nodeKey).toBe('n1');
    expect(error.line).toBe(2);
  });

  it('refuses variables that are not an object', () => {
    const template = PromptTemplate.fromString('x', { name: 'x' });
    expect(() => template.render(null as unknown as Record<string, unknown>)).toThrow(/variables/);
  });
});

describe('PromptTemplate partials', () => {
  const environment = new PromptEnvironment({
    partials: {
      persona: 'You are {{role}}{{#if expertise}}, an expert in {{expertise}}{{/if}}.',
      signature: '-- {{author.name}}',
      'agents/rubric': 'Score 1-{{max}}.',
      nested: '[{{> signature}}]',
    },
  });

  it('renders a partial with the caller context, hash arguments and subfolder names', () => {
    const template = PromptTemplate.fromString(
      '{{!-- system --}}\n{{> persona role="an editor"}}\n{{!-- user --}}\n{{> agents/rubric max=5}}',
      { name: 'p', environment },
    );
    expect(template.render({ expertise: 'APIs' })).toEqual({
      system: 'You are an editor, an expert in APIs.',
      user: 'Score 1-5.',
    });
    expect(template.render({})).toEqual({ system: 'You are an editor.', user: 'Score 1-5.' });
  });

  it('names the partial and the template when a partial misses a variable', () => {
    const template = PromptTemplate.fromString('Hi\n{{> nested}}', { name: 'with-partial', environment });
    const error = thrown(() => template.render({ author: {} }, { nodeKey: 'k' })) as TemplateVariableError;
    expect(error).toBeInstanceOf(TemplateVariableError);
    expect(error.variable).toBe('author.name');
    expect(error.partial).toBe('signature');
    expect(error.template).toBe('with-partial');
    expect(error.nodeKey).toBe('k');
    expect(error.message).toContain('partial "signature"');
    expect(template.render({ author: { name: 'Ada' } }).user).toBe('Hi\n[-- Ada]');
  });

  it('refuses an unknown partial when the template is compiled, listing the registered ones', () => {
    const error = thrown(() => PromptTemplate.fromString('x\n{{> persna}}', { name: 'typo', environment }));
    expect(error).toBeInstanceOf(PartialNotFoundError);
    const notFound = error as PartialNotFoundError;
    expect(notFound.code).toBe('partial_not_found');
    expect(notFound.partial).toBe('persna');
    expect(notFound.available).toEqual(['agents/rubric', 'nested', 'persona', 'signature']);
    expect(notFound.message).toContain('line 2');
  });

  it('accepts inline partials and partial blocks with a fallback', () => {
    expect(render('{{#*inline "greet"}}Hi {{who}}{{/inline}}{{> greet who="Ada"}}')).toBe('Hi Ada');
    expect(render('{{#> missing}}fallback{{/missing}}')).toBe('fallback');
  });

  it('refuses a partial that does not compile, naming it', () => {
    const error = thrown(
      () => new PromptEnvironment({ partials: { bad: '{{#if x}}' } }),
    ) as TemplateSyntaxError;
    expect(error).toBeInstanceOf(TemplateSyntaxError);
    expect(error.kind).toBe('partial');
    expect(error.message).toContain('Partial "bad"');
  });

  it('refuses an invalid partial name', () => {
    expect(() => new PromptEnvironment().registerPartial('has space', 'x')).toThrow(/partial name/);
  });
});

describe('PromptTemplate inherited names', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const input = (): unknown => JSON.parse('{"name":"Ada","__proto__":{"isAdmin":true}}');

  // First in this block: Handlebars warns once per property name and process, so a name must be new to warn.
  it('writes nothing to stderr or the console when it refuses an inherited name', () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    for (const source of [
      '{{input.constructor}}',
      '{{input.__proto__}}',
      '{{lookup input "constructor"}}',
      '{{input.toString}}',
      '{{input.__defineGetter__}}',
      '{{input.isPrototypeOf}}',
      '{{lookup input "propertyIsEnumerable"}}',
      '{{#if input.valueOf}}x{{/if}}',
      '{{#if input.__lookupGetter__}}x{{/if}}',
      '{{#if input.toLocaleString}}x{{/if}}',
      '{{#if (lookup input "absent")}}x{{/if}}',
    ]) {
      try {
        render(source, { input: { name: 'Ada' } });
      } catch (caught) {
        expect(caught).toBeInstanceOf(TemplateVariableError);
      }
    }
    expect(stderr).not.toHaveBeenCalled();
    expect(warn).not.toHaveBeenCalled();
    expect(error).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
  });

  it.each([
    ['{{input.constructor}}', 'input.constructor'],
    ['{{input.__proto__.isAdmin}}', 'input.__proto__.isAdmin'],
    ['{{lookup input "constructor"}}', 'input.constructor'],
  ])('%s is a missing variable when the value only inherits it', (source, variable) => {
    const error = thrown(() => render(source, { input: { name: 'Ada' } }, 'greet'));
    expect(error).toBeInstanceOf(TemplateVariableError);
    expect(error).toMatchObject({
      code: 'template_variable',
      variable,
      template: 'test',
      nodeKey: 'greet',
      line: 1,
    });
  });

  it.each([
    ['{{input.__proto__}}', 'input.__proto__'],
    ['{{input.toString}}', 'input.toString'],
    ['{{constructor}}', 'constructor'],
    ['{{this.hasOwnProperty}}', 'this.hasOwnProperty'],
    ['{{@root.valueOf}}', '@root.valueOf'],
    ['{{#each items as |item|}}{{item.constructor}}{{/each}}', 'item.constructor'],
    ['{{#with input}}{{constructor}}{{/with}}', 'constructor'],
    ['{{upper (lookup input "toString")}}', 'input.toString'],
    ['{{lookup input "__proto__"}}', 'input.__proto__'],
    ['{{lookup items 0}}{{lookup "abc" "toUpperCase"}}', 'toUpperCase'],
  ])('%s is a missing variable too', (source, variable) => {
    const error = thrown(() => render(source, { input: { name: 'Ada' }, items: [{}] }));
    expect(error).toBeInstanceOf(TemplateVariableError);
    expect((error as TemplateVariableError).variable).toBe(variable);
  });

  it('reads own keys named like inherited members, "__proto__" included, as data', () => {
    expect(render('{{input.__proto__.isAdmin}} {{input.name}}', { input: input() })).toBe('true Ada');
    expect(render('{{json input}}', { input: input() })).toBe('{"name":"Ada","__proto__":{"isAdmin":true}}');
    expect(render('{{lookup input "__proto__"}}', { input: input() })).toBe('[object Object]');
    expect(render('{{input.constructor}}', { input: { constructor: 'own' } })).toBe('own');
    expect(render('{{lookup input "constructor"}}', { input: { constructor: 'own' } })).toBe('own');
    expect(render('{{items.length}} {{items.[1]}}', { items: [1, 2] })).toBe('2 2');
  });

  it('keeps presence tests false and lookup of an absent key empty, as before', () => {
    expect(render('[{{#if input.constructor}}yes{{else}}no{{/if}}]', { input: {} })).toBe('[no]');
    expect(render('[{{default input.toString "none"}}]', { input: {} })).toBe('[none]');
    expect(render('[{{lookup input "absent"}}]', { input: {} })).toBe('[]');
  });
});
