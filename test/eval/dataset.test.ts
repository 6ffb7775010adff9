import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DatasetError, datasetFromArray, isUnreadRowId, readDataset } from '../../src/eval/dataset.ts';
import type { DatasetItem } from '../../src/eval/types.ts';
import { InvalidOptionError, SymphonizerError } from '../../src/index.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'symphonizer-dataset-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function collect<I>(items: AsyncIterable<DatasetItem<I>>): Promise<DatasetItem<I>[]> {
  const out: DatasetItem<I>[] = [];
  for await (const item of items) out.push(item);
  return out;
}

function errors<I>(items: readonly DatasetItem<I>[]) {
  return items.flatMap((i) => (i.ok ? [] : [i]));
}

function rows<I>(items: readonly DatasetItem<I>[]) {
  return items.flatMap((i) => (i.ok ? [i.row] : []));
}

const Question = z.object({ question: z.string() });

describe('readDataset: JSONL', () => {
  it('reads rows with ids, expected values and inputs; bad rows become errors with their line', async () => {
    const path = await file(
      'qa.jsonl',
      [
        '\uFEFF{"id":"q1","question":"Capital of France?","expected":"Paris"}',
        '{"question":"No id: the line is the id"}',
        '',
        '{"id":"q3","question":"Bad JSON",',
        '{"id":"q4","question":42}',
        '   ',
        '{"id":"q1","question":"Duplicate"}',
        '{"id":7,"question":"Numeric id","expected":{"a":[1,2]}}',
        '{"id":{"x":1},"question":"Object id"}',
        '{"id":"q9","question":"CRLF line"}\r',
      ].join('\n'),
    );
    const items = await collect(readDataset(path, { schema: Question }));
    expect(rows(items)).toEqual([
      { id: 'q1', line: 1, input: { question: 'Capital of France?' }, expected: 'Paris' },
      { id: '2', line: 2, input: { question: 'No id: the line is the id' } },
      { id: '7', line: 8, input: { question: 'Numeric id' }, expected: { a: [1, 2] } },
      { id: 'q9', line: 10, input: { question: 'CRLF line' } },
    ]);
    const bad = errors(items);
    expect(bad.map((e) => [e.line, e.id])).toEqual([
      [4, '!line:4'],
      [5, 'q4'],
      [7, '!line:7'],
      [9, '!line:9'],
    ]);
    expect(bad[0]?.error).toMatch(/^Invalid JSON/);
    expect(bad[0]?.raw).toBe('{"id":"q3","question":"Bad JSON",');
    expect(bad[1]?.error).toMatch(/question/);
    expect(bad[1]?.issues).toEqual([
      { path: 'question', message: expect.any(String) as string, code: 'invalid_type' },
    ]);
    expect(bad[2]?.error).toBe('duplicate id "q1" (first at line 1)');
    expect(bad[3]?.error).toMatch(/"id" field must be a string or a number/);
  });

  it('takes the input from inputField, applies schema transforms, and reads non-object rows as the input', async () => {
    const path = await file(
      'input-field.jsonl',
      '{"key":"a","in":{"n":"5"},"gold":10}\n{"key":"b","other":1}\n"plain"\n',
    );
    const schema = z.object({ n: z.coerce.number() });
    const items = await collect(
      readDataset(path, { schema, idField: 'key', expectedField: 'gold', inputField: 'in' }),
    );
    expect(items[0]).toEqual({ ok: true, row: { id: 'a', line: 1, input: { n: 5 }, expected: 10 } });
    expect(items[1]).toMatchObject({ ok: false, id: 'b', line: 2 });
    expect(items[2]).toMatchObject({
      ok: false,
      id: '3',
      line: 3,
      error: expect.stringMatching(/not an object/) as string,
    });

    const strings = await collect(
      readDataset(await file('strings.jsonl', '"a"\n"b"\n'), { schema: z.string() }),
    );
    expect(rows(strings)).toEqual([
      { id: '1', line: 1, input: 'a' },
      { id: '2', line: 2, input: 'b' },
    ]);
  });

  it('reports a schema that throws as a row error', async () => {
    const path = await file('throws.jsonl', '{"question":"x"}\n');
    const schema = Question.transform(() => {
      throw new Error('boom');
    });
    const [item] = await collect(readDataset(path, { schema }));
    expect(item).toMatchObject({ ok: false, line: 1, error: expect.stringMatching(/boom/) as string });
  });

  it('can be iterated again, and closes the file when the loop breaks', async () => {
    const path = await file('twice.jsonl', '{"question":"a"}\n{"question":"b"}\n{"question":"c"}\n');
    const dataset = readDataset(path, { schema: Question });
    for await (const item of dataset) {
      expect(item.ok).toBe(true);
      break;
    }
    expect(await collect(dataset)).toHaveLength(3);
    expect(await collect(dataset)).toHaveLength(3);
  });
});

describe('readDataset: CSV', () => {
  it('parses quoted fields with commas, escaped quotes and newlines; line numbers follow physical lines', async () => {
    const path = await file(
      'qa.csv',
      [
        'id,question,expected',
        'q1,"Capital of France, please?",Paris',
        'q2,"He said ""hi""\nthen left\r\nquietly",ok',
        'q3,plain,',
        '',
        ',no id here,x',
        'q5,"unterminated after""quote" junk,y',
        'q6,too,many,fields',
        'q7,"last, without newline",z',
      ].join('\r\n'),
    );
    const items = await collect(readDataset(path, { schema: Question }));
    expect(rows(items)).toEqual([
      { id: 'q1', line: 2, input: { question: 'Capital of France, please?' }, expected: 'Paris' },
      { id: 'q2', line: 3, input: { question: 'He said "hi"\nthen left\r\nquietly' }, expected: 'ok' },
      { id: 'q3', line: 6, input: { question: 'plain' } },
      { id: '8', line: 8, input: { question: 'no id here' }, expected: 'x' },
      { id: 'q7', line: 11, input: { question: 'last, without newline' }, expected: 'z' },
    ]);
    const bad = errors(items);
    expect(bad.map((e) => [e.line, e.id])).toEqual([
      [9, '!line:9'],
      [10, '!line:10'],
    ]);
    expect(bad[0]?.error).toMatch(/after a closing quote/);
    expect(bad[0]?.raw).toBe('q5,"unterminated after""quote" junk,y');
    expect(bad[1]?.error).toBe('Expected 3 fields (as the header), got 4.');
  });

  it('keeps values as strings unless the schema coerces them', async () => {
    const path = await file('numbers.csv', 'a,b,flag\n1,2.5,true\nx,3,false\n');
    const strict = await collect(readDataset(path, { schema: z.object({ a: z.number() }).loose() }));
    expect(errors(strict)).toHaveLength(2);
    const coerced = await collect(
      readDataset(path, {
        schema: z.object({ a: z.coerce.number(), b: z.coerce.number(), flag: z.string() }),
      }),
    );
    expect(rows(coerced)).toEqual([{ id: '2', line: 2, input: { a: 1, b: 2.5, flag: 'true' } }]);
    expect(errors(coerced)[0]).toMatchObject({ line: 3, issues: [{ path: 'a' }] });
  });

  it('strips a BOM, reads a quoted header, and takes a lone CR as a line end', async () => {
    const path = await file('bom.csv', '\uFEFF"id","question"\r\nq1,x\rq2,"y\r\nz"\r\n\r\nq3,w');
    expect(rows(await collect(readDataset(path, { schema: Question })))).toEqual([
      { id: 'q1', line: 2, input: { question: 'x' } },
      { id: 'q2', line: 3, input: { question: 'y\r\nz' } },
      { id: 'q3', line: 6, input: { question: 'w' } },
    ]);
  });

  it('reports an unterminated quote at the end of the file as a row error, and reads the lines after it', async () => {
    const path = await file('open-quote.csv', 'id,question\nq1,ok\nq2,"never closed\nq4,read\n');
    const items = await collect(readDataset(path, { schema: Question }));
    expect(items).toHaveLength(3);
    expect(items[0]).toMatchObject({ ok: true });
    expect(items[1]).toMatchObject({
      ok: false,
      id: '!line:3',
      line: 3,
      raw: 'q2,"never closed',
      error: expect.stringMatching(/not closed before the end of the file.*resumes at line 4/) as string,
    });
    expect(items[2]).toEqual({ ok: true, row: { id: 'q4', line: 4, input: { question: 'read' } } });
  });

  it('a bad row at line 3 does not take the id of a real row "3" (CSV, JSONL, JSON)', async () => {
    const csv = await file('collide.csv', 'id,question\n1,one\n2,"bad"x\n3,three\n');
    const jsonl = await file(
      'collide.jsonl',
      '{"id":1,"question":"one"}\n{}\n{"id":2,\n{"id":3,"question":"three"}\n',
    );
    const json = await file(
      'collide.json',
      '[{"id":1,"question":"one"},{"id":2,"question":},{"id":"2","question":"two"}]',
    );
    const read = (path: string) => collect(readDataset(path, { schema: Question }));
    const [fromCsv, fromJsonl, fromJson] = [await read(csv), await read(jsonl), await read(json)];
    expect(errors(fromCsv).map((e) => [e.id, e.line])).toEqual([['!line:3', 3]]);
    expect(rows(fromCsv)).toEqual([
      { id: '1', line: 2, input: { question: 'one' } },
      { id: '3', line: 4, input: { question: 'three' } },
    ]);
    // `{}` at line 2 has no id (its id is its line, "2") and fails the schema; line 3 is bad JSON.
    expect(errors(fromJsonl).map((e) => [e.id, e.line])).toEqual([
      ['2', 2],
      ['!line:3', 3],
    ]);
    expect(rows(fromJsonl).map((r) => r.id)).toEqual(['1', '3']);
    expect(errors(fromJson).map((e) => [e.id, e.line])).toEqual([['!line:2', 2]]);
    expect(rows(fromJson).map((r) => r.id)).toEqual(['1', '2']);
  });

  it('refuses a real id with the reserved "!line:" prefix, and gives duplicates reserved ids', async () => {
    const path = await file(
      'reserved.csv',
      'id,question\n!line:3,sneaky\na,first\na,again\n!line:4,also sneaky\n!lined,fine\n',
    );
    const items = await collect(readDataset(path, { schema: Question }));
    expect(items.map((i) => (i.ok ? i.row.id : i.id))).toEqual([
      '!line:2',
      'a',
      '!line:4',
      '!line:5',
      '!lined',
    ]);
    expect(new Set(items.map((i) => (i.ok ? i.row.id : i.id))).size).toBe(items.length);
    expect(errors(items)[0]?.error).toBe(
      'The id "!line:3" starts with "!line:", which is reserved for rows that could not be read.',
    );
    expect(errors(items)[1]?.error).toBe('duplicate id "a" (first at line 3)');
    expect(errors(items).every((e) => isUnreadRowId(e.id))).toBe(true);
  });

  it.each([
    ['\n', 'LF'],
    ['\r\n', 'CRLF'],
  ])(
    'an unclosed quote at line 3 of a 3,000-line file is one row error; every later row is read (%j)',
    async (eol, name) => {
      const n = 3000;
      const lines = ['id,text', 'r1,first', 'r2,"opens and never closes'];
      // ~100 bytes a line: the runaway field and the text read again straddle the 64 KiB read chunks.
      const text = (i: number): string => `text ${i} ${'x'.repeat(80)}`;
      for (let i = 3; i < n; i++) lines.push(`r${i},${text(i)}`);
      const path = await file(`unclosed-${name}.csv`, `${lines.join(eol)}${eol}`);
      const items = await collect(readDataset(path, { schema: z.object({ text: z.string() }) }));
      expect(errors(items)).toEqual([
        {
          ok: false,
          id: '!line:3',
          line: 3,
          raw: 'r2,"opens and never closes',
          error:
            'A quoted field (opened at line 3) is not closed within 1000 lines (maxFieldLines). Reading resumes at line 4.',
        },
      ]);
      const read = rows(items);
      expect(read).toHaveLength(n - 2);
      expect(read[0]).toEqual({ id: 'r1', line: 2, input: { text: 'first' } });
      read.slice(1).forEach((row, k) => {
        const i = k + 3;
        expect(row).toEqual({ id: `r${i}`, line: i + 1, input: { text: text(i) } });
      });
    },
  );

  it('a stray quote closed by a quote lines later is one row error; the lines in between are read', async () => {
    const path = await file(
      'stray.csv',
      ['id,question', 'q1,ok', 'q2,"stray', 'q3,plain', 'q4,"quoted, with a comma"', 'q5,last'].join('\n'),
    );
    const items = await collect(readDataset(path, { schema: Question }));
    expect(errors(items)).toMatchObject([
      {
        id: '!line:3',
        line: 3,
        raw: 'q2,"stray',
        error: expect.stringMatching(
          /opened at line 3\) is not closed: the quote at line 5 is followed by "q"/,
        ) as string,
      },
    ]);
    expect(rows(items)).toEqual([
      { id: 'q1', line: 2, input: { question: 'ok' } },
      { id: 'q3', line: 4, input: { question: 'plain' } },
      { id: 'q4', line: 5, input: { question: 'quoted, with a comma' } },
      { id: 'q5', line: 6, input: { question: 'last' } },
    ]);
  });

  it('bounds a quoted field by maxFieldLines and maxFieldBytes', async () => {
    const path = await file(
      'bounded.csv',
      ['id,question', 'q1,"two\nlines"', 'q2,"three\nlines\nlong"', `q3,"${'é'.repeat(40)}`, 'q4,after'].join(
        '\n',
      ),
    );
    const items = await collect(readDataset(path, { schema: Question, maxFieldLines: 2, maxFieldBytes: 50 }));
    expect(items.map((i) => (i.ok ? [i.row.id, i.row.line] : [i.id, i.line, i.error]))).toEqual([
      ['q1', 2],
      [
        '!line:4',
        4,
        'A quoted field (opened at line 4) is not closed within 2 lines (maxFieldLines). Reading resumes at line 5.',
      ],
      // The lines of the refused field are read again as records of their own (here: too few fields).
      ['!line:5', 5, 'Expected 2 fields (as the header), got 1.'],
      // `long"` then a line end: an unquoted field with a quote in it, one field.
      ['!line:6', 6, 'Expected 2 fields (as the header), got 1.'],
      // 40 × é is 80 bytes: past 50 on its own line, whose rest is skipped.
      [
        '!line:7',
        7,
        'A quoted field (opened at line 7) is not closed within 50 bytes (maxFieldBytes). Reading resumes at line 8.',
      ],
      ['q4', 8],
    ]);
    expect(() => readDataset(path, { schema: Question, maxFieldLines: 0 })).toThrow(InvalidOptionError);
    expect(() => readDataset(path, { schema: Question, maxFieldBytes: 1.5 })).toThrow(InvalidOptionError);
  });

  it('throws DatasetError for an unusable header; an empty file has no rows', async () => {
    const dup = await file('dup.csv', 'a,a\n1,2\n');
    await expect(collect(readDataset(dup, { schema: z.unknown() }))).rejects.toThrow(
      /two columns are named "a"/,
    );
    const empty = await file('empty.csv', '');
    expect(await collect(readDataset(empty, { schema: z.unknown() }))).toEqual([]);
  });

  it('parses records that straddle read chunks (a file larger than the 64 KiB chunk size)', async () => {
    const n = 3000;
    const value = (i: number): string => `row ${i}: "quoted", comma\r\nand a line ${'x'.repeat(i % 50)}`;
    const lines = ['id,text,expected'];
    for (let i = 0; i < n; i++) lines.push(`r${i},"${value(i).replace(/"/g, '""')}",${i}`);
    const path = await file('big.csv', `${lines.join('\n')}\n`);
    const items = await collect(readDataset(path, { schema: z.object({ text: z.string() }) }));
    expect(errors(items)).toEqual([]);
    expect(items).toHaveLength(n);
    items.forEach((item, i) => {
      expect(item.ok && item.row).toEqual({
        id: `r${i}`,
        line: 2 + 2 * i,
        input: { text: value(i) },
        expected: String(i),
      });
    });
  });
});

describe('readDataset: JSON arrays', () => {
  it('streams elements; a bad element is a row error with its index and physical line', async () => {
    const path = await file(
      'qa.json',
      `[
  {"id": "a", "question": "brackets ] and } and \\" in a string", "expected": [1, {"x": "]"}]},
  {"id": "b", "question": },
  {"id": "c", "question": 3},
  {"question": "no id"}
]
`,
    );
    const items = await collect(readDataset(path, { schema: Question }));
    expect(rows(items)).toEqual([
      {
        id: 'a',
        line: 1,
        input: { question: 'brackets ] and } and " in a string' },
        expected: [1, { x: ']' }],
      },
      { id: '4', line: 4, input: { question: 'no id' } },
    ]);
    const bad = errors(items);
    expect(bad[0]).toMatchObject({ id: '!line:2', line: 2, raw: '{"id": "b", "question": }' });
    expect(bad[0]?.error).toMatch(/^element 1 \(line 3\): invalid JSON/);
    expect(bad[1]).toMatchObject({ id: 'c', line: 3, issues: [{ path: 'question' }] });
  });

  it('handles empty arrays, empty elements, truncation and large files', async () => {
    expect(await collect(readDataset(await file('empty.json', ' [ ] '), { schema: z.unknown() }))).toEqual(
      [],
    );
    const holes = await collect(readDataset(await file('holes.json', '[1,,2,]'), { schema: z.number() }));
    expect(holes.map((i) => i.ok)).toEqual([true, false, true, false]);
    const cut = await collect(readDataset(await file('cut.json', '[1, 2, {"a":'), { schema: z.unknown() }));
    expect(cut.map((i) => i.ok)).toEqual([true, true, false]);
    expect(cut[2]).toMatchObject({
      error: expect.stringMatching(/ends before the array is closed/) as string,
    });

    const big = Array.from({ length: 2000 }, (_, i) => ({
      id: `r${i}`,
      question: `q${i} ${'[{"'.repeat(20)}`,
    }));
    const items = await collect(
      readDataset(await file('big.json', JSON.stringify(big)), { schema: Question }),
    );
    expect(rows(items).map((r) => r.input.question)).toEqual(big.map((b) => b.question));
  });

  it('throws DatasetError when the file is not an array or has text after it', async () => {
    const object = await file('object.json', '{"rows": []}');
    await expect(collect(readDataset(object, { schema: z.unknown() }))).rejects.toThrow(/not a JSON array/);
    const trailing = await file('trailing.json', '[1] 2');
    await expect(collect(readDataset(trailing, { schema: z.unknown() }))).rejects.toThrow(DatasetError);
  });
});

describe('readDataset: files and options', () => {
  it('throws DatasetError (dataset_error) for a missing file, a directory, or an unknown format', async () => {
    const missing = collect(readDataset(join(dir, 'nope.jsonl'), { schema: z.unknown() }));
    await expect(missing).rejects.toThrow(DatasetError);
    await expect(missing).rejects.toMatchObject({
      code: 'dataset_error',
      message: expect.stringMatching(/does not exist/) as string,
    });
    const sub = join(dir, 'folder.jsonl');
    await mkdir(sub);
    await expect(collect(readDataset(sub, { schema: z.unknown() }))).rejects.toThrow(/not a file/);

    let thrown: unknown;
    try {
      readDataset(join(dir, 'data.txt'), { schema: z.unknown() });
    } catch (error) {
      thrown = error;
    }
    expect(SymphonizerError.isInstance(thrown) && thrown.code).toBe('dataset_error');
    expect(() => readDataset('x.jsonl', { schema: z.unknown(), format: 'xml' as 'json' })).toThrow(
      DatasetError,
    );
    expect(() => readDataset('x.jsonl', { schema: undefined as unknown as z.ZodType })).toThrow(
      InvalidOptionError,
    );
    expect(() => readDataset('x.jsonl', { schema: z.unknown(), idField: '' })).toThrow(InvalidOptionError);
  });

  it('takes the format from the option over the extension', async () => {
    const path = await file('rows.txt', '{"question":"a"}\n');
    expect(rows(await collect(readDataset(path, { schema: Question, format: 'jsonl' })))).toHaveLength(1);
  });
});

describe('datasetFromArray', () => {
  it('validates in-memory rows like a file', async () => {
    const items = await collect(
      datasetFromArray(
        [{ id: 'a', question: 'x', expected: 1 }, { question: 2 }, { id: 'a', question: 'y' }],
        Question,
      ),
    );
    expect(items[0]).toEqual({ ok: true, row: { id: 'a', line: 1, input: { question: 'x' }, expected: 1 } });
    expect(items[1]).toMatchObject({ ok: false, id: '2', line: 2, raw: '{"question":2}' });
    expect(items[2]).toMatchObject({
      ok: false,
      id: '!line:3',
      error: expect.stringMatching(/duplicate id/) as string,
    });
  });
});

describe('readDataset: a large JSONL file', () => {
  it('streams 200k rows with bounded memory', { timeout: 120_000 }, async () => {
    const path = join(dir, 'large.jsonl');
    const out = createWriteStream(path);
    const padding = 'lorem ipsum dolor sit amet '.repeat(12); // ~330 bytes a row, ~70 MB in all
    for (let i = 0; i < 200_000; i++) {
      const ok = out.write(
        `${JSON.stringify({ id: `row-${i}`, text: `${i} ${padding}`, expected: i % 7 })}\n`,
      );
      if (!ok) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');

    // A real collector when we can get one (flags set at run time expose `gc` to new contexts).
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('typeof gc === "function" ? gc : undefined') as (() => void) | undefined;
    gc?.();
    const before = process.memoryUsage().heapUsed;
    let peak = 0;
    let count = 0;
    let valid = 0;
    for await (const item of readDataset(path, { schema: z.object({ text: z.string() }) })) {
      count++;
      if (item.ok) valid++;
      if (count % 20_000 === 0) {
        gc?.();
        peak = Math.max(peak, process.memoryUsage().heapUsed - before);
      }
    }
    expect(count).toBe(200_000);
    expect(valid).toBe(200_000);
    // The file is ~70 MB of text (far more as parsed objects); streaming keeps only the id set.
    expect(peak).toBeLessThan((gc === undefined ? 150 : 50) * 1024 * 1024);
  });
});
