import {
  InvalidOptionError,
  InvalidPayloadError,
  RESERVED_NODE_NAMES,
  ReservedNameError,
  describe,
} from './errors.ts';
import { nextId } from './ids.ts';
import { checkJson, frozenJsonCopy, jsonEquals, type Json } from './json.ts';

/** Options of a {@link DAGNote}. */
export interface DAGNoteOptions {
  /**
   * When true (the default) the note's key is its name, so every note with that name is the same node.
   * When false, the key is `${name}:${instanceId}` and each instance is a node of its own.
   * @default true
   */
  readonly singleInstance?: boolean | undefined;
}

/**
 * A node of a graph: a name and a JSON payload. Notes hold no run state, so one graph of notes can be shared
 * by any number of compositions at once.
 *
 * @example
 * ```ts
 * const fetch = new DAGNote('fetch', { url: 'https://example.com' });
 * const parse = new DAGNote('parse');
 * new Composition(new Map([[parse, [fetch]]]));
 * ```
 */
export class DAGNote<P extends Json = Json> {
  /** The node's name; also its key when {@link DAGNote.singleInstance} is true. */
  readonly name: string;
  /**
   * A deep-frozen copy of the payload given to the constructor (`{}` when omitted). Every key of the original
   * is an own key of the copy, `__proto__` included (as `JSON.parse` makes it): it never becomes a prototype.
   */
  readonly payload: P;
  /** Whether every note with this name is one node. */
  readonly singleInstance: boolean;
  /** Unique per instance. */
  readonly instanceId: string;
  /** The node's identity in a graph: `name`, or `${name}:${instanceId}` when not single-instance. */
  readonly key: string;

  /**
   * @param name - non-empty node name, not one of {@link RESERVED_NODE_NAMES} (`__proto__`, `constructor`, ...).
   * @param payload - plain JSON; refused with an {@link InvalidPayloadError} that names the first bad path.
   * @throws {InvalidOptionError} when the name is not a non-empty string or an option has a bad value.
   * @throws {ReservedNameError} when the name is reserved (`reserved_name`).
   * @throws {InvalidPayloadError} when the payload is not plain JSON.
   */
  constructor(name: string, payload?: P, options: DAGNoteOptions = {}) {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InvalidOptionError('name', name, 'a non-empty string', { hint: 'give every DAGNote a name' });
    }
    if (RESERVED_NODE_NAMES.has(name)) throw new ReservedNameError(name);
    const singleInstance = options.singleInstance ?? true;
    if (typeof singleInstance !== 'boolean') {
      throw new InvalidOptionError(
        'singleInstance',
        singleInstance,
        `a boolean (${describe(singleInstance)} given)`,
      );
    }
    const value: unknown = payload === undefined ? {} : payload;
    const checked = checkJson(value);
    if (!checked.ok) throw new InvalidPayloadError(name, checked.path, checked.problem);
    this.name = name;
    this.payload = frozenJsonCopy(value as P);
    this.singleInstance = singleInstance;
    this.instanceId = nextId('n');
    this.key = singleInstance ? name : `${name}:${this.instanceId}`;
  }

  /** True when `other` has the same key, i.e. is the same node of a graph. */
  equals(other: DAGNote): boolean {
    return other instanceof DAGNote && other.key === this.key;
  }

  /** True when `other` has the same key and a deep-equal payload (key order ignored). */
  sameAs(other: DAGNote): boolean {
    return this.equals(other) && (other === this || jsonEquals(this.payload, other.payload));
  }

  /** A JSON view for logs: name, key and payload. */
  toJSON(): { name: string; key: string; payload: P } {
    return { name: this.name, key: this.key, payload: this.payload };
  }
}
