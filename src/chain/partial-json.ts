/**
 * A tolerant, incremental parser of JSON text that is still arriving: {@link PartialJsonParser} reads the
 * text delta by delta (each character once) and gives the value it holds so far, with open strings, arrays
 * and objects closed; {@link parsePartialJson} does the same for one prefix.
 *
 * What it gives is always consistent with every completion of the text: a string may grow, an array may get
 * more items (its last one may grow), an object may get more keys (its last one may grow); nothing else
 * changes later. So a number, `true`, `false` or `null` still being written, and an object key whose value
 * has not started, are left out until they are complete. Leading whitespace and an opening Markdown code
 * fence (```json) are skipped; text after a complete value is ignored. Text that cannot be the start of a
 * JSON document stops the parse: from then on there is no value.
 */

/** An open array or object, and what it expects next. */
type Frame =
  | {
      readonly kind: 'object';
      readonly value: Record<string, unknown>;
      /** The key of the member being written (the last one added). */
      key: string;
      expect: 'key' | 'colon' | 'value' | 'comma';
      /** True until the first member: only then may `}` follow `{`. */
      empty: boolean;
    }
  | { readonly kind: 'array'; readonly value: unknown[]; expect: 'value' | 'comma'; empty: boolean };

/** The token being read. */
type Token =
  | {
      readonly kind: 'string';
      /** The decoded text so far. */
      text: string;
      /** The characters of an escape after its backslash, while it is incomplete. */
      escape: string | undefined;
      readonly isKey: boolean;
    }
  | { readonly kind: 'number' | 'literal'; text: string };

const literalValues: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  ['true', true],
  ['false', false],
  ['null', null],
]);
const literalNames = [...literalValues.keys()];
const numberPattern = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/u;
/** What a number still being written may look like. */
const numberPrefix = /^-?(?:(?:0|[1-9]\d*)(?:\.\d*)?(?:[eE][+-]?\d*)?)?$/u;
const numberChars = '0123456789.eE+-';
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
const stringStop = /["\\]/gu;

/** A string cut between the two halves of a surrogate pair loses the first half until the second comes. */
function shown(text: string): string {
  const last = text.charCodeAt(text.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? text.slice(0, -1) : text;
}

/** Sets `key` as an own property (a `__proto__` key too, as `JSON.parse` makes it). */
function setMember(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The state machine behind {@link PartialJsonParser}. */
class IncrementalJson {
  readonly #stack: Frame[] = [];
  #token: Token | undefined;
  #mode: 'start' | 'fence' | 'value' | 'done' | 'failed' = 'start';
  /** The top-level value once it has started (a container while it is open; a finished scalar). */
  #root: unknown;
  #hasRoot = false;
  /** True when the value has changed since the last snapshot. */
  #changed = false;
  /** The length of the open string value as last shown. */
  #shownLength = 0;

  get failed(): boolean {
    return this.#mode === 'failed';
  }

  get changed(): boolean {
    return this.#changed;
  }

  write(chunk: string): void {
    let i = 0;
    while (i < chunk.length && this.#mode !== 'failed' && this.#mode !== 'done') {
      const token = this.#token;
      if (token?.kind === 'string' && token.escape === undefined) {
        // Copy the run of plain characters at once.
        stringStop.lastIndex = i;
        const stop = stringStop.exec(chunk);
        const end = stop === null ? chunk.length : stop.index;
        if (end > i) {
          token.text += chunk.slice(i, end);
          this.#grew(token);
        }
        i = end;
        if (stop === null) break;
        if (chunk[i] === '"') this.#endString(token);
        else token.escape = '';
        i += 1;
        continue;
      }
      this.#char(chunk[i] as string);
      i += 1;
    }
  }

  /** The value so far: a copy of the open containers (finished values inside them are shared). */
  snapshot(): unknown {
    this.#changed = false;
    if (this.#mode === 'failed' || !this.#hasRoot) return undefined;
    const token = this.#token;
    const open = token?.kind === 'string' && !token.isKey ? shown(token.text) : undefined;
    if (open !== undefined) this.#shownLength = open.length;
    if (this.#stack.length === 0) return open ?? this.#root;
    let child: unknown = open;
    let hasChild = open !== undefined;
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const frame = this.#stack[i] as Frame;
      if (frame.kind === 'array') {
        const copy = frame.value.slice();
        if (hasChild) copy[copy.length - 1] = child;
        child = copy;
      } else {
        const copy = { ...frame.value };
        if (hasChild) setMember(copy, frame.key, child);
        child = copy;
      }
      hasChild = true;
    }
    return child;
  }

  #fail(): void {
    this.#mode = 'failed';
    this.#token = undefined;
  }

  #grew(token: Token & { kind: 'string' }): void {
    if (!token.isKey && shown(token.text).length !== this.#shownLength) this.#changed = true;
  }

  #char(c: string): void {
    const token = this.#token;
    if (token !== undefined) {
      if (token.kind === 'string') {
        this.#escape(token, c);
        return;
      }
      if (token.kind === 'literal') {
        token.text += c;
        const value = literalValues.get(token.text);
        if (literalValues.has(token.text)) {
          this.#token = undefined;
          this.#add(value, true);
        } else if (!literalNames.some((name) => name.startsWith(token.text))) this.#fail();
        return;
      }
      if (numberChars.includes(c)) {
        token.text += c;
        if (!numberPrefix.test(token.text)) this.#fail();
        return;
      }
      // The number ends here; `c` is read next.
      this.#token = undefined;
      if (!numberPattern.test(token.text)) {
        this.#fail();
        return;
      }
      this.#add(Number(token.text), true);
      if (this.#mode === 'done') return;
    }
    if (this.#mode === 'fence') {
      if (c === '\n') this.#mode = 'start';
      return;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') return;
    const frame = this.#stack.at(-1);
    if (frame === undefined) {
      if (this.#mode === 'start' && c === '`') this.#mode = 'fence';
      else this.#begin(c);
      return;
    }
    if (frame.kind === 'object') {
      switch (frame.expect) {
        case 'key':
          if (c === '"') this.#token = { kind: 'string', text: '', escape: undefined, isKey: true };
          else if (c === '}' && frame.empty) this.#close();
          else this.#fail();
          return;
        case 'colon':
          if (c === ':') frame.expect = 'value';
          else this.#fail();
          return;
        case 'value':
          this.#begin(c);
          return;
        default:
          if (c === ',') frame.expect = 'key';
          else if (c === '}') this.#close();
          else this.#fail();
          return;
      }
    }
    if (frame.expect === 'value') {
      if (c === ']' && frame.empty) this.#close();
      else this.#begin(c);
    } else if (c === ',') frame.expect = 'value';
    else if (c === ']') this.#close();
    else this.#fail();
  }

  #escape(token: Token & { kind: 'string' }, c: string): void {
    const escape = (token.escape ?? '') + c;
    if (escape.startsWith('u')) {
      if (escape.length > 1 && !/^[0-9a-fA-F]$/u.test(c)) {
        this.#fail();
        return;
      }
      if (escape.length < 5) {
        token.escape = escape;
        return;
      }
      token.text += String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    } else {
      const decoded = escapes[escape];
      if (decoded === undefined) {
        this.#fail();
        return;
      }
      token.text += decoded;
    }
    token.escape = undefined;
    this.#grew(token);
  }

  /** Starts the value that `c` opens, where a value is expected. */
  #begin(c: string): void {
    if (c === '{') this.#open({ kind: 'object', value: {}, key: '', expect: 'key', empty: true });
    else if (c === '[') this.#open({ kind: 'array', value: [], expect: 'value', empty: true });
    else if (c === '"') {
      this.#token = { kind: 'string', text: '', escape: undefined, isKey: false };
      this.#shownLength = -1; // an empty string is already a change: the member appears
      this.#add('', false);
    } else if (c === '-' || (c >= '0' && c <= '9')) this.#token = { kind: 'number', text: c };
    else if (c === 't' || c === 'f' || c === 'n') this.#token = { kind: 'literal', text: c };
    else this.#fail();
  }

  #open(frame: Frame): void {
    this.#add(frame.value, false);
    this.#stack.push(frame);
  }

  /**
   * Puts `value` where the parse is: the root, the next item of the open array, or the member of the open
   * object; `complete` when nothing will change it any more.
   */
  #add(value: unknown, complete: boolean): void {
    this.#changed = true;
    const frame = this.#stack.at(-1);
    if (frame === undefined) {
      this.#root = value;
      this.#hasRoot = true;
      this.#mode = complete ? 'done' : 'value';
      return;
    }
    if (frame.kind === 'array') frame.value.push(value);
    else setMember(frame.value, frame.key, value);
    frame.empty = false;
    if (complete) frame.expect = 'comma';
  }

  #endString(token: Token & { kind: 'string' }): void {
    this.#token = undefined;
    const frame = this.#stack.at(-1);
    if (token.isKey) {
      if (frame?.kind === 'object') {
        frame.key = token.text;
        frame.expect = 'colon';
      }
      return;
    }
    if (token.text.length !== this.#shownLength) this.#changed = true;
    if (frame === undefined) {
      this.#root = token.text;
      this.#mode = 'done';
      return;
    }
    if (frame.kind === 'array') frame.value[frame.value.length - 1] = token.text;
    else setMember(frame.value, frame.key, token.text);
    frame.expect = 'comma';
  }

  #close(): void {
    this.#stack.pop();
    const parent = this.#stack.at(-1);
    if (parent === undefined) this.#mode = 'done';
    else parent.expect = 'comma';
  }
}

/**
 * The value the JSON prefix `text` holds so far (see the module's rules), or `undefined` when it holds
 * nothing usable yet or is not the start of a JSON document.
 *
 * @example
 * ```ts
 * parsePartialJson('{"title": "Tid'); // { title: 'Tid' }
 * parsePartialJson('{"n": 12');       // {} (12 may become 120)
 * ```
 */
export function parsePartialJson(text: string): unknown {
  const parser = new IncrementalJson();
  parser.write(text);
  return parser.snapshot();
}

/**
 * Reads a streamed JSON reply delta by delta, each character once, and tells when the value so far
 * changed: `push` returns the new partial value, or `undefined` when nothing visible changed (or there is
 * no value yet). A partial is a fresh copy of the open arrays and objects; values finished inside them are
 * shared with later partials, so treat partials as read-only.
 */
export class PartialJsonParser {
  #parser = new IncrementalJson();
  #text = '';

  /** The text received so far. */
  get text(): string {
    return this.#text;
  }

  /** Adds `delta`; the partial value when it differs from the previous one, else `undefined`. */
  push(delta: string): unknown {
    this.#text += delta;
    this.#parser.write(delta);
    if (!this.#parser.changed || this.#parser.failed) return undefined;
    return this.#parser.snapshot();
  }

  /** Forgets what was received (a retried attempt starts over). */
  reset(): void {
    this.#parser = new IncrementalJson();
    this.#text = '';
  }
}
