/**
 * A row that is not valid JSON names one line: the row's own (JSONL: the column within it; a JSON array: the
 * file line of the error), never the parser's "(line 1 column 97)" beside the file's line.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readDataset } from '../../src/eval/dataset.ts';
import type { DatasetItem } from '../../src/eval/types.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'symphonizer-row-lines-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function bad(name: string, text: string): Promise<Extract<DatasetItem, { ok: false }>[]> {
  const path = join(dir, name);
  await writeFile(path, text);
  const out: Extract<DatasetItem, { ok: false }>[] = [];
  for await (const item of readDataset(path, { schema: z.object({ question: z.string() }) }))
    if (!item.ok) out.push(item);
  return out;
}

describe('row errors of invalid JSON', () => {
  it('JSONL: the column within the row, no second line number', async () => {
    const good = '{"question": "fine"}\n';
    // Line 13; the parser stops at the 24th character (the stray x).
    const errors = await bad('rows.jsonl', good.repeat(12) + '{"question": "broken", x}\n' + good);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.line).toBe(13);
    expect(errors[0]?.error).toMatch(/^Invalid JSON at column 24: /);
    expect(errors[0]?.error).not.toMatch(/line \d|position/);
  });

  it('a JSON array: the file line of the error itself', async () => {
    const text = '[\n{"question": "a"},\n{\n  "question": "b",\n  "oops"\n},\n{"question": "c"}\n]\n';
    const errors = await bad('rows.json', text);
    expect(errors).toHaveLength(1);
    // The element starts on line 3; the error is on line 6 (the "}" where ":" was expected).
    expect(errors[0]?.error).toMatch(/^element 1 \(line 6\): invalid JSON: /);
    expect(errors[0]?.error).not.toMatch(/column|position|\(line \d+ column/);
  });
});
