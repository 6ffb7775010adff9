/**
 * The helpers registered on every prompt environment. Each one checks its arguments and throws a
 * {@link HelperUsageError} (reported as a `TemplateRenderError` naming the helper and line) on misuse, so a
 * wrong call never renders `undefined` or `[object Object]` into a prompt.
 *
 * | helper | example | renders |
 * | --- | --- | --- |
 * | `json` | `{{json value}}`, `{{json value 2}}` | `JSON.stringify(value, null, indent)`; `undefined` → `null` |
 * | `list` | `{{list items}}`, `{{list items numbered=true}}` | `- a\n- b` or `1. a\n2. b` |
 * | `each` | `{{#each items}}{{@number}}. {{this}}{{/each}}` | built-in `each`, plus `@number` = `@index + 1` |
 * | `truncate` | `{{truncate text 200}}` | at most 200 characters, cut at a word boundary, ending in `…` |
 * | `eq` | `{{#if (eq label "spam")}}` | `a === b` |
 * | `join` | `{{join items ", "}}` | items joined (separator defaults to `", "`) |
 * | `upper` / `lower` / `trim` | `{{upper name}}` | the text transformed |
 * | `indent` | `{{indent text 4}}` | every non-empty line indented by 4 spaces |
 * | `default` | `{{default tone "neutral"}}` | `tone`, or the fallback when it is absent, `null` or `""` |
 */
import { SymphonizerError, describe } from '../core/errors.ts';
import type { PromptErrorCode } from './errors.ts';

/** A helper as Handlebars calls it: the template's arguments, then Handlebars' options object. */
export type HelperFunction = (this: unknown, ...args: unknown[]) => unknown;

/** The part of Handlebars' helper options object the helpers read. */
interface HelperCallOptions {
  readonly hash?: Readonly<Record<string, unknown>>;
  readonly loc?: { readonly start?: { readonly line?: number } };
}

/**
 * A helper was called with the wrong arguments. Package-internal: rendering turns it into a
 * `TemplateRenderError` that names the template, the helper and the line.
 */
export class HelperUsageError extends SymphonizerError<PromptErrorCode> {
  /** The helper that was misused. */
  readonly helper: string;
  /** 1-based line of the call in its template, when known. */
  readonly line: number | undefined;
  /** The message without the hint. */
  readonly detail: string;

  constructor(helper: string, detail: string, line: number | undefined, hint?: string, cause?: unknown) {
    super('template_render', `Helper "${helper}" ${detail}`, { hint, cause });
    this.helper = helper;
    this.line = line;
    this.detail = detail;
  }
}

/** One parsed helper call: positional parameters, hash arguments, and where it sits. */
interface HelperCall {
  readonly name: string;
  readonly params: readonly unknown[];
  readonly hash: Readonly<Record<string, unknown>>;
  readonly line: number | undefined;
  fail(message: string, hint?: string, cause?: unknown): never;
}

/** Splits Handlebars' arguments (params…, options) and checks the parameter count and hash keys. */
function parseCall(
  name: string,
  args: readonly unknown[],
  usage: string,
  arity: { readonly min: number; readonly max: number },
  hashKeys: readonly string[] = [],
): HelperCall {
  const options = (args.at(-1) ?? {}) as HelperCallOptions;
  const params = args.slice(0, -1);
  const hash = options.hash ?? {};
  const line = options.loc?.start?.line;
  const fail = (message: string, hint?: string, cause?: unknown): never => {
    throw new HelperUsageError(name, message, line, hint ?? `usage: ${usage}`, cause);
  };
  if (params.length < arity.min || params.length > arity.max) {
    const expected = arity.min === arity.max ? `${arity.min}` : `${arity.min} to ${arity.max}`;
    fail(
      `expects ${expected} argument${arity.max === 1 ? '' : 's'}, got ${params.length}.`,
      params.length === 0
        ? `usage: ${usage}; to print a variable named "${name}", write {{this.${name}}}`
        : undefined,
    );
  }
  for (const key of Object.keys(hash)) {
    if (!hashKeys.includes(key)) {
      fail(
        `does not take a "${key}=" argument.`,
        hashKeys.length === 0 ? `usage: ${usage}` : `it takes: ${hashKeys.map((k) => `${k}=`).join(', ')}`,
      );
    }
  }
  return { name, params, hash, line, fail };
}

/** Text of a scalar, or a failure naming what was received. */
function text(call: HelperCall, value: unknown, what = 'text'): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return call.fail(`expects ${what} (a string or number), got ${describe(value)}.`);
}

/** Items of an array or other non-string iterable, or a failure naming what was received. */
function items(call: HelperCall, value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null && Symbol.iterator in value) {
    return [...(value as Iterable<unknown>)];
  }
  return call.fail(`expects an array, got ${describe(value)}.`);
}

/** How a list or join item is written: strings as they are, numbers and booleans via String, objects as JSON. */
function itemText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return describe(value);
}

/** A non-negative integer parameter, or a failure. */
function integer(call: HelperCall, value: unknown, what: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    return call.fail(`expects ${what} to be an integer >= ${min}, got ${describe(value)}.`);
  }
  return value;
}

/** `{{json value [indent]}}`: the value as JSON, compact or indented (a number of spaces, or a string). */
export const json: HelperFunction = (...args) => {
  const call = parseCall('json', args, '{{json value}} or {{json value 2}}', { min: 1, max: 2 });
  const [value, indentArg] = call.params;
  let indent: number | string | undefined;
  if (indentArg !== undefined) {
    indent = typeof indentArg === 'string' ? indentArg : integer(call, indentArg, 'the indent', 0);
  }
  try {
    // JSON.stringify returns undefined for undefined (and functions), which its type does not say.
    const serialised = JSON.stringify(value, null, indent) as string | undefined;
    return serialised ?? 'null';
  } catch (error) {
    return call.fail(`cannot serialise ${describe(value)}: ${(error as Error).message}.`, undefined, error);
  }
};

/** `{{list items [numbered=true]}}`: one `- item` (or `1. item`) per line; null and undefined items are skipped. */
export const list: HelperFunction = (...args) => {
  const call = parseCall('list', args, '{{list items}} or {{list items numbered=true}}', { min: 1, max: 1 }, [
    'numbered',
  ]);
  const numbered = call.hash['numbered'] ?? false;
  if (typeof numbered !== 'boolean')
    call.fail(`expects numbered= to be true or false, got ${describe(numbered)}.`);
  const lines: string[] = [];
  for (const item of items(call, call.params[0])) {
    if (item === null || item === undefined) continue;
    const marker = numbered === true ? `${lines.length + 1}. ` : '- ';
    // Continuation lines line up under the item's text, so multi-line items stay one bullet.
    const body = itemText(item).replaceAll('\n', `\n${' '.repeat(marker.length)}`);
    lines.push(`${marker}${body}`);
  }
  return lines.join('\n');
};

/** `{{truncate text 200}}`: at most 200 characters, `…` included, cut at a word boundary when there is one. */
export const truncate: HelperFunction = (...args) => {
  const call = parseCall('truncate', args, '{{truncate text 200}}', { min: 2, max: 2 });
  const value = text(call, call.params[0]);
  const limit = integer(call, call.params[1], 'the length', 1);
  // Count code points, not UTF-16 units, so an emoji or CJK character is never cut in half.
  const chars = Array.from(value);
  if (chars.length <= limit) return value;
  const kept = chars.slice(0, limit - 1);
  const next = chars[limit - 1] ?? '';
  let cut = kept.length;
  if (!/\s/u.test(next)) {
    const lastSpace = kept.findLastIndex((char) => /\s/u.test(char));
    if (lastSpace > 0) cut = lastSpace;
  }
  return `${kept.slice(0, cut).join('').trimEnd()}…`;
};

/** `{{#if (eq a b)}}`: true when `a === b` (no type coercion: `(eq 1 "1")` is false). */
export const eq: HelperFunction = (...args) => {
  const call = parseCall('eq', args, '{{#if (eq label "spam")}}', { min: 2, max: 2 });
  return call.params[0] === call.params[1];
};

/** `{{join items ", "}}`: the items joined by the separator (default `", "`); null and undefined are skipped. */
export const join: HelperFunction = (...args) => {
  const call = parseCall('join', args, '{{join items ", "}}', { min: 1, max: 2 });
  const separator = call.params[1] === undefined ? ', ' : text(call, call.params[1], 'the separator');
  return items(call, call.params[0])
    .filter((item) => item !== null && item !== undefined)
    .map(itemText)
    .join(separator);
};

/** `{{upper text}}`: the text in upper case. */
export const upper: HelperFunction = (...args) => {
  const call = parseCall('upper', args, '{{upper text}}', { min: 1, max: 1 });
  return text(call, call.params[0]).toUpperCase();
};

/** `{{lower text}}`: the text in lower case. */
export const lower: HelperFunction = (...args) => {
  const call = parseCall('lower', args, '{{lower text}}', { min: 1, max: 1 });
  return text(call, call.params[0]).toLowerCase();
};

/** `{{trim text}}`: the text without leading and trailing whitespace. */
export const trim: HelperFunction = (...args) => {
  const call = parseCall('trim', args, '{{trim text}}', { min: 1, max: 1 });
  return text(call, call.params[0]).trim();
};

/** `{{indent text 4}}`: every non-empty line of the text indented by that many spaces. */
export const indent: HelperFunction = (...args) => {
  const call = parseCall('indent', args, '{{indent text 4}}', { min: 2, max: 2 });
  const value = text(call, call.params[0]);
  const pad = ' '.repeat(integer(call, call.params[1], 'the width', 0));
  return value.replace(/^(?=.)/gmu, pad);
};

/**
 * `{{default value "fallback"}}`: the value, or the fallback when the value is absent, `null` or `""`. The one
 * sanctioned way to use an optional variable inline: its first argument may be missing under strict variables.
 */
export const defaultHelper: HelperFunction = (...args) => {
  const call = parseCall('default', args, '{{default value "fallback"}}', { min: 2, max: 2 });
  const [value, fallback] = call.params;
  return value === undefined || value === null || value === '' ? fallback : value;
};

/** Every helper above by its template name (`each` is added by the environment, around the built-in one). */
export const promptHelpers: Readonly<Record<string, HelperFunction>> = Object.freeze({
  json,
  list,
  truncate,
  eq,
  join,
  upper,
  lower,
  trim,
  indent,
  default: defaultHelper,
});

/**
 * `{{#each items}}…{{/each}}`: Handlebars' built-in `each` (with `@index`, `@key`, `@first`, `@last`, `{{else}}`),
 * plus `@number`, the 1-based position (`@index + 1`), for numbered prompts.
 */
export function eachWithNumber(builtinEach: HelperFunction): HelperFunction {
  return function each(this: unknown, ...args: unknown[]): unknown {
    const options = args.at(-1);
    if (
      typeof options !== 'object' ||
      options === null ||
      !('fn' in options) ||
      typeof options.fn !== 'function'
    ) {
      return builtinEach.apply(this, args);
    }
    const fn = options.fn as (context: unknown, runtime?: { data?: Record<string, unknown> }) => unknown;
    const numbered = (context: unknown, runtime?: { data?: Record<string, unknown> }): unknown => {
      const data = runtime?.data;
      if (data !== undefined && typeof data['index'] === 'number') data['number'] = data['index'] + 1;
      return fn(context, runtime);
    };
    return builtinEach.apply(this, [...args.slice(0, -1), { ...options, fn: numbered }]);
  };
}

/** How `ownLookup` makes a missing-variable error: Handlebars' own `Exception`, at the call's location. */
export type MissingVariableException = (message: string, loc: unknown) => Error;

/**
 * `{{lookup object key}}`: Handlebars' built-in `lookup`, except that a key the object only inherits
 * (`{{lookup input "constructor"}}`, `"toString"`, `"__proto__"`) is a missing variable, as `{{input.constructor}}`
 * is. It is thrown as Handlebars' own "not defined" error at the call's location, so rendering reports it as a
 * `TemplateVariableError`. A key the object neither owns nor inherits keeps `lookup`'s result, `undefined`.
 */
export function ownLookup(
  builtinLookup: HelperFunction,
  exception: MissingVariableException,
): HelperFunction {
  return function lookup(this: unknown, ...args: unknown[]): unknown {
    const [object, key] = args;
    if (
      args.length === 3 &&
      object !== null &&
      object !== undefined &&
      (typeof key === 'string' || typeof key === 'number')
    ) {
      const target = Object(object) as object;
      if (key in target && !Object.hasOwn(target, key)) {
        const options = args.at(-1) as HelperCallOptions | undefined;
        throw exception(`"${String(key)}" not defined in lookup`, options?.loc);
      }
    }
    return builtinLookup.apply(this, args);
  };
}
