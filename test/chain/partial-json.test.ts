/**
 * The partial JSON parser: every prefix of a JSON document parses to a value that the document's own
 * value extends (strings and arrays may only grow, objects only gain keys), the full text to the value
 * itself, and the streaming parser never reports the same partial twice in a row.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PartialJsonParser, parsePartialJson } from '../../src/chain/partial-json.ts';

/** True when `full` is a completion of `partial`: what `partial` has, `full` has too (or extends). */
function consistent(partial: unknown, full: unknown): boolean {
  if (partial === undefined) return true;
  if (typeof partial === 'string') return typeof full === 'string' && full.startsWith(partial);
  if (Array.isArray(partial)) {
    if (!Array.isArray(full) || full.length < partial.length) return false;
    return partial.every((item, i) =>
      i < partial.length - 1 ? JSON.stringify(item) === JSON.stringify(full[i]) : consistent(item, full[i]),
    );
  }
  if (typeof partial === 'object' && partial !== null) {
    if (typeof full !== 'object' || full === null || Array.isArray(full)) return false;
    const keys = Object.keys(partial);
    const fullKeys = Object.keys(full);
    // Keys arrive in order: the partial's are the first of the full value's.
    if (keys.some((key, i) => fullKeys[i] !== key)) return false;
    return keys.every((key, i) => {
      const a = (partial as Record<string, unknown>)[key];
      const b = (full as Record<string, unknown>)[key];
      return i < keys.length - 1 ? JSON.stringify(a) === JSON.stringify(b) : consistent(a, b);
    });
  }
  return Object.is(partial, full);
}

/** JSON values (with any UTF-16 in strings, lone surrogates and control characters too) without `-0` (which JSON.stringify writes as `0`) and without duplicate keys. */
const jsonValue = fc
  .oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: 'binary' }))
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown);

describe('parsePartialJson', () => {
  it('closes open strings, arrays and objects', () => {
    expect(parsePartialJson('{"title": "Tid')).toEqual({ title: 'Tid' });
    expect(parsePartialJson('{"a": [1, 2, {"b": "x')).toEqual({ a: [1, 2, { b: 'x' }] });
    expect(parsePartialJson('[')).toEqual([]);
    expect(parsePartialJson('"ab')).toBe('ab');
  });

  it('leaves out what may still change: a number or literal being written, a key without its value', () => {
    expect(parsePartialJson('{"n": 12')).toEqual({});
    expect(parsePartialJson('{"n": 12,')).toEqual({ n: 12 });
    expect(parsePartialJson('[1.')).toEqual([]);
    expect(parsePartialJson('[1.5e')).toEqual([]);
    expect(parsePartialJson('{"ok": tr')).toEqual({});
    expect(parsePartialJson('{"ok": true')).toEqual({ ok: true });
    expect(parsePartialJson('{"ti')).toEqual({});
    expect(parsePartialJson('{"title"')).toEqual({});
    expect(parsePartialJson('{"title":')).toEqual({});
    expect(parsePartialJson('12')).toBeUndefined();
    expect(parsePartialJson('')).toBeUndefined();
  });

  it('stops before an escape that is not complete', () => {
    expect(parsePartialJson('"a\\')).toBe('a');
    expect(parsePartialJson('"a\\u00')).toBe('a');
    expect(parsePartialJson('"a\\u00e9')).toBe('aé');
    expect(parsePartialJson('"a\\n')).toBe('a\n');
    // Half of a surrogate pair waits for the other half.
    expect(parsePartialJson('"\\ud83d')).toBe('');
    expect(parsePartialJson('"\\ud83d\\ude00')).toBe('😀');
  });

  it('skips an opening code fence and ignores text after a complete value', () => {
    expect(parsePartialJson('```json\n{"a": "b')).toEqual({ a: 'b' });
    expect(parsePartialJson('{"a": 1}\n```')).toEqual({ a: 1 });
  });

  it('gives undefined for text that is not the start of JSON', () => {
    expect(parsePartialJson('Sure! Here is')).toBeUndefined();
    expect(parsePartialJson('{"a" 1')).toBeUndefined();
    expect(parsePartialJson('[1 2')).toBeUndefined();
    expect(parsePartialJson('{"a": 01')).toBeUndefined();
  });

  it('keeps a __proto__ key as an own property, as JSON.parse does', () => {
    const value = parsePartialJson('{"__proto__": {"polluted": true}, "b": 1}') as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__', 'b']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it('parses every prefix of JSON.stringify(v) to something v completes, and the whole text to v', () => {
    fc.assert(
      fc.property(jsonValue, fc.boolean(), (value, pretty) => {
        const text = pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
        for (let end = 0; end <= text.length; end++) {
          const partial = parsePartialJson(text.slice(0, end));
          if (!consistent(partial, value)) return false;
        }
        // A top-level number is only known once something follows it (in an array or object, it is).
        const whole = parsePartialJson(text);
        return typeof value === 'number'
          ? whole === undefined
          : JSON.stringify(whole) === JSON.stringify(value);
      }),
      { numRuns: 300 },
    );
  });
});

describe('PartialJsonParser', () => {
  it('reports a partial only when it changed, for any way of cutting the text into deltas', () => {
    fc.assert(
      fc.property(
        jsonValue.filter((v) => typeof v === 'object' && v !== null),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 50 }),
        (value, sizes) => {
          const text = JSON.stringify(value, null, 1);
          const parser = new PartialJsonParser();
          const seen: string[] = [];
          let at = 0;
          let i = 0;
          while (at < text.length) {
            const size = sizes[i++ % sizes.length] ?? 1;
            const partial = parser.push(text.slice(at, at + size));
            at += size;
            if (partial !== undefined) {
              if (!consistent(partial, value)) return false;
              seen.push(JSON.stringify(partial));
            }
          }
          const distinctInARow = seen.every((s, k) => k === 0 || s !== seen[k - 1]);
          return distinctInARow && seen.at(-1) === JSON.stringify(value) && parser.text === text;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('misses no change: between partials, the text parsed at once holds the last partial', () => {
    fc.assert(
      fc.property(
        jsonValue,
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 20 }),
        (value, sizes) => {
          const text = JSON.stringify(value);
          const parser = new PartialJsonParser();
          let last: string | undefined;
          let at = 0;
          let i = 0;
          while (at < text.length) {
            const size = sizes[i++ % sizes.length] ?? 1;
            const partial = parser.push(text.slice(at, at + size));
            at += size;
            if (partial !== undefined) last = JSON.stringify(partial);
            const whole = parsePartialJson(text.slice(0, at));
            if ((whole === undefined ? undefined : JSON.stringify(whole)) !== last) return false;
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads each character once: a 50 kB reply in 5-character deltas takes milliseconds, not seconds', () => {
    const value = {
      title: 'a list',
      items: Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item number ${i}`, tags: ['a', 'b'] })),
    };
    const text = JSON.stringify(value);
    const parser = new PartialJsonParser();
    const started = performance.now();
    let partials = 0;
    let last: unknown;
    for (let i = 0; i < text.length; i += 5) {
      const partial = parser.push(text.slice(i, i + 5));
      if (partial !== undefined) {
        partials += 1;
        last = partial;
      }
    }
    expect(last).toEqual(value);
    expect(partials).toBeGreaterThan(1000);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('stops for good at text that cannot be JSON', () => {
    const parser = new PartialJsonParser();
    expect(parser.push('{"a": [1, ')).toEqual({ a: [1] });
    expect(parser.push('}')).toBeUndefined();
    expect(parser.push('2]}')).toBeUndefined();
  });

  it('starts over after reset', () => {
    const parser = new PartialJsonParser();
    expect(parser.push('{"a": "x')).toEqual({ a: 'x' });
    expect(parser.push('')).toBeUndefined();
    parser.reset();
    expect(parser.text).toBe('');
    expect(parser.push('{"a": "x')).toEqual({ a: 'x' });
  });
});
