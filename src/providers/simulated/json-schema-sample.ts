/**
 * Deterministic sample values for a JSON Schema: the simulated provider's structured output, and the fake
 * server's replies in tests. Values are plausible (words derived from property names and the prompt), not
 * lorem ipsum, and valid against the subset of JSON Schema that OpenAI strict mode and Anthropic tools accept.
 */
import type { JsonSchema } from '../types.ts';

/** Options of {@link sampleJsonSchema}. */
export interface SampleOptions {
  /** Seed of the pseudo-random choices; the same seed and schema always give the same value. @default 0 */
  readonly seed?: number | undefined;
  /** Words to draw string content from, typically the prompt's content words. @default [] */
  readonly vocabulary?: readonly string[] | undefined;
  /** Deeper than this, optional properties are left out and arrays keep only their `minItems`. @default 6 */
  readonly maxDepth?: number | undefined;
}

/** A small deterministic PRNG (mulberry32). */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] (inclusive). */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/** FNV-1a 32-bit hash of a string: a cheap, stable seed source. */
export function hashString(text: string, seed = 0): number {
  return hashMore((0x811c9dc5 ^ seed) >>> 0, text);
}

/** @internal The FNV-1a state `hash` after `text`: `hashMore(hashMore(h, a), b) === hashMore(h, a + b)`. */
export function hashMore(hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Characters that `JSON.stringify` escapes in a string (and lone surrogates, which it may). */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON.stringify escapes
const jsonEscaped = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * @internal The FNV-1a state `hash` after the text of `JSON.stringify(value)`, without building that text
 * (for plain data: strings, numbers, booleans, null, arrays, plain objects; anything else, such as an
 * object with `toJSON`, is hashed through `JSON.stringify` itself). `value` must not be `undefined`.
 */
export function hashJson(hash: number, value: unknown): number {
  switch (typeof value) {
    case 'string':
      return jsonEscaped.test(value)
        ? hashMore(hash, JSON.stringify(value))
        : hashMore(hashMore(hashMore(hash, '"'), value), '"');
    case 'number':
      return hashMore(hash, Number.isFinite(value) ? String(value) : 'null');
    case 'boolean':
      return hashMore(hash, value ? 'true' : 'false');
    case 'object': {
      if (value === null) return hashMore(hash, 'null');
      if (Array.isArray(value)) {
        hash = hashMore(hash, '[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) hash = hashMore(hash, ',');
          const item: unknown = value[i];
          hash = omittedInJson(item) ? hashMore(hash, 'null') : hashJson(hash, item);
        }
        return hashMore(hash, ']');
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (
        (proto !== Object.prototype && proto !== null) ||
        typeof (value as { toJSON?: unknown }).toJSON === 'function'
      ) {
        return hashMore(hash, JSON.stringify(value));
      }
      hash = hashMore(hash, '{');
      let first = true;
      for (const key of Object.keys(value)) {
        const item: unknown = (value as Record<string, unknown>)[key];
        if (omittedInJson(item)) continue;
        if (!first) hash = hashMore(hash, ',');
        first = false;
        hash = hashJson(hashMore(hashJson(hash, key), ':'), item);
      }
      return hashMore(hash, '}');
    }
    default:
      // bigint throws as in JSON.stringify; undefined, functions and symbols are the caller's to skip.
      return hashMore(hash, JSON.stringify(value));
  }
}

/** Values `JSON.stringify` leaves out of objects (and writes as `null` in arrays). */
function omittedInJson(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}

/** Create a seeded {@link Random}. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}

const stopWords = new Set(
  'a an and are as at be by can do does for from give has have how i in into is it its me my of on or our please should so tell than that the their them then there these this to up us was we what when where which who why will with would you your about write make list return json answer based using'.split(
    ' ',
  ),
);

/** `JSON.stringify` of schemas, by schema object: schemas are treated as immutable once sampled or sent. */
const schemaTexts = new WeakMap<object, string>();

/** @internal `JSON.stringify(schema)`, computed once per schema object. */
export function schemaText(schema: JsonSchema): string {
  let text = schemaTexts.get(schema);
  if (text === undefined) {
    text = JSON.stringify(schema);
    schemaTexts.set(schema, text);
  }
  return text;
}

/** The last texts' content words: the same prompt (a template, a fan-out) is often asked again and again. */
const recentWords = new Map<string, readonly string[]>();
const RECENT_WORDS_KEPT = 512;

/**
 * @internal {@link contentWords} of `text`, remembered for the last few hundred texts; the array is shared
 * and frozen.
 */
export function cachedContentWords(text: string): readonly string[] {
  let words = recentWords.get(text);
  if (words === undefined) {
    words = Object.freeze(contentWords(text));
    if (recentWords.size >= RECENT_WORDS_KEPT) recentWords.clear();
    recentWords.set(text, words);
  }
  return words;
}

/** The content words of a text, lowercased, in order, without stop words or duplicates. */
export function contentWords(text: string): string[] {
  const seen = new Set<string>();
  const words: string[] = [];
  const lower = text.toLowerCase();
  const length = lower.length;
  // The matches of /[a-z][a-z'-]{2,}/g, scanned by hand: each run of [a-z'-] from its first letter, when
  // at least 3 long, without its trailing apostrophes and hyphens.
  let i = 0;
  while (i < length) {
    const code = lower.charCodeAt(i);
    if (!(code >= 97 && code <= 122)) {
      i += 1;
      continue;
    }
    let end = i + 1;
    let lastLetter = i;
    for (; end < length; end++) {
      const c = lower.charCodeAt(end);
      if (c >= 97 && c <= 122) lastLetter = end;
      else if (c !== 39 && c !== 45) break;
    }
    if (end - i >= 3) {
      const word = lower.slice(i, lastLetter + 1);
      if (!stopWords.has(word) && !seen.has(word)) {
        seen.add(word);
        words.push(word);
      }
    }
    i = end;
  }
  return words;
}

/**
 * Generate a value that validates against `schema`.
 *
 * Supported: `type` (also as an array), `const`, `enum`, `anyOf`/`oneOf` (first usable branch), `allOf`
 * (shallow merge), local `$ref` (`#/$defs/…`, `#/definitions/…`), objects (`properties`, `required`), arrays
 * (`items`, `prefixItems`, `minItems`/`maxItems`, `uniqueItems`), numbers and integers (`minimum`,
 * `maximum`, exclusive bounds, `multipleOf`), strings (`minLength`/`maxLength`, `enum`, and `format`
 * `date`, `date-time`, `time`, `email`, `uri`/`url`, `uuid`, `hostname`, `ipv4`). `pattern` is not honoured.
 *
 * @example
 * ```ts
 * sampleJsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, { seed: 1 });
 * // { city: 'Lisbon' }
 * ```
 */
export function sampleJsonSchema(schema: JsonSchema, options: SampleOptions = {}): unknown {
  const sampler = new Sampler(schema, options);
  return sampler.sample(schema, 'value', 0);
}

const namedValues: readonly (readonly [RegExp, readonly string[]])[] = [
  [/^(first_?name|given_?name)$/i, ['Ada', 'Grace', 'Alan', 'Katherine', 'Linus']],
  [/^(last_?name|family_?name|surname)$/i, ['Lovelace', 'Hopper', 'Turing', 'Johnson', 'Torvalds']],
  [
    /(^|_)(full_?name|author|person|user_?name|owner|assignee|name)$/i,
    ['Ada Lovelace', 'Grace Hopper', 'Alan Turing'],
  ],
  [/city/i, ['Lisbon', 'Kyoto', 'Nairobi', 'Montreal', 'Oslo']],
  [/country/i, ['Portugal', 'Japan', 'Kenya', 'Canada', 'Norway']],
  [/(lang|language|locale)/i, ['en', 'fr', 'de', 'ja', 'pt']],
  [/(colou?r)/i, ['blue', 'green', 'amber', 'crimson', 'teal']],
  [/(status|state)$/i, ['active', 'pending', 'done']],
  [/(sentiment|tone|mood)/i, ['positive', 'neutral', 'negative']],
  [/(priority|severity|level)$/i, ['low', 'medium', 'high']],
  [/(currency)/i, ['EUR', 'USD', 'JPY']],
];

const branchKeys = ['anyOf', 'oneOf'] as const;

class Sampler {
  readonly #root: JsonSchema;
  readonly #random: Random;
  readonly #vocabulary: readonly string[];
  readonly #maxDepth: number;

  constructor(root: JsonSchema, options: SampleOptions) {
    this.#root = root;
    this.#random = createRandom(hashString(schemaText(root), options.seed ?? 0));
    this.#vocabulary = options.vocabulary ?? [];
    this.#maxDepth = options.maxDepth ?? 6;
  }

  /**
   * A value for `schema`; `property` is the name of the innermost property around it that is not all digits
   * (what its strings are named after), `'value'` at the top.
   */
  sample(schema: JsonSchema, property: string, depth: number): unknown {
    const resolved = this.#resolve(schema, 0);
    if ('const' in resolved) return resolved['const'];
    const enumValues = resolved['enum'];
    if (Array.isArray(enumValues) && enumValues.length > 0) return this.#random.pick(enumValues as unknown[]);
    for (const key of branchKeys) {
      const branches = resolved[key];
      if (Array.isArray(branches) && branches.length > 0) {
        // Prefer a non-null branch so nullable fields still carry content.
        const usable = (branches as JsonSchema[]).filter((b) => this.#resolve(b, 0)['type'] !== 'null');
        return this.sample(usable[0] ?? (branches[0] as JsonSchema), property, depth);
      }
    }
    switch (this.#typeOf(resolved)) {
      case 'object':
        return this.#object(resolved, property, depth);
      case 'array':
        return this.#array(resolved, property, depth);
      case 'string':
        return this.#string(resolved, property);
      case 'integer':
        return this.#number(resolved, true);
      case 'number':
        return this.#number(resolved, false);
      case 'boolean':
        return this.#random.next() < 0.5;
      case 'null':
        return null;
      default:
        return this.#string({}, property);
    }
  }

  #resolve(schema: JsonSchema, hops: number): JsonSchema {
    let current = schema;
    const ref = current['$ref'];
    if (typeof ref === 'string' && hops < 32) {
      const target = this.#lookup(ref);
      if (target !== undefined) {
        const { $ref: _ignored, ...rest } = current;
        current = { ...this.#resolve(target, hops + 1), ...rest };
      }
    }
    const allOf = current['allOf'];
    if (Array.isArray(allOf) && allOf.length > 0) {
      const { allOf: _ignored, ...rest } = current;
      let merged: Record<string, unknown> = {};
      for (const part of allOf as JsonSchema[]) {
        const resolvedPart = this.#resolve(part, hops + 1);
        merged = {
          ...merged,
          ...resolvedPart,
          properties: { ...asRecord(merged['properties']), ...asRecord(resolvedPart['properties']) },
          required: [...asStrings(merged['required']), ...asStrings(resolvedPart['required'])],
        };
      }
      current = { ...merged, ...rest };
    }
    return current;
  }

  #lookup(ref: string): JsonSchema | undefined {
    if (!ref.startsWith('#')) return undefined;
    let node: unknown = this.#root;
    for (const raw of ref.slice(1).split('/').filter(Boolean)) {
      const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
      if (typeof node !== 'object' || node === null) return undefined;
      node = (node as Record<string, unknown>)[part];
    }
    return typeof node === 'object' && node !== null ? (node as JsonSchema) : undefined;
  }

  #typeOf(schema: JsonSchema): string | undefined {
    const type = schema['type'];
    if (typeof type === 'string') return type;
    if (Array.isArray(type)) {
      const types = type.filter((t): t is string => typeof t === 'string');
      return types.find((t) => t !== 'null') ?? types[0];
    }
    if ('properties' in schema) return 'object';
    if ('items' in schema || 'prefixItems' in schema) return 'array';
    return undefined;
  }

  #object(schema: JsonSchema, property: string, depth: number): Record<string, unknown> {
    const { entries, required } = objectShape(schema);
    const result: Record<string, unknown> = {};
    for (const [name, propertySchema] of entries) {
      if (!required.has(name) && depth >= this.#maxDepth) continue;
      if (typeof propertySchema !== 'object' || propertySchema === null) {
        result[name] = this.#string({}, inner(property, name));
        continue;
      }
      result[name] = this.sample(propertySchema as JsonSchema, inner(property, name), depth + 1);
    }
    // A required name without a property schema still needs a value.
    for (const name of required)
      if (!(name in result)) result[name] = this.#string({}, inner(property, name));
    return result;
  }

  #array(schema: JsonSchema, property: string, depth: number): unknown[] {
    const minItems = nonNegativeInt(schema['minItems']) ?? 0;
    const maxItems = nonNegativeInt(schema['maxItems']);
    const prefix = Array.isArray(schema['prefixItems']) ? (schema['prefixItems'] as JsonSchema[]) : [];
    const items = schema['items'];
    const itemSchema: JsonSchema | undefined =
      typeof items === 'object' && items !== null && !Array.isArray(items)
        ? (items as JsonSchema)
        : undefined;
    const upper = Math.max(minItems, Math.min(maxItems ?? 3, 3));
    const lower = Math.max(minItems, Math.min(1, upper));
    let count = depth >= this.#maxDepth ? minItems : this.#random.int(lower, upper);
    if (itemSchema === undefined) count = Math.min(count, Math.max(prefix.length, minItems));
    const unique = schema['uniqueItems'] === true;
    const result: unknown[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const element = prefix[i] ?? itemSchema ?? {};
      let value: unknown;
      for (let attempt = 0; attempt < 8; attempt++) {
        // An element's path segment is its index: all digits, so its strings keep the array's name.
        value = this.sample(element, property, depth + 1);
        if (!unique || !seen.has(JSON.stringify(value))) break;
      }
      if (unique && seen.has(JSON.stringify(value))) {
        if (result.length >= minItems) break;
        value = makeDistinct(value, i);
      }
      if (unique) seen.add(JSON.stringify(value));
      result.push(value);
    }
    return result;
  }

  #number(schema: JsonSchema, integer: boolean): number {
    const multipleOf =
      typeof schema['multipleOf'] === 'number' && schema['multipleOf'] > 0 ? schema['multipleOf'] : undefined;
    let min = finite(schema['minimum']) ?? Number.NEGATIVE_INFINITY;
    let max = finite(schema['maximum']) ?? Number.POSITIVE_INFINITY;
    const exclusiveMin = finite(schema['exclusiveMinimum']);
    const exclusiveMax = finite(schema['exclusiveMaximum']);
    const step = integer ? 1 : (multipleOf ?? 0.01);
    if (exclusiveMin !== undefined) min = Math.max(min, exclusiveMin + step);
    if (exclusiveMax !== undefined) max = Math.min(max, exclusiveMax - step);
    if (!Number.isFinite(min) && !Number.isFinite(max)) {
      min = 0;
      max = 100;
    } else if (!Number.isFinite(min)) min = max - 100;
    else if (!Number.isFinite(max)) max = min + 100;
    if (integer) {
      min = Math.ceil(min);
      max = Math.floor(max);
    }
    if (multipleOf !== undefined) {
      const low = Math.ceil(min / multipleOf);
      const high = Math.floor(max / multipleOf);
      const k = high >= low ? this.#random.int(low, high) : low;
      return roundTo(k * multipleOf, multipleOf);
    }
    if (max < min) return min;
    if (integer) return this.#random.int(min, max);
    return Math.round((min + this.#random.next() * (max - min)) * 100) / 100;
  }

  #string(schema: JsonSchema, property: string): string {
    const minLength = nonNegativeInt(schema['minLength']) ?? 0;
    const maxLength = nonNegativeInt(schema['maxLength']);
    const format = typeof schema['format'] === 'string' ? schema['format'] : undefined;
    let text = this.#formatted(format, property) ?? this.#words(property);
    if (text.length < minLength) {
      const filler = this.#words(property);
      while (text.length < minLength) text = `${text} ${filler}`;
    }
    if (maxLength !== undefined && text.length > maxLength) {
      text = text.slice(0, maxLength).trimEnd();
      // Trimming may take us below minLength again; pad with a plain letter then.
      while (text.length < minLength) text += 'x';
    }
    return text;
  }

  #formatted(format: string | undefined, property: string): string | undefined {
    const r = this.#random;
    const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
    const date = (): string => `${r.int(2020, 2026)}-${pad(r.int(1, 12))}-${pad(r.int(1, 28))}`;
    const time = (): string => `${pad(r.int(0, 23))}:${pad(r.int(0, 59))}:${pad(r.int(0, 59))}`;
    const slug = (): string => slugify(this.#words(property)) || 'item';
    switch (format) {
      case 'date':
        return date();
      case 'date-time':
        return `${date()}T${time()}Z`;
      case 'time':
        return `${time()}Z`;
      case 'email':
        return `${slug().split('-')[0] ?? 'user'}@example.com`;
      case 'uri':
      case 'url':
      case 'uri-reference':
        return `https://example.com/${slug()}`;
      case 'hostname':
        return `${slug()}.example.com`;
      case 'uuid': {
        const hex = (n: number): string =>
          Array.from({ length: n }, () => r.int(0, 15).toString(16)).join('');
        return `${hex(8)}-${hex(4)}-4${hex(3)}-${r.pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
      }
      case 'ipv4':
        return `192.0.2.${r.int(1, 254)}`;
      default:
        return undefined;
    }
  }

  #words(property: string): string {
    const shape = propertyShape(property);
    if (shape.named !== undefined) return this.#random.pick(shape.named);
    if (shape.idPrefix !== undefined) return `${shape.idPrefix}-${this.#random.int(100, 999)}`;
    const vocabulary = this.#vocabulary.length > 0 ? this.#vocabulary : shape.fallback;
    const take = this.#random.int(1, Math.min(3, vocabulary.length));
    const words: string[] = [];
    for (let i = 0; i < take; i++) {
      const word = this.#random.pick(vocabulary);
      if (!words.includes(word)) words.push(word);
    }
    const noun = shape.noun;
    if (noun !== undefined && !words.includes(noun)) return [...words, noun].join(' ');
    return words.join(' ');
  }
}

/** What {@link Sampler}'s words for a property depend on besides the random draws. */
interface PropertyShape {
  /** The values of the first {@link namedValues} entry the name matches, if any. */
  readonly named: readonly string[] | undefined;
  /** For an id-like name (`user_id`), the text before the random number. */
  readonly idPrefix: string | undefined;
  /** The name's words, or `['value']`. */
  readonly fallback: readonly string[];
  /** The name's last word when it is a noun that ends a text (`summary`, `title`, …). */
  readonly noun: string | undefined;
}

/** Property shapes by name: schemas name few properties, and every sampled string asks again. */
const propertyShapes = new Map<string, PropertyShape>();
const PROPERTY_SHAPES_KEPT = 1024;

function propertyShape(property: string): PropertyShape {
  let shape = propertyShapes.get(property);
  if (shape !== undefined) return shape;
  const named = namedValues.find(([pattern]) => pattern.test(property))?.[1];
  const propertyWords = splitName(property);
  const idPrefix = /(^|_)(id|key|slug|code)$/i.test(property)
    ? propertyWords.filter((w) => !/^(id|key|slug|code)$/.test(w)).join('-') || 'item'
    : undefined;
  const last = propertyWords.at(-1);
  shape = {
    named,
    idPrefix,
    fallback: propertyWords.length > 0 ? propertyWords : ['value'],
    noun:
      last !== undefined &&
      /^(summary|title|description|reason|answer|text|comment|note|topic|label|category|tag|keyword|headline)s?$/.test(
        last,
      )
        ? last
        : undefined,
  };
  if (propertyShapes.size >= PROPERTY_SHAPES_KEPT) propertyShapes.clear();
  propertyShapes.set(property, shape);
  return shape;
}

/** An object schema's properties and required names, as {@link Sampler} walks them. */
interface ObjectShape {
  readonly entries: readonly (readonly [string, unknown])[];
  readonly required: ReadonlySet<string>;
}

/** Object shapes by schema object (schemas are treated as immutable once sampled). */
const objectShapes = new WeakMap<JsonSchema, ObjectShape>();

function objectShape(schema: JsonSchema): ObjectShape {
  let shape = objectShapes.get(schema);
  if (shape === undefined) {
    shape = {
      entries: Object.entries(asRecord(schema['properties'])),
      required: new Set(asStrings(schema['required'])),
    };
    objectShapes.set(schema, shape);
  }
  return shape;
}

/** The property strings inside `name` are named after: `name`, unless it is all digits (an index). */
function inner(property: string, name: string): string {
  return /^\d+$/.test(name) ? property : name;
}

function splitName(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function makeDistinct(value: unknown, index: number): unknown {
  if (typeof value === 'string') return `${value} ${index + 1}`;
  if (typeof value === 'number') return value + index + 1;
  return value;
}

function roundTo(value: number, step: number): number {
  const decimals = (String(step).split('.')[1] ?? '').length;
  return Number(value.toFixed(decimals));
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function nonNegativeInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}
