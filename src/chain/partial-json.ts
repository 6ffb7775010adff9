/**
 * A tolerant parser of JSON text that is still arriving: {@link parsePartialJson} reads a prefix of a JSON
 * document and returns the value it holds so far, with open strings, arrays and objects closed. What it
 * returns is always consistent with every completion of the prefix: a string may grow, an array may get
 * more items (its last one may grow), an object may get more keys (its last one may grow); nothing it
 * returns changes otherwise. So a number, `true`, `false` or `null` still being written, and an object key
 * whose value has not started, are left out until they are complete.
 *
 * {@link PartialJsonParser} feeds it text as it streams and says when the value has changed.
 */

/** A value parsed so far, and whether its text was complete. */
interface Parsed {
  readonly value: unknown;
  readonly complete: boolean;
}

/** The prefix is not the start of any JSON document. */
class NotJson extends Error {}

const literals = ['true', 'false', 'null'] as const;
const literalValues: Readonly<Record<(typeof literals)[number], unknown>> = {
  true: true,
  false: false,
  null: null,
};
const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
/** What a number still being written may look like. */
const numberPrefix = /^-?(?:(?:0|[1-9]\d*)(?:\.\d*)?(?:[eE][+-]?\d*)?)?$/u;
const escapes: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

class Reader {
  readonly #text: string;
  #at: number;

  constructor(text: string, start: number) {
    this.#text = text;
    this.#at = start;
  }

  /** A method, not a getter, so TypeScript does not narrow it across the reads that move the reader. */
  ended(): boolean {
    return this.#at >= this.#text.length;
  }

  skipSpace(): void {
    while (this.#at < this.#text.length && ' \t\n\r'.includes(this.#text[this.#at] as string)) this.#at += 1;
  }

  /** The value at the reader, or `undefined` when the prefix ends before any usable part of it. */
  value(): Parsed | undefined {
    this.skipSpace();
    if (this.ended()) return undefined;
    const c = this.#text[this.#at] as string;
    if (c === '{') return this.#object();
    if (c === '[') return this.#array();
    if (c === '"') return this.#string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.#number();
    return this.#literal();
  }

  #object(): Parsed {
    this.#at += 1;
    const object: Record<string, unknown> = {};
    let first = true;
    for (;;) {
      this.skipSpace();
      if (this.ended()) return { value: object, complete: false };
      if (this.#text[this.#at] === '}') {
        this.#at += 1;
        return { value: object, complete: true };
      }
      if (!first) {
        if (this.#text[this.#at] !== ',') throw new NotJson();
        this.#at += 1;
        this.skipSpace();
        if (this.ended()) return { value: object, complete: false };
      }
      first = false;
      if (this.#text[this.#at] !== '"') throw new NotJson();
      const key = this.#string();
      if (!key.complete) return { value: object, complete: false };
      this.skipSpace();
      if (this.ended()) return { value: object, complete: false };
      if (this.#text[this.#at] !== ':') throw new NotJson();
      this.#at += 1;
      const member = this.value();
      if (member === undefined) return { value: object, complete: false };
      // A key like `__proto__` is an own property, as JSON.parse makes it.
      Object.defineProperty(object, key.value as string, {
        value: member.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      if (!member.complete) return { value: object, complete: false };
    }
  }

  #array(): Parsed {
    this.#at += 1;
    const array: unknown[] = [];
    for (;;) {
      this.skipSpace();
      if (this.ended()) return { value: array, complete: false };
      if (this.#text[this.#at] === ']') {
        this.#at += 1;
        return { value: array, complete: true };
      }
      if (array.length > 0) {
        if (this.#text[this.#at] !== ',') throw new NotJson();
        this.#at += 1;
      }
      const item = this.value();
      if (item === undefined) return { value: array, complete: false };
      array.push(item.value);
      if (!item.complete) return { value: array, complete: false };
    }
  }

  #string(): Parsed {
    const text = this.#text;
    let at = this.#at + 1;
    let value = '';
    for (;;) {
      // Copy the run of plain characters at once.
      let end = at;
      while (end < text.length && text[end] !== '"' && text[end] !== '\\') end += 1;
      value += text.slice(at, end);
      at = end;
      if (at >= text.length) {
        this.#at = at;
        return { value: dropLoneHighSurrogate(value), complete: false };
      }
      if (text[at] === '"') {
        this.#at = at + 1;
        return { value, complete: true };
      }
      // An escape: stop before one that is not complete yet.
      const kind = text[at + 1];
      if (kind === undefined) {
        this.#at = text.length;
        return { value: dropLoneHighSurrogate(value), complete: false };
      }
      if (kind === 'u') {
        const hex = text.slice(at + 2, at + 6);
        if (!/^[0-9a-fA-F]*$/u.test(hex)) throw new NotJson();
        if (hex.length < 4) {
          this.#at = text.length;
          return { value: dropLoneHighSurrogate(value), complete: false };
        }
        value += String.fromCharCode(Number.parseInt(hex, 16));
        at += 6;
        continue;
      }
      const escaped = escapes[kind];
      if (escaped === undefined) throw new NotJson();
      value += escaped;
      at += 2;
    }
  }

  #number(): Parsed | undefined {
    const text = this.#text;
    let end = this.#at;
    while (end < text.length && '0123456789.eE+-'.includes(text[end] as string)) end += 1;
    const digits = text.slice(this.#at, end);
    // A number that reaches the end of the prefix may still be growing: wait for what follows it.
    if (end >= text.length) {
      if (!numberPrefix.test(digits)) throw new NotJson();
      this.#at = end;
      return undefined;
    }
    numberPattern.lastIndex = 0;
    const match = numberPattern.exec(digits);
    if (match === null || match[0].length !== digits.length) throw new NotJson();
    this.#at = end;
    return { value: Number(digits), complete: true };
  }

  #literal(): Parsed | undefined {
    const rest = this.#text.slice(this.#at, this.#at + 5);
    for (const literal of literals) {
      if (rest.startsWith(literal)) {
        this.#at += literal.length;
        return { value: literalValues[literal], complete: true };
      }
      if (literal.startsWith(rest) && this.#at + rest.length >= this.#text.length) {
        this.#at = this.#text.length;
        return undefined;
      }
    }
    throw new NotJson();
  }
}

/** A string cut between the two halves of a surrogate pair loses the first half until the second comes. */
function dropLoneHighSurrogate(value: string): string {
  const last = value.charCodeAt(value.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? value.slice(0, -1) : value;
}

/** Where the JSON starts: after leading space and an opening Markdown code fence (```json), if any. */
function jsonStart(text: string): number {
  const fence = /^\s*```[\w-]*[ \t]*(?:\r?\n|$)/u.exec(text);
  return fence === null ? 0 : fence[0].length;
}

/**
 * The value the JSON prefix `text` holds so far (see the module's rules), or `undefined` when it holds
 * nothing usable yet or is not the start of a JSON document. Text after a complete value is ignored (a
 * closing code fence, say). Leading whitespace and an opening Markdown code fence are skipped.
 *
 * @example
 * ```ts
 * parsePartialJson('{"title": "Tid'); // { title: 'Tid' }
 * parsePartialJson('{"n": 12');       // {} (12 may become 120)
 * ```
 */
export function parsePartialJson(text: string): unknown {
  try {
    return new Reader(text, jsonStart(text)).value()?.value;
  } catch (error) {
    if (error instanceof NotJson) return undefined;
    throw error;
  }
}

/**
 * Feeds a streamed JSON reply to {@link parsePartialJson} and tells when the value so far changed: `push`
 * returns the new partial value, or `undefined` when it is the same as the last one returned (or there is
 * none yet). Each push re-reads the text received so far (replies with an output schema are small; the
 * cost is linear in the reply per delta).
 */
export class PartialJsonParser {
  #text = '';
  #last: string | undefined;

  /** The text received so far. */
  get text(): string {
    return this.#text;
  }

  /** Adds `delta`; the partial value when it differs from the previous one, else `undefined`. */
  push(delta: string): unknown {
    this.#text += delta;
    const value = parsePartialJson(this.#text);
    if (value === undefined) return undefined;
    const key = JSON.stringify(value);
    if (key === this.#last) return undefined;
    this.#last = key;
    return value;
  }

  /** Forgets what was received (a retried attempt starts over). */
  reset(): void {
    this.#text = '';
    this.#last = undefined;
  }
}
