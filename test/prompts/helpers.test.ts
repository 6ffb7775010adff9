import { describe, expect, it } from 'vitest';
import { PromptTemplate, TemplateRenderError, TemplateVariableError } from '../../src/prompts/index.ts';

function render(source: string, variables: Record<string, unknown> = {}): string {
  return PromptTemplate.fromString(source, { name: 'helpers' }).render(variables).user;
}

function renderError(source: string, variables: Record<string, unknown> = {}): TemplateRenderError {
  try {
    render(source, variables);
  } catch (error) {
    expect(error).toBeInstanceOf(TemplateRenderError);
    return error as TemplateRenderError;
  }
  throw new Error('expected a throw');
}

describe('json', () => {
  it('renders compact JSON, or indented with a number of spaces or a string', () => {
    const value = { a: [1, 'x'], b: null };
    expect(render('{{json value}}', { value })).toBe('{"a":[1,"x"],"b":null}');
    expect(render('{{json value 2}}', { value: { a: 1 } })).toBe('{\n  "a": 1\n}');
    expect(render('{{json value "\t"}}', { value: { a: 1 } })).toBe('{\n\t"a": 1\n}');
  });

  it('renders strings quoted and unescaped-for-HTML', () => {
    expect(render('{{json s}}', { s: `<'&">` })).toBe(`"<'&\\">"`);
  });

  it('reports a value that cannot be serialised', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(renderError('{{json v}}', { v: cyclic }).helper).toBe('json');
    expect(renderError('{{json v -1}}', { v: 1 }).message).toMatch(/indent/);
  });
});

describe('list', () => {
  it('renders bullets, or a numbered list with numbered=true', () => {
    expect(render('{{list items}}', { items: ['a', 'b'] })).toBe('- a\n- b');
    expect(render('{{list items numbered=true}}', { items: ['a', 'b'] })).toBe('1. a\n2. b');
    expect(render('{{list items numbered=false}}', { items: ['a'] })).toBe('- a');
  });

  it('keeps multi-line items as one bullet, skips null items, writes objects as JSON', () => {
    expect(render('{{list items}}', { items: ['one\ntwo', null, 3, { k: 1 }] })).toBe(
      '- one\n  two\n- 3\n- {"k":1}',
    );
    const many = Array.from({ length: 10 }, (_, i) => `i${i}`);
    expect(render('{{list items numbered=true}}', { items: many }).split('\n').at(-1)).toBe('10. i9');
  });

  it('renders an empty list as nothing', () => {
    expect(render('[{{list items}}]', { items: [] })).toBe('[]');
  });

  it('refuses a non-array, an unknown hash key, and a non-boolean numbered', () => {
    expect(renderError('{{list items}}', { items: 'abc' }).message).toMatch(/expects an array, got "abc"/);
    expect(renderError('{{list items numberd=true}}', { items: [] }).message).toMatch(/numberd=/);
    expect(renderError('{{list items numbered="yes"}}', { items: [] }).message).toMatch(/true or false/);
  });
});

describe('each', () => {
  it('keeps the built-in @index, @first, @last and {{else}}, and adds @number', () => {
    expect(
      render('{{#each items}}{{@index}}/{{@number}}:{{this}}{{#if @last}}.{{else}}, {{/if}}{{/each}}', {
        items: ['a', 'b', 'c'],
      }),
    ).toBe('0/1:a, 1/2:b, 2/3:c.');
    expect(render('{{#each items}}x{{else}}empty{{/each}}', { items: [] })).toBe('empty');
  });

  it('gives @number in object iteration and in nested loops', () => {
    expect(render('{{#each o}}{{@number}}={{@key}};{{/each}}', { o: { a: 1, b: 2 } })).toBe('1=a;2=b;');
    expect(
      render('{{#each rows}}{{#each this}}{{@../number}}.{{@number}} {{/each}}{{/each}}', {
        rows: [['x', 'y'], ['z']],
      }),
    ).toBe('1.1 1.2 2.1');
  });
});

describe('truncate', () => {
  const text = 'The quick brown fox jumps over the lazy dog';

  it('keeps text within the limit untouched', () => {
    expect(render('{{truncate text 100}}', { text })).toBe(text);
    expect(render('{{truncate text 43}}', { text })).toBe(text);
  });

  it('cuts at a word boundary and appends …, the result fitting the limit', () => {
    const out = render('{{truncate text 20}}', { text });
    expect(out).toBe('The quick brown fox…');
    expect(Array.from(out).length).toBeLessThanOrEqual(20);
    expect(render('{{truncate text 12}}', { text })).toBe('The quick…');
  });

  it('hard-cuts a single long word, and never splits a surrogate pair', () => {
    expect(render('{{truncate text 5}}', { text: 'abcdefghij' })).toBe('abcd…');
    expect(render('{{truncate text 3}}', { text: '😀😀😀😀' })).toBe('😀😀…');
  });

  it('refuses a non-integer length and non-text input', () => {
    expect(renderError('{{truncate text "ten"}}', { text }).message).toMatch(/integer/);
    expect(renderError('{{truncate text 0}}', { text }).message).toMatch(/>= 1/);
    expect(renderError('{{truncate obj 5}}', { obj: {} }).message).toMatch(/expects text/);
  });
});

describe('eq', () => {
  it('compares with === inside #if', () => {
    const source = '{{#if (eq label "spam")}}S{{else}}H{{/if}}';
    expect(render(source, { label: 'spam' })).toBe('S');
    expect(render(source, { label: 'ham' })).toBe('H');
    expect(render('{{#if (eq n "1")}}y{{else}}n{{/if}}', { n: 1 })).toBe('n');
    expect(render('{{#if (eq n 1)}}y{{else}}n{{/if}}', { n: 1 })).toBe('y');
  });

  it('requires both arguments to be provided', () => {
    expect(() => render('{{#if (eq label "spam")}}S{{/if}}')).toThrow(TemplateVariableError);
    expect(renderError('{{#if (eq label)}}S{{/if}}', { label: 'x' }).message).toMatch(/expects 2 arguments/);
  });
});

describe('join', () => {
  it('joins with the separator, ", " by default', () => {
    expect(render('{{join items " | "}}', { items: ['a', 'b', 'c'] })).toBe('a | b | c');
    expect(render('{{join items}}', { items: ['a', 1, true] })).toBe('a, 1, true');
    expect(render('{{join items ", "}}', { items: ['a', null, 'b'] })).toBe('a, b');
  });

  it('accepts other iterables', () => {
    expect(render('{{join items "+"}}', { items: new Set(['x', 'y']) })).toBe('x+y');
  });
});

describe('upper, lower, trim, indent', () => {
  it('transform text', () => {
    expect(render('{{upper s}}|{{lower s}}|[{{trim p}}]', { s: 'MiXed', p: '  pad \n' })).toBe(
      'MIXED|mixed|[pad]',
    );
    expect(render('{{upper n}}', { n: 12 })).toBe('12');
  });

  it('indents every non-empty line', () => {
    expect(render('x\n{{indent body 2}}', { body: 'a\n\nb' })).toBe('x\n  a\n\n  b');
  });

  it('refuse non-text and explain how to read a variable named like a helper', () => {
    expect(renderError('{{upper v}}', { v: null }).message).toMatch(/expects text.*null/);
    const error = renderError('{{trim}}', { trim: 'x' });
    expect(error.hint).toContain('{{this.trim}}');
    expect(render('{{this.trim}}', { trim: 'x' })).toBe('x');
  });
});

describe('default', () => {
  it('falls back on absent, null and empty values, and keeps 0 and false', () => {
    const source = '{{default v "n/a"}}';
    expect(render(source)).toBe('n/a');
    expect(render(source, { v: null })).toBe('n/a');
    expect(render(source, { v: '' })).toBe('n/a');
    expect(render(source, { v: 0 })).toBe('0');
    expect(render(source, { v: false })).toBe('false');
    expect(render(source, { v: 'set' })).toBe('set');
  });

  it('works as a subexpression', () => {
    expect(render('{{upper (default tone "neutral")}}')).toBe('NEUTRAL');
  });

  it('checks its fallback argument strictly', () => {
    expect(() => render('{{default v fallbak}}')).toThrow(TemplateVariableError);
  });
});
