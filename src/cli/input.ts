/**
 * The `--input` of `symphonizer run`: inline JSON or `@file.json`, with parse errors located by line and
 * column and shown with a caret under the offending character.
 */
import { isAscii } from 'node:buffer';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliError } from './errors.ts';
import { asciiJsonText } from './json-ascii.ts';

/**
 * Reads the chain input: `undefined` gives `{}`, `@path` reads a JSON file (resolved against `cwd`), anything
 * else is parsed as JSON.
 * @throws {CliError} `input_file_not_found` or `invalid_json` (with line, column and an excerpt).
 */
export async function readInput(value: string | undefined, cwd: string): Promise<unknown> {
  if (value === undefined) return {};
  if (!value.startsWith('@')) return parseJson(value, '--input');
  const path = resolve(cwd, value.slice(1));
  let text: string;
  let escaped: boolean;
  try {
    ({ text, escaped } = await readText(path));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new CliError(
      'input_file_not_found',
      `Cannot read the input file ${path}${typeof code === 'string' ? ` (${code})` : ''}.`,
      {
        cause: error,
        hint: `@paths are resolved against the working directory (${cwd})`,
      },
    );
  }
  if (escaped) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // Not JSON: read the file as it is, so the error is located in its own text.
      return parseJson((await readText(path, false)).text, path);
    }
  }
  return parseJson(text, path);
}

/** From this size on, a file with non-ASCII text is read as ASCII JSON (see {@link asciiJsonText}). */
export const escapeFromBytes = 1 << 20;

/**
 * The file's text, decoded once from its bytes, a UTF-8 BOM skipped while decoding rather than sliced off a
 * copy. The bytes are read into an ArrayBuffer of the file's own (so not a pooled or shared one) and released
 * the moment the text exists, by transferring it to an empty buffer, so JSON.parse never builds its value
 * while the bytes are still held: a 50 MB file peaks about 50 MB lower than with `readFile` (whose bytes
 * live until a collection finds them), and some 125 MB lower than `readFile(path, 'utf8')`.
 */
async function readText(path: string, escape = true): Promise<{ text: string; escaped: boolean }> {
  const handle = await open(path, 'r');
  let buffer: ArrayBuffer;
  let length = 0;
  try {
    const { size } = await handle.stat();
    if (size === 0) {
      // A pipe or a file of /proc reports no size: read it as it comes (such inputs are small).
      return { text: decode(await handle.readFile(), undefined), escaped: false };
    }
    buffer = new ArrayBuffer(size);
    const view = new Uint8Array(buffer);
    while (length < size) {
      const { bytesRead } = await handle.read(view, length, size - length, length);
      if (bytesRead === 0) break; // the file shrank since stat()
      length += bytesRead;
    }
  } finally {
    await handle.close();
  }
  const bytes = Buffer.from(buffer, 0, length);
  if (escape && length >= escapeFromBytes && !isAscii(bytes)) {
    const text = asciiJsonText(bytes, hasBom(bytes) ? 3 : 0);
    if (text !== undefined) {
      release(buffer);
      return { text, escaped: true };
    }
  }
  return { text: decode(bytes, buffer), escaped: false };
}

function hasBom(bytes: Buffer): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

function release(owned: ArrayBuffer | undefined): void {
  // Detaches `owned` and frees its memory now, not at the next collection that finds it unreachable
  // (ArrayBuffer.prototype.transfer is ES2024: Node 22+, typed here since the project's lib is ES2023).
  (owned as Transferable | undefined)?.transfer(0);
}

/** An ArrayBuffer with ES2024's `transfer`. */
type Transferable = ArrayBuffer & { transfer(length: number): ArrayBuffer };

function decode(bytes: Buffer, owned: ArrayBuffer | undefined): string {
  const text = bytes.toString('utf8', hasBom(bytes) ? 3 : 0);
  release(owned);
  return text;
}

/**
 * Parses JSON, or throws an `invalid_json` CliError saying where it broke: position, line and column, and the
 * line with a caret.
 * @param source - what the text is, for the message (`--input` or a file path).
 */
export function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const position = jsonErrorPosition(text);
    const { line, column } = lineColumn(text, position);
    const reason = error instanceof Error ? cleanReason(error.message) : 'invalid JSON';
    throw new CliError(
      'invalid_json',
      `Invalid JSON in ${source} at line ${line}, column ${column} (position ${position}): ${reason}`,
      {
        cause: error,
        details: excerpt(text, position, column),
        hint:
          source === '--input'
            ? 'quote the JSON for your shell, e.g. --input \'{"topic": "tides"}\', or use --input @file.json'
            : undefined,
      },
    );
  }
}

/** Offset of the first character where `text` stops being JSON (its length when the text ends too early). */
export function jsonErrorPosition(text: string): number {
  let i = 0;
  const n = text.length;
  const stop = (at: number): never => {
    throw new JsonStop(at);
  };
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const literal = (word: string): void => {
    for (const ch of word) {
      if (text[i] !== ch) stop(i);
      i++;
    }
  };
  const digits = (): void => {
    if (!isDigit(text[i])) stop(i);
    while (isDigit(text[i])) i++;
  };
  const string = (): void => {
    if (text[i] !== '"') stop(i);
    i++;
    for (;;) {
      if (i >= n) stop(n);
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        i++;
        return;
      }
      if (ch < 0x20) stop(i);
      if (ch === 0x5c) {
        const esc = text[i + 1];
        if (esc === 'u') {
          for (let k = 2; k < 6; k++) if (!/^[0-9a-fA-F]$/.test(text[i + k] ?? '')) stop(Math.min(i + k, n));
          i += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) i += 2;
        else stop(Math.min(i + 1, n));
      } else i++;
    }
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') stop(i);
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else stop(i);
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else stop(i);
      }
    }
    if (ch === '"') string();
    else if (ch === 't') literal('true');
    else if (ch === 'f') literal('false');
    else if (ch === 'n') literal('null');
    else if (ch === '-' || isDigit(ch)) {
      if (ch === '-') i++;
      if (text[i] === '0') i++;
      else digits();
      if (text[i] === '.') {
        i++;
        digits();
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits();
      }
    } else stop(Math.min(i, n));
  };
  try {
    value();
    ws();
    return i < n ? i : n;
  } catch (error) {
    if (error instanceof JsonStop) return error.at;
    throw error;
  }
}

class JsonStop extends Error {
  readonly at: number;
  constructor(at: number) {
    super(`invalid JSON at ${at}`);
    this.at = at;
  }
}

function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '9';
}

function lineColumn(text: string, position: number): { line: number; column: number } {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  return { line, column: position - (before.lastIndexOf('\n') + 1) + 1 };
}

/** V8's message without its own position and without the echoed text. */
function cleanReason(message: string): string {
  return message
    .replace(/\s+in JSON at position \d+.*$/s, '')
    .replace(/,\s*(?:\.\.\.)?".*" is not valid JSON$/s, '')
    .replace(/^Unexpected token '\n'$/, 'Unexpected line break');
}

function excerpt(text: string, position: number, column: number): string[] {
  const start = position - (column - 1);
  const end = text.indexOf('\n', start);
  const full = text.slice(start, end === -1 ? undefined : end).replace(/\r$/, '');
  // Keep at most 60 characters either side of the caret.
  const from = Math.max(0, column - 1 - 60);
  const shown =
    (from > 0 ? '…' : '') + full.slice(from, column - 1 + 60) + (full.length > column - 1 + 60 ? '…' : '');
  const caret = column - 1 - from + (from > 0 ? 1 : 0);
  return [`  ${shown.replaceAll('\t', ' ')}`, `  ${' '.repeat(caret)}^`];
}
