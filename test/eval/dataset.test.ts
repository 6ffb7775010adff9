import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DatasetError, datasetFromArray, readDataset } from '../../src/eval/dataset.ts';
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
      [4, '4'],
      [5, 'q4'],
      [7, 'q1#7'],
      [9, '9'],
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
      [9, '9'],
      [10, '10'],
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

  it('reports an unterminated quote at the end of the file as a row error', async () => {
    const path = await file('open-quote.csv', 'id,question\nq1,ok\nq2,"never closed\nstill open\n');
    const items = await collect(readDataset(path, { schema: Question }));
    expect(items[0]).toMatchObject({ ok: true });
    expect(items[1]).toMatchObject({
      ok: false,
      line: 3,
      error: expect.stringMatching(/not closed/) as string,
    });
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
    expect(bad[0]).toMatchObject({ id: '2', line: 2, raw: '{"id": "b", "question": }' });
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
      id: 'a#3',
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
