import { describe, expect, it } from 'vitest';
import {
  Composition,
  DAGNote,
  InvalidGraphError,
  InvalidOptionError,
  InvalidPayloadError,
  RESERVED_NODE_NAMES,
  ReservedNameError,
  type Json,
} from '../../src/index.ts';

function payloadError(payload: unknown): InvalidPayloadError {
  try {
    new DAGNote('fetch', payload as Json);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPayloadError);
    return error as InvalidPayloadError;
  }
  throw new Error('expected the payload to be refused');
}

describe('DAGNote', () => {
  it('defaults the payload to {} and the key to the name', () => {
    const note = new DAGNote('A');
    expect(note.payload).toEqual({});
    expect(note.key).toBe('A');
    expect(note.singleInstance).toBe(true);
  });

  it('gives every instance its own id, and non-single-instance notes their own key', () => {
    const a = new DAGNote('A');
    const b = new DAGNote('A');
    expect(a.instanceId).not.toBe(b.instanceId);
    expect(a.equals(b)).toBe(true);
    const c = new DAGNote('A', {}, { singleInstance: false });
    expect(c.key).toBe(`A:${c.instanceId}`);
    expect(c.equals(a)).toBe(false);
  });

  it('keeps a deep-frozen copy and leaves the caller object unfrozen', () => {
    const payload = { items: [{ at: 1 }], name: 'x' };
    const note = new DAGNote('A', payload);
    expect(Object.isFrozen(payload)).toBe(false);
    expect(Object.isFrozen(note.payload)).toBe(true);
    expect(Object.isFrozen(note.payload.items)).toBe(true);
    expect(Object.isFrozen(note.payload.items[0])).toBe(true);
    payload.items[0]!.at = 2;
    expect(note.payload.items[0]!.at).toBe(1);
  });

  it('accepts every JSON shape', () => {
    const payload: Json = {
      a: null,
      b: true,
      c: 1.5,
      d: 'x',
      e: [1, 'two', [3]],
      f: { g: {} },
      'weird key': 0,
    };
    expect(new DAGNote('A', payload).payload).toEqual(payload);
    expect(new DAGNote('A', Object.create(null) as Json).payload).toEqual({});
  });

  it.each([
    ['a function', { run: () => 1 }, 'payload.run', 'is a function'],
    ['a symbol', { s: Symbol('x') }, 'payload.s', 'is a symbol'],
    ['a bigint', { n: 1n }, 'payload.n', 'is a bigint'],
    ['undefined', { u: undefined }, 'payload.u', 'is undefined'],
    ['NaN', { items: [1, 2, Number.NaN] }, 'payload.items[2]', 'NaN'],
    ['Infinity', { x: Infinity }, 'payload.x', 'Infinity'],
    ['-Infinity', { x: -Infinity }, 'payload.x', '-Infinity'],
    ['a Date', { items: [{}, {}, { at: new Date(0) }] }, 'payload.items[2].at', 'instance of Date'],
    ['a Map', { m: new Map() }, 'payload.m', 'instance of Map'],
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- any class will do
    ['a class instance', { c: new (class Point {})() }, 'payload.c', 'instance of Point'],
    // eslint-disable-next-line no-sparse-arrays -- the point of the case
    ['a sparse array', { xs: [1, , 3] }, 'payload.xs[1]', 'sparse'],
    ['a top-level string key with spaces', { 'a b': () => 0 }, 'payload["a b"]', 'function'],
  ])('refuses %s and names the path', (_label, payload, path, problem) => {
    const error = payloadError(payload);
    expect(error.code).toBe('invalid_payload');
    expect(error.path).toBe(path);
    expect(error.nodeName).toBe('fetch');
    expect(error.message).toContain('DAGNote "fetch"');
    expect(error.message).toContain(path);
    expect(error.message).toContain(problem);
  });

  it('refuses cyclic references', () => {
    const cyclic: Record<string, unknown> = { a: { b: {} } };
    (cyclic.a as { b: Record<string, unknown> }).b.back = cyclic;
    const error = payloadError(cyclic);
    expect(error.path).toBe('payload.a.b.back');
    expect(error.message).toContain('cyclic');
  });

  it('accepts a shared (non-cyclic) sub-object twice', () => {
    const shared = { x: 1 };
    expect(new DAGNote('A', { a: shared, b: shared }).payload).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });

  it('refuses symbol keys and top-level non-JSON', () => {
    expect(payloadError({ [Symbol('k')]: 1 }).message).toContain('symbol key');
    expect(payloadError(new Date()).path).toBe('payload');
  });

  it('refuses an empty or non-string name', () => {
    expect(() => new DAGNote('')).toThrow(InvalidOptionError);
    expect(() => new DAGNote(42 as unknown as string)).toThrow(
      /Option `name` must be a non-empty string, got 42/,
    );
  });
});

describe('DAGNote with JSON keys that objects already have', () => {
  const hostile = (): Json => JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"x":1}}') as Json;

  it('keeps a "__proto__" key of the payload as own data, never as the prototype', () => {
    const note = new DAGNote('fetch', hostile());
    const payload = note.payload as Record<string, unknown>;
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
    expect(payload['isAdmin']).toBeUndefined();
    expect(Object.keys(payload)).toEqual(['__proto__', 'constructor']);
    expect(Object.hasOwn(payload, '__proto__')).toBe(true);
    expect(payload['__proto__']).toEqual({ isAdmin: true });
    expect(Object.isFrozen(payload['__proto__'])).toBe(true);
    expect(JSON.stringify(payload)).toBe('{"__proto__":{"isAdmin":true},"constructor":{"x":1}}');
    expect(JSON.stringify(note.toJSON().payload)).toBe(JSON.stringify(payload));
  });

  it('keeps nested "__proto__" keys as own data too', () => {
    const note = new DAGNote('fetch', JSON.parse('{"a":[{"__proto__":{"x":1}}]}') as Json);
    const inner = (note.payload as { a: Record<string, unknown>[] }).a[0] as Record<string, unknown>;
    expect(inner['x']).toBeUndefined();
    expect(Object.keys(inner)).toEqual(['__proto__']);
  });

  it('sees hidden payload differences: equal keys with different "__proto__" data conflict', () => {
    const admin = new DAGNote('A', JSON.parse('{"__proto__":{"isAdmin":true}}') as Json);
    const user = new DAGNote('A', JSON.parse('{"__proto__":{"isAdmin":false}}') as Json);
    const plain = new DAGNote('A', {});
    expect(admin.sameAs(user)).toBe(false);
    expect(admin.sameAs(plain)).toBe(false);
    expect(admin.sameAs(new DAGNote('A', JSON.parse('{"__proto__":{"isAdmin":true}}') as Json))).toBe(true);
    const graph = new Map([
      [new DAGNote('B'), [admin]],
      [user, []],
    ]);
    expect(() => new Composition(graph)).toThrow(InvalidGraphError);
    expect(() => new Composition(graph)).toThrow(
      expect.objectContaining({ code: 'conflicting_node', nodeKey: 'A' }),
    );
  });

  it('refuses reserved names with a ReservedNameError (code reserved_name) naming the node', () => {
    for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf']) {
      expect(RESERVED_NODE_NAMES.has(name)).toBe(true);
      let caught: unknown;
      try {
        new DAGNote(name);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ReservedNameError);
      expect(caught).toMatchObject({ code: 'reserved_name', nodeName: name });
      expect((caught as Error).message).toContain(`"${name}"`);
    }
    for (const name of Object.getOwnPropertyNames(Object.prototype))
      expect(RESERVED_NODE_NAMES.has(name)).toBe(true);
    expect(new DAGNote('proto').name).toBe('proto');
    expect(new DAGNote('Constructor').name).toBe('Constructor');
  });
});
