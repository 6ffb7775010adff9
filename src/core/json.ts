/**
 * JSON values, and the checks that keep DAGNote payloads plain JSON so they can be hashed, compared, logged
 * and sent over the wire without surprises.
 */

/** A JSON value: what `JSON.parse` can return. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The outcome of {@link checkJson}: the first problem found, if any. */
export type JsonCheck =
  { readonly ok: true } | { readonly ok: false; readonly path: string; readonly problem: string };

const ok: JsonCheck = Object.freeze({ ok: true });

/**
 * Checks that `value` is plain JSON and reports the first offending path.
 * Refused: functions, symbols, bigints, `undefined`, non-finite numbers, sparse arrays, cyclic references,
 * symbol keys, and any object that is not a plain object or array (Date, Map, class instances, ...).
 */
export function checkJson(value: unknown, path = 'payload'): JsonCheck {
  return check(value, path, []);
}

function check(value: unknown, path: string, ancestors: object[]): JsonCheck {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return ok;
    case 'number':
      return Number.isFinite(value) ? ok : fail(path, `is ${String(value)}, which JSON cannot represent`);
    case 'undefined':
      return fail(path, 'is undefined (omit the key or use null)');
    case 'function':
      return fail(path, 'is a function');
    case 'symbol':
      return fail(path, 'is a symbol');
    case 'bigint':
      return fail(path, 'is a bigint (use a number or a string)');
    case 'object':
      break;
  }
  if (value === null) return ok;
  const object = value;
  if (ancestors.includes(object)) return fail(path, 'is a cyclic reference');
  if (Array.isArray(object)) {
    if (Object.getPrototypeOf(object) !== Array.prototype) return fail(path, 'is an array subclass');
    ancestors.push(object);
    for (let i = 0; i < object.length; i++) {
      const itemPath = `${path}[${i}]`;
      if (!(i in object)) return fail(itemPath, 'is a hole in a sparse array');
      const result = check(object[i], itemPath, ancestors);
      if (!result.ok) return result;
    }
    ancestors.pop();
    return ok;
  }
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'unknown class';
    return fail(path, `is an instance of ${name}, not a plain object (convert it to JSON first)`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) return fail(path, 'has a symbol key');
  ancestors.push(object);
  for (const key of Object.keys(object)) {
    const result = check((object as Record<string, unknown>)[key], childPath(path, key), ancestors);
    if (!result.ok) return result;
  }
  ancestors.pop();
  return ok;
}

function fail(path: string, problem: string): JsonCheck {
  return { ok: false, path, problem };
}

const identifier = /^[A-Za-z_$][\w$]*$/;

function childPath(path: string, key: string): string {
  return identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Deep-copies an already checked JSON value and freezes every level of the copy.
 *
 * Every key stays own data, `__proto__` included: `JSON.parse('{"__proto__":{"x":1}}')` has an own key
 * `__proto__`, and a plain assignment `copy.__proto__ = …` would instead replace the copy's prototype (so
 * `copy.x` would be 1 while `Object.keys(copy)` and `JSON.stringify(copy)` show nothing). The copies are
 * ordinary objects (prototype `Object.prototype`), so `payload.hasOwnProperty` and friends still work.
 */
export function frozenJsonCopy<T extends Json>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return Object.freeze(value.map((item) => frozenJsonCopy(item))) as T;
  const copy: Record<string, Json> = {};
  for (const key of Object.keys(value)) {
    const item = frozenJsonCopy(value[key] as Json);
    if (key === '__proto__') defineOwn(copy, key, item);
    else copy[key] = item;
  }
  return Object.freeze(copy) as T;
}

/** Sets `object[key]` as an own, enumerable, writable data property, whatever the key (even `__proto__`). */
function defineOwn(object: object, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Deep JSON equality; object key order is ignored. Only own keys count (an own `__proto__` key is compared
 * like any other), so two values that print the same JSON are equal and two that do not are not.
 */
export function jsonEquals(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEquals(a[i] as Json, b[i] as Json)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  for (const key of aKeys) {
    if (!Object.hasOwn(b, key) || !jsonEquals(a[key] as Json, b[key] as Json)) return false;
  }
  return true;
}
