/**
 * A large JSON file with text beyond Latin-1 decodes to a two-byte string: two bytes a character, about 95 MB
 * for a 50 MB file of accented, CJK and emoji text. Written with `\uXXXX` escapes for every non-ASCII
 * character instead, the same JSON is pure ASCII, a one-byte string of some 70 MB that `JSON.parse` reads
 * into the very same value. That is what {@link asciiJsonText} makes, straight from the bytes.
 */
import { isUtf8 } from 'node:buffer';

const quote = 0x22;
const backslash = 0x5c;
const hex = '0123456789abcdef';

/**
 * The JSON text of `bytes[start..]` with every non-ASCII character written as a `\uXXXX` escape (two for a
 * character beyond U+FFFF), as one-byte (Latin-1) string; `undefined` where that would not be the same JSON:
 * bytes that are not UTF-8, or a non-ASCII byte outside a string (not JSON at all: the caller parses the
 * text as it is, to say where it breaks). The escaped copy is built in an ArrayBuffer of its own and released
 * as soon as the string exists.
 */
export function asciiJsonText(bytes: Buffer, start: number): string | undefined {
  if (!isUtf8(bytes.subarray(start))) return undefined;
  const length = escapedLength(bytes, start);
  if (length === undefined) return undefined;
  const owned = new ArrayBuffer(length);
  const out = Buffer.from(owned);
  let o = 0;
  const escape = (unit: number): void => {
    out[o++] = backslash;
    out[o++] = 0x75; // u
    for (let shift = 12; shift >= 0; shift -= 4) out[o++] = hex.charCodeAt((unit >> shift) & 0xf);
  };
  for (let i = start; i < bytes.length;) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      out[o++] = b;
      i++;
      continue;
    }
    const [cp, size] = codePoint(bytes, i, b);
    if (cp >= 0x10000) {
      escape(0xd800 + ((cp - 0x10000) >> 10));
      escape(0xdc00 + ((cp - 0x10000) & 0x3ff));
    } else escape(cp);
    i += size;
  }
  const text = out.toString('latin1', 0, o);
  (owned as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
  return text;
}

/** The escaped text's length, or `undefined` when a non-ASCII byte stands outside a string. */
function escapedLength(bytes: Buffer, start: number): number | undefined {
  let length = 0;
  let inString = false;
  for (let i = start; i < bytes.length;) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      if (inString && b === backslash) {
        // An escape: its next byte is ASCII in JSON (else the text is not JSON: leave it to the caller).
        if ((bytes[i + 1] ?? 0x80) >= 0x80) return undefined;
        length += 2;
        i += 2;
        continue;
      }
      if (b === quote) inString = !inString;
      length++;
      i++;
      continue;
    }
    if (!inString) return undefined;
    const [cp, size] = codePoint(bytes, i, b);
    length += cp >= 0x10000 ? 12 : 6;
    i += size;
  }
  return length;
}

/** The code point of the (valid) UTF-8 sequence that starts at `i` with lead byte `b`, and its size. */
function codePoint(bytes: Buffer, i: number, b: number): [number, number] {
  const c1 = (bytes[i + 1] as number) & 0x3f;
  if (b < 0xe0) return [((b & 0x1f) << 6) | c1, 2];
  const c2 = (bytes[i + 2] as number) & 0x3f;
  if (b < 0xf0) return [((b & 0x0f) << 12) | (c1 << 6) | c2, 3];
  const c3 = (bytes[i + 3] as number) & 0x3f;
  return [((b & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3, 4];
}
