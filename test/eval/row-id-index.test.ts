import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RowIdIndex, RowIds, readDataset, rowIdsInMemory } from '../../src/eval/dataset.ts';
import type { DatasetItem } from '../../src/eval/types.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'symphonizer-ids-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('RowIdIndex (the compact set of seen row ids)', () => {
  it('returns undefined for a new id and the first line for a repeated one, across growth', () => {
    const index = new RowIdIndex();
    const n = 50_000; // past several rehashes and arena doublings
    for (let i = 0; i < n; i++) expect(index.add(`r${i}`, i + 1)).toBeUndefined();
    expect(index.size).toBe(n);
    expect(index.add('r0', n + 1)).toBe(1);
    expect(index.add('r12345', n + 2)).toBe(12_346);
    expect(index.add(`r${n - 1}`, n + 3)).toBe(n);
    expect(index.size).toBe(n);
  });

  it('tells apart ids that differ only in length, case, prefix or multi-byte characters', () => {
    const index = new RowIdIndex();
    const ids = [
      '',
      'a',
      'aa',
      'A',
      'ab',
      'ba',
      'é',
      'e\u0301',
      '🌊',
      '\uD800',
      '\uDBFF',
      'x'.repeat(70_000),
    ];
    ids.forEach((id, i) => {
      expect(index.add(id, i + 1)).toBeUndefined();
    });
    ids.forEach((id, i) => {
      expect(index.add(id, 100 + i)).toBe(i + 1);
    });
    expect(index.size).toBe(ids.length);
  });
});

describe('readDataset: duplicates are still refused with the compact index', () => {
  it('refuses a duplicate of an early row many rows later, keeping the first row valid', async () => {
    const path = join(dir, 'many.jsonl');
    const rows = 20_000;
    const lines: string[] = [];
    for (let i = 1; i <= rows; i++) lines.push(JSON.stringify({ id: `r${i}`, text: 't' }));
    lines.push(JSON.stringify({ id: 'r7', text: 'again' }), JSON.stringify({ id: 7, text: 'number id' }));
    await writeFile(path, `${lines.join('\n')}\n`);
    const items: DatasetItem<{ text: string }>[] = [];
    for await (const item of readDataset(path, { schema: z.object({ text: z.string() }) })) items.push(item);
    const bad = items.filter((i) => !i.ok);
    expect(items).toHaveLength(rows + 2);
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ ok: false, line: rows + 1, id: `!line:${rows + 1}` });
    expect(bad[0]?.ok === false && bad[0].error).toBe('duplicate id "r7" (first at line 7)');
    expect(items.at(-1)).toMatchObject({ ok: true, row: { id: '7' } });
  });
});

describe('RowIds (bounded memory: past rowIdsInMemory ids, they move to a temporary file)', () => {
  it('finds repeats before, across and after the move, ill-formed and multi-byte ids included', () => {
    const ids = new RowIds(100);
    const special = ['é', 'e\u0301', '🌊', '\uD800', 'x'.repeat(5_000)];
    special.forEach((id, i) => {
      expect(ids.add(id, i + 1)).toBeUndefined();
    });
    for (let i = 0; i < 300; i++) expect(ids.add(`r${i}`, 1_000 + i)).toBeUndefined();
    expect(ids.spilled).toBe(true);
    special.forEach((id, i) => {
      expect(ids.add(id, 5_000 + i)).toBe(i + 1);
    });
    expect(ids.add('r0', 6_000)).toBe(1_000);
    expect(ids.add('r299', 6_001)).toBe(1_299);
    expect(ids.add('r300', 6_002)).toBeUndefined();
    expect(ids.add('r300', 6_003)).toBe(6_002);
    ids.close();
    expect(ids.add('r0', 1)).toBeUndefined(); // closed: forgotten, starts afresh
    ids.close();
  });

  it('readDataset refuses a duplicate of an early row after the ids moved to the file', async () => {
    const path = join(dir, 'spill.jsonl');
    const rows = rowIdsInMemory + 5_000;
    const lines: string[] = [];
    for (let i = 1; i <= rows; i++) lines.push(`{"id":"r${i}","text":"t"}`);
    lines.push('{"id":"r3","text":"again"}', `{"id":"r${rows}","text":"again"}`);
    await writeFile(path, `${lines.join('\n')}\n`);
    const bad: DatasetItem<{ text: string }>[] = [];
    let count = 0;
    for await (const item of readDataset(path, { schema: z.object({ text: z.string() }) })) {
      count++;
      if (!item.ok) bad.push(item);
    }
    expect(count).toBe(rows + 2);
    expect(bad.map((b) => (b.ok ? '' : b.error))).toEqual([
      'duplicate id "r3" (first at line 3)',
      `duplicate id "r${rows}" (first at line ${rows})`,
    ]);
  });
});
