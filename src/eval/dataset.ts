/**
 * Dataset readers for eval batches: JSONL, CSV and JSON-array files, streamed row by row (a million-row file
 * is never held in memory), each row validated against the chain's input schema. A bad row becomes a row
 * error with its line number and never stops the batch.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import type { z } from 'zod';
import {
  InvalidOptionError,
  SymphonizerError,
  errorMessage,
  type SymphonizerErrorOptions,
} from '../core/errors.ts';
import { zodIssues, type OutputIssue } from '../providers/structured-output.ts';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabase } from './store.ts';
import type { DatasetItem, DatasetRow } from './types.ts';
import type { EvalErrorCode } from './errors.ts';

/** The file formats {@link readDataset} reads. */
export type DatasetFormat = 'jsonl' | 'csv' | 'json';

/** How a row is split into id, expected value and input (every format, and {@link datasetFromArray}). */
export interface DatasetShapeOptions {
  /** The field holding the row id. @default 'id' */
  readonly idField?: string | undefined;
  /** The field holding the expected value. @default 'expected' */
  readonly expectedField?: string | undefined;
  /** When set, the row's input is `row[inputField]`; otherwise the row without its id and expected fields. */
  readonly inputField?: string | undefined;
}

/** Options of {@link readDataset}. */
export interface ReadDatasetOptions<I> extends DatasetShapeOptions {
  /** The chain's input schema (`chain.inputSchema`); each row's input is validated (and coerced) with it. */
  readonly schema: z.ZodType<I>;
  /** @default from the extension: `.jsonl`/`.ndjson` → jsonl, `.csv` → csv, `.json` → json */
  readonly format?: DatasetFormat | undefined;
  /**
   * CSV: the most physical lines one quoted field may span, its opening line included. A quoted field that
   * runs longer is taken as an unclosed quote: its record is one row error at its first line, and reading
   * goes on at the line after the one where the quote opened. An integer >= 1.
   * @default 1000 ({@link defaultMaxFieldLines})
   */
  readonly maxFieldLines?: number | undefined;
  /**
   * CSV: the most bytes (UTF-8) of raw text one quoted field may hold; past it, the field is an unclosed
   * quote, as with `maxFieldLines`. An integer >= 1.
   * @default 1048576, 1 MiB ({@link defaultMaxFieldBytes})
   */
  readonly maxFieldBytes?: number | undefined;
}

/** The default of {@link ReadDatasetOptions.maxFieldLines}. */
export const defaultMaxFieldLines = 1000;

/** The default of {@link ReadDatasetOptions.maxFieldBytes}: 1 MiB. */
export const defaultMaxFieldBytes = 1024 * 1024;

/**
 * The prefix of the id of a row that could not be read as a row of its own: `!line:<line>` (e.g.
 * `!line:3`). Such a row is a row error: bad JSON, a malformed CSV record, an id that is neither a string
 * nor a number, a duplicate id, or an id that itself starts with this prefix (reserved, so a real id can
 * never collide with one of these). Every line has one such id at most, so they never collide either.
 */
export const unreadIdPrefix = '!line:';

/** True when `id` is the id {@link readDataset} gives a row it could not read (see {@link unreadIdPrefix}). */
export function isUnreadRowId(id: string): boolean {
  return id.startsWith(unreadIdPrefix);
}

/**
 * A dataset file could not be read: it is missing, unreadable or not a file, its format is unknown, a CSV
 * header is unusable, or a JSON file is not an array. Code `dataset_error`. Bad rows are never thrown: they
 * are row errors ({@link DatasetItem} with `ok: false`).
 */
export class DatasetError extends SymphonizerError<EvalErrorCode> {
  /** The dataset's path. */
  readonly path: string;

  constructor(message: string, path: string, options: SymphonizerErrorOptions = {}) {
    super('dataset_error', message, options);
    this.path = path;
  }
}

/** Raw row text kept in a row error is cut to this many characters. */
export const maxRawLength = 10_000;

/**
 * Reads a dataset file row by row, streamed: JSONL line by line, CSV record by record, a JSON array element
 * by element, so memory stays flat however large the file (only the row ids seen so far are kept, packed
 * off the JS heap, to find duplicates).
 *
 * Each row becomes a {@link DatasetRow}: `id` is the row's `idField` (a string or a number) or else its
 * `line`; `expected` its `expectedField`; `input` its `inputField`, or else the row without those two fields,
 * validated with `schema` (its output, so defaults and coercions apply). A JSON value that is not an object
 * (a string, a number, an array) is the input itself.
 *
 * - **JSONL** (`.jsonl`, `.ndjson`): one JSON value per line; blank lines are skipped; `line` is the
 *   physical line.
 * - **CSV** (`.csv`): RFC 4180 — a header row, `,` separators, fields in `"…"` may hold commas, newlines and
 *   `""` (an escaped quote); `\n`, `\r\n` or `\r` end records; blank lines are skipped. Values stay
 *   **strings**: the schema sees strings, so use `z.coerce.number()`, `z.coerce.boolean()` or `z.preprocess`
 *   for other types. An empty id or expected cell counts as absent. `line` is the record's first line.
 * - **JSON** (`.json`): a top-level array, parsed element by element by a small incremental scanner;
 *   `line` is the element's index + 1 (its physical line is in row errors' messages).
 *
 * A bad row is yielded as `{ ok: false, id, line, error, issues?, raw }`; iteration goes on. A row that
 * could not be read as a row of its own (invalid JSON, a CSV record with the wrong number of fields or a
 * stray quote, an id that is neither a string nor a number, a duplicate id) gets the id `!line:<line>`
 * ({@link unreadIdPrefix}, {@link isUnreadRowId}); a real id starting with `!line:` is refused the same way,
 * so these ids never collide with real ones and every yielded id is unique. A duplicate keeps the first row
 * valid. A row whose input fails the schema keeps its own id. Each iteration reads the file anew; breaking
 * out of a `for await` closes the file.
 *
 * An unclosed CSV quote costs one row: a quoted field may span at most `maxFieldLines` lines and
 * `maxFieldBytes` bytes, and a multi-line quoted field must be followed by `,` or a line end. A field that
 * breaks either rule is an unclosed quote: its record is one row error at its first line, and reading
 * resumes at the line after the one where the quote opened (as it does for a quote still open at the end of
 * the file).
 *
 * @example
 * ```ts
 * for await (const item of readDataset('cases.jsonl', { schema: myChain.inputSchema })) {
 *   if (item.ok) await myChain.run(item.row.input);
 *   else console.error(`line ${item.line}: ${item.error}`);
 * }
 * ```
 * @throws {DatasetError} (when iterated) for a missing, unreadable or non-regular file, an unusable CSV header,
 *   or a JSON file that is not an array; (at once) for an unknown format.
 * @throws {InvalidOptionError} (at once) for a missing schema, an empty field name, or a `maxFieldLines` or
 *   `maxFieldBytes` that is not an integer >= 1.
 */
export function readDataset<I>(path: string, options: ReadDatasetOptions<I>): AsyncIterable<DatasetItem<I>> {
  const format = options.format ?? formatOf(path);
  if (format !== 'jsonl' && format !== 'csv' && format !== 'json') {
    throw new DatasetError(`Unknown dataset format ${JSON.stringify(format)} for ${path}.`, path, {
      hint: "use a .jsonl, .csv or .json file, or pass format: 'jsonl' | 'csv' | 'json'",
    });
  }
  const shape = checkShape(options);
  const schema = checkSchema(options.schema);
  const limits: CsvLimits = {
    lines: limit('maxFieldLines', options.maxFieldLines, defaultMaxFieldLines),
    bytes: limit('maxFieldBytes', options.maxFieldBytes, defaultMaxFieldBytes),
  };
  return {
    [Symbol.asyncIterator]: () => {
      const rows = new RowMaker(schema, shape, format === 'csv');
      switch (format) {
        case 'jsonl':
          return closing(rows, readJsonl(path, rows));
        case 'csv':
          return closing(rows, readCsv(path, rows, limits));
        case 'json':
          return closing(rows, readJsonArray(path, rows));
      }
    },
  };
}

/** `items`, then the reader's ids forgotten, however the reading ends (done, a break, an error). */
async function* closing<I>(
  rows: RowMaker<I>,
  items: AsyncGenerator<DatasetItem<I>>,
): AsyncGenerator<DatasetItem<I>> {
  try {
    yield* items;
  } finally {
    rows.close();
  }
}

/**
 * An in-memory dataset: each element of `rows` is a row as {@link readDataset} reads it (`line` and the
 * fallback id are the index + 1). Row errors carry the row as JSON in `raw`.
 *
 * @example
 * ```ts
 * const items = datasetFromArray([{ id: 'a', topic: 'tides', expected: 'moon' }], z.object({ topic: z.string() }));
 * ```
 * @throws {InvalidOptionError} for a missing schema or an empty field name.
 */
export function datasetFromArray<I>(
  rows: Iterable<unknown>,
  schema: z.ZodType<I>,
  options: DatasetShapeOptions = {},
): AsyncIterable<DatasetItem<I>> {
  const shape = checkShape(options);
  const checked = checkSchema(schema);
  return {
    [Symbol.asyncIterator]: async function* () {
      const maker = new RowMaker(checked, shape, false);
      let line = 0;
      try {
        for (const value of rows) {
          line++;
          yield await maker.fromValue(value, line, () => jsonText(value));
        }
      } finally {
        maker.close();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Rows: id, expected and input of a parsed value; duplicate ids; schema validation.

interface Shape {
  readonly idField: string;
  readonly expectedField: string;
  readonly inputField: string | undefined;
}

/**
 * The ids seen so far, with the line of their first row, packed off the JS heap: a byte arena of
 * `[line u32][length u32][UTF-8 bytes]` entries and an open-addressing table of entry offsets. About 8 bytes
 * plus the id's bytes per row, where a `Map<string, number>` costs some 80 bytes of heap per row.
 */
export class RowIdIndex {
  #arena = Buffer.allocUnsafe(1 << 16);
  #used = 0;
  /** Entry offset + 1 per slot (0 = empty); a power-of-two length, at most half full. */
  #slots = new Uint32Array(1 << 12);
  #count = 0;
  /** Ids with surrogates (lone ones, which UTF-8 cannot tell apart, all become U+FFFD): kept as strings. */
  readonly #illFormed = new Map<string, number>();

  /** Ids held. */
  get size(): number {
    return this.#count + this.#illFormed.size;
  }

  /** Adds `id` first seen at `line`; returns the line of its first row instead if it was already there. */
  add(id: string, line: number): number | undefined {
    if (/[\uD800-\uDFFF]/.test(id)) {
      const first = this.#illFormed.get(id);
      if (first === undefined) this.#illFormed.set(id, line);
      return first;
    }
    const length = Buffer.byteLength(id, 'utf8');
    this.#reserve(8 + length);
    const arena = this.#arena;
    const at = this.#used;
    const start = at + 8;
    arena.write(id, start, length, 'utf8');
    let hash = 0x811c9dc5;
    for (let i = start; i < start + length; i++) hash = Math.imul(hash ^ (arena[i] as number), 0x01000193);
    const mask = this.#slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.#slots[slot] as number;
      if (entry === 0) {
        arena.writeUInt32LE(line >>> 0, at);
        arena.writeUInt32LE(length, at + 4);
        this.#used = start + length;
        this.#slots[slot] = at + 1;
        this.#count += 1;
        if (this.#count * 2 > this.#slots.length) this.#rehash();
        return undefined;
      }
      const other = entry - 1;
      if (
        arena.readUInt32LE(other + 4) === length &&
        arena.compare(arena, start, start + length, other + 8, other + 8 + length) === 0
      ) {
        return arena.readUInt32LE(other);
      }
    }
  }

  /** Every id held with the line of its first row, in the order they were added (the ill-formed ones last). */
  *entries(): Generator<[string, number]> {
    const arena = this.#arena;
    for (let at = 0; at < this.#used;) {
      const length = arena.readUInt32LE(at + 4);
      yield [arena.toString('utf8', at + 8, at + 8 + length), arena.readUInt32LE(at)];
      at += 8 + length;
    }
    yield* this.#illFormed;
  }

  #reserve(bytes: number): void {
    if (this.#used + bytes <= this.#arena.length) return;
    let size = this.#arena.length * 2;
    while (size < this.#used + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.#arena.copy(grown, 0, 0, this.#used);
    this.#arena = grown;
  }

  #rehash(): void {
    const slots = new Uint32Array(this.#slots.length * 2);
    const mask = slots.length - 1;
    const arena = this.#arena;
    for (const entry of this.#slots) {
      if (entry === 0) continue;
      const start = entry - 1 + 8;
      const end = start + arena.readUInt32LE(entry - 1 + 4);
      let hash = 0x811c9dc5;
      for (let i = start; i < end; i++) hash = Math.imul(hash ^ (arena[i] as number), 0x01000193);
      let slot = hash & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = entry;
    }
    this.#slots = slots;
  }
}

/** Ids held in memory before {@link RowIds} moves them to a temporary file: about 1 MB of them. */
export const rowIdsInMemory = 50_000;

/**
 * The ids of a dataset seen so far, with the line of their first row, in memory bounded by
 * {@link rowIdsInMemory}: the first ids are kept in a {@link RowIdIndex}; past that many, every id moves to a
 * private temporary SQLite file (deleted on {@link RowIds.close}, its page cache some 2 MB), so a dataset of
 * millions of rows no longer grows the process by its ids (some 25 bytes a row with the index alone).
 */
export class RowIds {
  readonly #spillAt: number;
  #memory: RowIdIndex | undefined = new RowIdIndex();
  #disk: DiskIds | undefined;

  /** @param spillAt - how many ids to hold in memory before moving them to the file. */
  constructor(spillAt = rowIdsInMemory) {
    this.#spillAt = spillAt;
  }

  /** Adds `id` first seen at `line`; returns the line of its first row instead if it was already there. */
  add(id: string, line: number): number | undefined {
    if (this.#disk !== undefined) return this.#disk.add(id, line);
    const memory = (this.#memory ??= new RowIdIndex());
    const first = memory.add(id, line);
    if (first === undefined && memory.size > this.#spillAt) this.#spill(memory);
    return first;
  }

  /** True once the ids are in the temporary file. */
  get spilled(): boolean {
    return this.#disk !== undefined;
  }

  /** Deletes the temporary file, if any, and forgets every id. Adding afterwards starts afresh. */
  close(): void {
    this.#disk?.close();
    this.#disk = undefined;
    this.#memory = undefined;
  }

  #spill(memory: RowIdIndex): void {
    const disk = new DiskIds();
    disk.addAll(memory.entries());
    this.#disk = disk;
    this.#memory = undefined;
  }
}

/** Ids in a private temporary SQLite database; writes are grouped in transactions of 10,000. */
class DiskIds {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #select: StatementSync;
  #pending = 0;

  constructor() {
    // '' is a private, temporary on-disk database, deleted when it is closed.
    this.#db = openDatabase('');
    this.#db.exec('PRAGMA journal_mode = OFF');
    this.#db.exec('PRAGMA synchronous = OFF');
    this.#db.exec('CREATE TABLE ids (id TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID');
    this.#insert = this.#db.prepare('INSERT OR IGNORE INTO ids (id, line) VALUES (?, ?)');
    this.#select = this.#db.prepare('SELECT line FROM ids WHERE id = ?');
  }

  add(id: string, line: number): number | undefined {
    this.#begin();
    if (Number(this.#insert.run(id, line).changes) === 1) return undefined;
    return Number(this.#select.get(id)?.['line']);
  }

  addAll(entries: Iterable<[string, number]>): void {
    for (const [id, line] of entries) {
      this.#begin();
      this.#insert.run(id, line);
    }
  }

  close(): void {
    if (!this.#db.isOpen) return;
    if (this.#db.isTransaction) this.#db.exec('COMMIT');
    this.#db.close();
  }

  #begin(): void {
    if (this.#pending === 0 || this.#pending >= 10_000) {
      if (this.#db.isTransaction) this.#db.exec('COMMIT');
      this.#db.exec('BEGIN');
      this.#pending = 0;
    }
    this.#pending++;
  }
}

class RowMaker<I> {
  /** Ids seen so far, with the line of their first row. */
  readonly #ids = new RowIds();
  readonly #schema: z.ZodType<I>;
  readonly #shape: Shape;
  /** CSV: empty id and expected cells count as absent. */
  readonly #emptyIsAbsent: boolean;

  constructor(schema: z.ZodType<I>, shape: Shape, emptyIsAbsent: boolean) {
    this.#schema = schema;
    this.#shape = shape;
    this.#emptyIsAbsent = emptyIsAbsent;
  }

  /** Forgets the ids seen (and deletes their temporary file, if they moved to one). */
  close(): void {
    this.#ids.close();
  }

  /** A row error for a row that could not be read as a row of its own: its id is `!line:<line>`. */
  error(line: number, error: string, raw: string): DatasetItem<I> {
    return this.#error(`${unreadIdPrefix}${line}`, line, error, raw);
  }

  async fromValue(value: unknown, line: number, raw: () => string): Promise<DatasetItem<I>> {
    const { idField, expectedField, inputField } = this.#shape;
    const record = isRecord(value) ? value : undefined;
    let id = String(line);
    const rawId = record?.[idField];
    if (rawId !== undefined && rawId !== null && !(this.#emptyIsAbsent && rawId === '')) {
      if (typeof rawId === 'string') id = rawId;
      else if (typeof rawId === 'number' && Number.isFinite(rawId)) id = String(rawId);
      else return this.error(line, `The "${idField}" field must be a string or a number.`, raw());
      if (isUnreadRowId(id)) {
        return this.error(
          line,
          `The id ${JSON.stringify(id)} starts with "${unreadIdPrefix}", which is reserved for rows that could not be read.`,
          raw(),
        );
      }
    }
    const first = this.#ids.add(id, line);
    if (first !== undefined) {
      return this.error(line, `duplicate id ${JSON.stringify(id)} (first at line ${first})`, raw());
    }

    let input: unknown = value;
    let expected: unknown;
    if (record !== undefined) {
      const cell = record[expectedField];
      if (cell !== undefined && !(this.#emptyIsAbsent && cell === '')) expected = cell;
      if (inputField !== undefined) input = record[inputField];
      else {
        const rest: Record<string, unknown> = {};
        for (const [key, cell] of Object.entries(record)) {
          if (key !== idField && key !== expectedField) rest[key] = cell;
        }
        input = rest;
      }
    } else if (inputField !== undefined) {
      return this.#error(id, line, `The row is not an object, so it has no "${inputField}" field.`, raw());
    }

    let parsed: z.ZodSafeParseResult<I>;
    try {
      parsed = await this.#schema.safeParseAsync(input);
    } catch (error) {
      return this.#error(id, line, `The input schema threw: ${errorMessage(error)}`, raw());
    }
    if (!parsed.success) {
      const issues = zodIssues(parsed.error);
      const shown = issues
        .slice(0, 3)
        .map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`)
        .join('; ');
      return this.#error(id, line, `The input does not match the schema: ${shown}`, raw(), issues);
    }
    const row: DatasetRow<I> =
      expected === undefined ? { id, line, input: parsed.data } : { id, line, input: parsed.data, expected };
    return { ok: true, row };
  }

  #error(
    id: string,
    line: number,
    error: string,
    raw: string,
    issues?: readonly OutputIssue[],
  ): DatasetItem<I> {
    const clipped = raw.length > maxRawLength ? `${raw.slice(0, maxRawLength)}…` : raw;
    return issues === undefined
      ? { ok: false, id, line, error, raw: clipped }
      : { ok: false, id, line, error, issues, raw: clipped };
  }
}

// ---------------------------------------------------------------------------------------------------------
// JSONL

async function* readJsonl<I>(path: string, rows: RowMaker<I>): AsyncGenerator<DatasetItem<I>> {
  const stream = await openStream(path);
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  const iterator = lines[Symbol.asyncIterator]();
  let line = 0;
  try {
    for (;;) {
      let next: IteratorResult<string>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw readError(path, error);
      }
      if (next.done === true) return;
      line++;
      const text = line === 1 ? stripBom(next.value) : next.value;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        const problem = jsonProblem(error, text);
        const at = problem.column === undefined ? '' : ` at column ${problem.column}`;
        yield rows.error(line, `Invalid JSON${at}: ${problem.message}`, text);
        continue;
      }
      yield await rows.fromValue(value, line, () => text);
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------
// CSV

async function* readCsv<I>(
  path: string,
  rows: RowMaker<I>,
  limits: CsvLimits,
): AsyncGenerator<DatasetItem<I>> {
  const stream = await openStream(path);
  const parser = new CsvParser(limits);
  let header: readonly string[] | undefined;
  try {
    const records = async function* (): AsyncGenerator<CsvRecord> {
      for await (const chunk of chunks(path, stream)) yield* parser.push(chunk);
      yield* parser.end();
    };
    for await (const record of records()) {
      if (header === undefined) {
        header = checkHeader(path, record);
        continue;
      }
      if (record.error !== undefined) {
        yield rows.error(record.line, record.error, record.raw);
        continue;
      }
      if (record.fields.length !== header.length) {
        yield rows.error(
          record.line,
          `Expected ${header.length} fields (as the header), got ${record.fields.length}.`,
          record.raw,
        );
        continue;
      }
      const value: Record<string, string> = {};
      header.forEach((name, i) => {
        value[name] = record.fields[i] as string;
      });
      yield await rows.fromValue(value, record.line, () => record.raw);
    }
  } finally {
    stream.destroy();
  }
}

function checkHeader(path: string, record: CsvRecord): readonly string[] {
  const problem =
    record.error ??
    (record.fields.some((f) => f.trim() === '')
      ? 'a column has an empty name'
      : record.fields.find((f, i) => record.fields.indexOf(f) !== i) !== undefined
        ? `two columns are named ${JSON.stringify(record.fields.find((f, i) => record.fields.indexOf(f) !== i))}`
        : undefined);
  if (problem !== undefined) {
    throw new DatasetError(`The CSV header of ${path} (line ${record.line}) is unusable: ${problem}.`, path, {
      hint: 'the first record must name every column, each name once',
    });
  }
  return record.fields;
}

/** One CSV record: its fields, its first line, its raw text, and what is wrong with it, if anything. */
interface CsvRecord {
  readonly fields: readonly string[];
  readonly line: number;
  readonly raw: string;
  readonly error?: string | undefined;
}

const QUOTE = 34;
const COMMA = 44;
const CR = 13;
const LF = 10;

const csvState = { start: 0, unquoted: 1, quoted: 2, quoteSeen: 3 } as const;
type CsvState = (typeof csvState)[keyof typeof csvState];

/** How far one quoted CSV field may run: physical lines (its opening line included) and UTF-8 bytes. */
interface CsvLimits {
  readonly lines: number;
  readonly bytes: number;
}

/**
 * An incremental RFC 4180 parser: feed it chunks, get whole records.
 *
 * Re-sync: a quoted field that spans more than `limits.lines` lines, holds more than `limits.bytes` bytes,
 * is still open at the end of the input, or spans lines and is followed by something other than `,` or a
 * line end, is taken as an unclosed quote. Its record becomes one error record at its first line (its raw
 * text cut at the end of the line where the quote opened), and parsing starts again at the line after that
 * one, from the raw text kept since (at most `limits` of it). Each character is scanned at most twice: the
 * text rescanned after a re-sync holds no quote before the point where the runaway field was given up.
 */
class CsvParser {
  readonly #limits: CsvLimits;
  #state: CsvState = csvState.start;
  #fields: string[] = [];
  #field = '';
  #segStart = 0;
  #line = 1;
  #recordLine = 1;
  #rawPrefix = '';
  #recordStart = 0;
  #prevCr = false;
  #error: string | undefined;
  #first = true;
  /** The line where the current (or last) quoted field of the record opened. */
  #quoteLine = 1;
  /** Offset of that field's opening quote in the record's raw text. */
  #quoteAt = 0;
  /** UTF-8 bytes of that field's raw text so far. */
  #quoteBytes = 0;
  /** After a re-sync whose opening line had not ended yet: discard up to the end of that line. */
  #skipping = false;

  constructor(limits: CsvLimits) {
    this.#limits = limits;
  }

  *push(input: string): Generator<CsvRecord> {
    let chunk: string | undefined = input;
    if (this.#first && chunk.length > 0) {
      this.#first = false;
      chunk = stripBom(chunk);
    }
    // A re-sync hands back the text to parse again; a loop, not recursion, however many there are.
    while (chunk !== undefined) chunk = yield* this.#scan(chunk);
  }

  *end(): Generator<CsvRecord> {
    while (this.#state === csvState.quoted) {
      const resync = this.#resync(
        this.#rawPrefix,
        '',
        `A quoted field (opened at line ${this.#quoteLine}) is not closed before the end of the file.`,
      );
      yield resync.record;
      yield* this.push(resync.rest);
    }
    if (this.#state !== csvState.start || this.#fields.length > 0 || this.#rawPrefix !== '') {
      this.#fields.push(this.#field);
      const record = this.#finish(this.#rawPrefix);
      if (record !== undefined) yield record;
    }
  }

  /** Parses `chunk`; returns the text to parse next after a re-sync (the rest of `chunk` included). */
  *#scan(chunk: string): Generator<CsvRecord, string | undefined> {
    this.#segStart = 0;
    this.#recordStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      const afterCr = this.#prevCr;
      this.#prevCr = c === CR;
      const newline = c === CR || c === LF;
      const lineEnd = newline && !(c === LF && afterCr);
      if (lineEnd) this.#line++;
      if (this.#skipping) {
        if (!newline) continue;
        this.#skipping = false;
        this.#recordStart = i + 1;
        this.#recordLine = this.#line;
        continue;
      }
      switch (this.#state) {
        case csvState.quoted: {
          if (c === QUOTE) {
            this.#field += chunk.slice(this.#segStart, i);
            this.#state = csvState.quoteSeen;
            continue;
          }
          this.#quoteBytes += c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 2 : 3;
          const lines = this.#line - this.#quoteLine + 1;
          if (lines > this.#limits.lines || this.#quoteBytes > this.#limits.bytes) {
            const bound =
              lines > this.#limits.lines
                ? `${this.#limits.lines} lines (maxFieldLines)`
                : `${this.#limits.bytes} bytes (maxFieldBytes)`;
            return yield* this.#resynced(
              chunk,
              i,
              `A quoted field (opened at line ${this.#quoteLine}) is not closed within ${bound}.`,
            );
          }
          continue;
        }
        case csvState.quoteSeen:
          if (c === QUOTE) {
            this.#field += '"';
            this.#segStart = i + 1;
            this.#state = csvState.quoted;
            this.#quoteBytes += 1;
            continue;
          }
          if (c !== COMMA && !newline) {
            if (this.#line > this.#quoteLine) {
              // A field over several lines that does not end at a separator: its opening quote was a stray.
              return yield* this.#resynced(
                chunk,
                i,
                `A quoted field (opened at line ${this.#quoteLine}) is not closed: the quote at line ` +
                  `${this.#line} is followed by ${JSON.stringify(chunk[i])}, not by a comma or a line end.`,
              );
            }
            this.#error ??= `Unexpected character ${JSON.stringify(chunk[i])} after a closing quote.`;
            this.#segStart = i;
            this.#state = csvState.unquoted;
            continue;
          }
          break;
        case csvState.unquoted:
          if (c !== COMMA && !newline) continue;
          this.#field += chunk.slice(this.#segStart, i);
          break;
        case csvState.start:
          if (c === QUOTE) {
            this.#segStart = i + 1;
            this.#state = csvState.quoted;
            this.#quoteLine = this.#line;
            this.#quoteAt = this.#rawPrefix.length + i - this.#recordStart;
            this.#quoteBytes = 0;
            continue;
          }
          if (c === LF && afterCr) {
            // The LF of a CRLF whose CR ended the record.
            this.#recordStart = i + 1;
            this.#rawPrefix = '';
            continue;
          }
          if (c !== COMMA && !newline) {
            this.#segStart = i;
            this.#state = csvState.unquoted;
            continue;
          }
          break;
      }
      // A comma or a newline outside quotes ends the field.
      this.#fields.push(this.#field);
      this.#field = '';
      this.#state = csvState.start;
      if (newline) {
        const raw = this.#rawPrefix + chunk.slice(this.#recordStart, i);
        const record = this.#finish(raw);
        this.#recordStart = i + 1;
        this.#recordLine = this.#line;
        if (record !== undefined) yield record;
      }
    }
    if (this.#skipping) return undefined;
    if (this.#state === csvState.unquoted || this.#state === csvState.quoted) {
      this.#field += chunk.slice(this.#segStart);
    }
    this.#rawPrefix += chunk.slice(this.#recordStart);
    return undefined;
  }

  /** Gives up the quoted field at `chunk[i]`: yields its error record, returns the text to parse again. */
  *#resynced(chunk: string, i: number, error: string): Generator<CsvRecord, string> {
    const raw = this.#rawPrefix + chunk.slice(this.#recordStart, i + 1);
    const { record, rest } = this.#resync(raw, chunk.slice(i + 1), error);
    yield record;
    return rest;
  }

  /**
   * The error record of a record whose quoted field opened at `#quoteAt` of `raw` is given up, and the text
   * to parse again: the raw text after the line the quote opened on, then `after`. When that line has not
   * ended yet, the rest of it is skipped.
   */
  #resync(raw: string, after: string, error: string): { record: CsvRecord; rest: string } {
    let end = -1;
    for (let j = this.#quoteAt + 1; j < raw.length; j++) {
      const c = raw.charCodeAt(j);
      if (c === CR || c === LF) {
        end = j;
        break;
      }
    }
    const record: CsvRecord = {
      fields: [],
      line: this.#recordLine,
      raw: end === -1 ? raw : raw.slice(0, end),
      error: `${error} Reading resumes at line ${this.#quoteLine + 1}.`,
    };
    this.#fields = [];
    this.#field = '';
    this.#rawPrefix = '';
    this.#error = undefined;
    this.#state = csvState.start;
    this.#line = this.#quoteLine;
    if (end === -1) {
      this.#skipping = true;
      this.#prevCr = false;
      return { record, rest: after };
    }
    let next = end + 1;
    if (raw.charCodeAt(end) === CR && raw.charCodeAt(next) === LF) next++;
    this.#line = this.#quoteLine + 1;
    this.#recordLine = this.#line;
    // A CR at the very end of `raw` may be the first half of a CRLF whose LF opens `after`.
    this.#prevCr = raw.charCodeAt(next - 1) === CR;
    return { record, rest: raw.slice(next) + after };
  }

  #finish(raw: string): CsvRecord | undefined {
    const record: CsvRecord =
      this.#error === undefined
        ? { fields: this.#fields, line: this.#recordLine, raw }
        : { fields: this.#fields, line: this.#recordLine, raw, error: this.#error };
    this.#fields = [];
    this.#field = '';
    this.#rawPrefix = '';
    this.#error = undefined;
    return raw === '' ? undefined : record; // a blank line
  }
}

// ---------------------------------------------------------------------------------------------------------
// JSON arrays

async function* readJsonArray<I>(path: string, rows: RowMaker<I>): AsyncGenerator<DatasetItem<I>> {
  const stream = await openStream(path);
  const splitter = new JsonArraySplitter(path);
  try {
    const elements = async function* (): AsyncGenerator<JsonElement> {
      for await (const chunk of chunks(path, stream)) yield* splitter.push(chunk);
      yield* splitter.end();
    };
    for await (const element of elements()) {
      const line = element.index + 1;
      const where = `element ${element.index} (line ${element.line})`;
      if (element.error !== undefined) {
        yield rows.error(line, `${where}: ${element.error}`, element.text);
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(element.text);
      } catch (error) {
        // One line number: the file line of the error itself (the parser's own counts from the element).
        const problem = jsonProblem(error, element.text);
        const errorLine = element.line + (problem.line ?? 1) - 1;
        yield rows.error(
          line,
          `element ${element.index} (line ${errorLine}): invalid JSON: ${problem.message}`,
          element.text,
        );
        continue;
      }
      yield await rows.fromValue(value, line, () => element.text);
    }
  } finally {
    stream.destroy();
  }
}

/** One element of the top-level array: its text, index, first physical line and what is wrong with it. */
interface JsonElement {
  readonly text: string;
  readonly index: number;
  readonly line: number;
  readonly error?: string | undefined;
}

const jsonState = { before: 0, between: 1, element: 2, after: 3 } as const;
type JsonState = (typeof jsonState)[keyof typeof jsonState];

/**
 * Splits a top-level JSON array into its elements' texts, chunk by chunk, by tracking strings, escapes and
 * bracket depth; each element is then `JSON.parse`d on its own. An element with bad JSON is a row error; the
 * next `,` at depth 0 starts the next element.
 */
class JsonArraySplitter {
  readonly #path: string;
  #state: JsonState = jsonState.before;
  #text = '';
  #segStart = 0;
  #depth = 0;
  #inString = false;
  #escape = false;
  #index = 0;
  #line = 1;
  #elementLine = 1;
  #afterComma = false;
  #first = true;

  constructor(path: string) {
    this.#path = path;
  }

  *push(input: string): Generator<JsonElement> {
    let chunk = input;
    if (this.#first && chunk.length > 0) {
      this.#first = false;
      chunk = stripBom(chunk);
    }
    this.#segStart = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as string;
      if (c === '\n') this.#line++;
      switch (this.#state) {
        case jsonState.before:
          if (c === '[') this.#state = jsonState.between;
          else if (!isSpace(c)) this.#notAnArray(c);
          continue;
        case jsonState.after:
          if (!isSpace(c)) {
            throw new DatasetError(
              `${this.#path} has text after its JSON array (line ${this.#line}).`,
              this.#path,
              { hint: 'a JSON dataset is one array of rows' },
            );
          }
          continue;
        case jsonState.between:
          if (isSpace(c)) continue;
          if (c === ']' || c === ',') {
            if (c === ',' || this.#afterComma) yield this.#empty();
            this.#afterComma = c === ',';
            if (c === ']') this.#state = jsonState.after;
            continue;
          }
          this.#state = jsonState.element;
          this.#segStart = i;
          this.#elementLine = this.#line;
          this.#depth = 0;
          this.#inString = false;
          this.#escape = false;
          break;
        case jsonState.element:
          break;
      }
      // Inside an element.
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (c === '\\') this.#escape = true;
        else if (c === '"') this.#inString = false;
        continue;
      }
      if (c === '"') this.#inString = true;
      else if (c === '{' || c === '[') this.#depth++;
      else if ((c === ']' && this.#depth === 0) || (c === ',' && this.#depth === 0)) {
        this.#text += chunk.slice(this.#segStart, i);
        yield this.#element();
        this.#afterComma = c === ',';
        this.#state = c === ']' ? jsonState.after : jsonState.between;
      } else if (c === '}' || c === ']') this.#depth = Math.max(0, this.#depth - 1);
    }
    if (this.#state === jsonState.element) this.#text += chunk.slice(this.#segStart);
  }

  *end(): Generator<JsonElement> {
    // A truncated file: the element in progress (or the missing one after `[` or `,`) is a row error.
    if (this.#state === jsonState.element || this.#state === jsonState.between) {
      if (this.#state === jsonState.between) this.#elementLine = this.#line;
      yield this.#element('The file ends before the array is closed.');
    }
  }

  #element(error?: string): JsonElement {
    const text = this.#text.trim();
    this.#text = '';
    const element: JsonElement =
      error === undefined
        ? { text, index: this.#index, line: this.#elementLine }
        : { text, index: this.#index, line: this.#elementLine, error };
    this.#index++;
    return element;
  }

  #empty(): JsonElement {
    this.#elementLine = this.#line;
    return this.#element('An empty element (two commas, or a comma before the end of the array).');
  }

  #notAnArray(c: string): never {
    throw new DatasetError(
      `${this.#path} is not a JSON array (it starts with ${JSON.stringify(c)}).`,
      this.#path,
      { hint: 'a JSON dataset is an array of rows; for one row per line, use JSONL' },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Files

/** Checks the path is a readable regular file and opens it as a UTF-8 stream. */
async function openStream(path: string): Promise<ReadStream> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw readError(path, error);
  }
  if (!info.isFile()) {
    throw new DatasetError(`Dataset ${path} is not a file.`, path, {
      hint: 'give the path of a dataset file',
    });
  }
  return new Promise((resolve, reject) => {
    const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 64 * 1024 });
    const onError = (error: unknown): void => {
      reject(readError(path, error));
    };
    stream.once('error', onError);
    stream.once('ready', () => {
      stream.off('error', onError);
      resolve(stream);
    });
  });
}

/** The stream's chunks as strings; a read error becomes a {@link DatasetError}. */
async function* chunks(path: string, stream: ReadStream): AsyncGenerator<string> {
  const iterator = (stream as AsyncIterable<string>)[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = await iterator.next();
    } catch (error) {
      throw readError(path, error);
    }
    if (next.done === true) return;
    yield next.value;
  }
}

function readError(path: string, error: unknown): DatasetError {
  if (error instanceof DatasetError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message =
    code === 'ENOENT'
      ? `Dataset ${path} does not exist.`
      : code === 'EACCES' || code === 'EPERM'
        ? `Dataset ${path} cannot be read (permission denied).`
        : code === 'EISDIR'
          ? `Dataset ${path} is a directory.`
          : `Dataset ${path} cannot be read: ${errorMessage(error)}`;
  return new DatasetError(message, path, { cause: error });
}

function formatOf(path: string): string {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.json') return 'json';
  return ext === '' ? '(no extension)' : ext;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

function checkShape(options: DatasetShapeOptions): Shape {
  const field = (name: string, value: string | undefined, fallback: string): string => {
    const v = value ?? fallback;
    if (typeof v !== 'string' || v === '') throw new InvalidOptionError(name, value, 'a non-empty string');
    return v;
  };
  const shape = {
    idField: field('idField', options.idField, 'id'),
    expectedField: field('expectedField', options.expectedField, 'expected'),
    inputField:
      options.inputField === undefined ? undefined : field('inputField', options.inputField, 'input'),
  };
  if (shape.expectedField === shape.idField) {
    throw new InvalidOptionError('expectedField', shape.expectedField, 'a field other than idField');
  }
  if (shape.inputField === shape.idField || shape.inputField === shape.expectedField) {
    throw new InvalidOptionError(
      'inputField',
      shape.inputField,
      'a field other than idField and expectedField',
    );
  }
  return shape;
}

function limit(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!(Number.isSafeInteger(v) && v >= 1)) throw new InvalidOptionError(name, value, 'an integer >= 1');
  return v;
}

function checkSchema<I>(schema: z.ZodType<I>): z.ZodType<I> {
  const candidate = schema as Partial<z.ZodType<I>> | undefined;
  if (typeof candidate?.safeParseAsync !== 'function') {
    throw new InvalidOptionError('schema', schema, "a zod schema (e.g. the chain's inputSchema)");
  }
  return schema;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\n' || c === '\r' || c === '\t';
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function jsonText(value: unknown): string {
  try {
    // JSON.stringify returns undefined for undefined, functions and symbols, despite its declared `string`.
    const json: unknown = JSON.stringify(value);
    return typeof json === 'string' ? json : String(value);
  } catch {
    return String(value);
  }
}

/**
 * A `JSON.parse` error without the parser's position (`in JSON at position 96 (line 1 column 97)`), with that
 * position as the line and column within `text` (1-based), so a row error names one line: the file's.
 */
function jsonProblem(error: unknown, text: string): { message: string; line?: number; column?: number } {
  const raw = errorMessage(error);
  const match = /\s*in JSON at position (\d+)(?:\s*\(line \d+ column \d+\))?/.exec(raw);
  if (match === null) return { message: raw.replace(/\s*\(line \d+ column \d+\)/, '') };
  const message = (raw.slice(0, match.index) + raw.slice(match.index + match[0].length)).trim();
  const position = Math.min(Number(match[1]), text.length);
  const before = text.slice(0, position);
  const newlines = before.split('\n').length - 1;
  const column = position - (before.lastIndexOf('\n') + 1) + 1;
  return { message, line: newlines + 1, column };
}
