import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInput } from '../../src/cli/input.ts';
import { CliError } from '../../src/cli/errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'symphonizer-input-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readInput @file (read as bytes, decoded once)', () => {
  it('skips a UTF-8 BOM and keeps multi-byte text intact', async () => {
    const value = { topic: 'marées é 🌊', n: [1, 2] };
    await writeFile(
      join(dir, 'bom.json'),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(value))]),
    );
    await writeFile(join(dir, 'plain.json'), JSON.stringify(value));
    expect(await readInput('@bom.json', dir)).toEqual(value);
    expect(await readInput('@plain.json', dir)).toEqual(value);
  });

  it('still locates a syntax error by line and column, after a BOM too', async () => {
    await writeFile(join(dir, 'bad.json'), '\uFEFF{\n  "a": tru\n}');
    const error = await readInput('@bad.json', dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).code).toBe('invalid_json');
    expect((error as CliError).message).toMatch(/line 2, column 11/);
  });

  it('reports a missing file as input_file_not_found', async () => {
    const error = await readInput('@nope.json', dir).catch((e: unknown) => e);
    expect((error as CliError).code).toBe('input_file_not_found');
    expect((error as CliError).message).toMatch(/ENOENT/);
  });

  it('reads an empty object file and a large array file', async () => {
    await writeFile(join(dir, 'empty.json'), '{}');
    expect(await readInput('@empty.json', dir)).toEqual({});
    const big = { topic: 't', items: Array.from({ length: 50_000 }, (_, i) => ({ i, s: `item ${i}` })) };
    await writeFile(join(dir, 'big.json'), JSON.stringify(big));
    expect(await readInput('@big.json', dir)).toEqual(big);
  });

  it('reads a file that reports no size (a named pipe) as it comes', async () => {
    const fifo = join(dir, 'pipe.json');
    const made = spawnSync('mkfifo', [fifo]);
    if (made.status !== 0) return expect.unreachable(`mkfifo failed: ${made.stderr.toString()}`);
    const value = { topic: 'pipes ⛲', n: 3 };
    const [read] = await Promise.all([readInput('@pipe.json', dir), writeFile(fifo, JSON.stringify(value))]);
    expect(read).toEqual(value);
  });

  it('gives the same value as JSON.parse for a file of several MB, non-ASCII and __proto__ keys included', async () => {
    const items = Array.from({ length: 60_000 }, (_, i) => ({
      i,
      text: `marées 🌊 潮汐 ${i}`,
      ok: i % 2 === 0,
    }));
    const text = `{"__proto__":{"x":1},"items":${JSON.stringify(items)}}`;
    await writeFile(join(dir, 'several.json'), text);
    const read = (await readInput('@several.json', dir)) as Record<string, unknown>;
    expect(read).toEqual(JSON.parse(text));
    expect(Object.keys(read)).toEqual(['__proto__', 'items']);
    expect(Object.getPrototypeOf(read)).toBe(Object.prototype);
  });

  describe('a large file with non-ASCII text (read as ASCII JSON with \\u escapes)', () => {
    const filler = (n: number): string =>
      JSON.stringify(Array.from({ length: n }, (_, i) => ({ i, t: `marées é 🌊 潮汐 ${i}` })));

    it('gives the value JSON.parse gives, with escapes, quotes, backslashes and a BOM', async () => {
      const tricky = {
        ['__proto__']: { clé: 'valeur' },
        a: 'quote " then é, backslash \\ then 🌊, \\u00e9 literal, \u00e9 escaped',
        'ключ 🔑': ['\ud83c\udf0a', '\t潮\n', ''],
        items: JSON.parse(filler(40_000)) as unknown,
      };
      const text = JSON.stringify(tricky);
      await writeFile(
        join(dir, 'intl.json'),
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]),
      );
      const read = (await readInput('@intl.json', dir)) as Record<string, unknown>;
      expect(read).toEqual(JSON.parse(text));
      expect(Object.keys(read)).toEqual(['__proto__', 'a', 'ключ 🔑', 'items']);
      expect(Object.getPrototypeOf(read)).toBe(Object.prototype);
    });

    it('reads bytes that are not UTF-8 as the decoder does (U+FFFD)', async () => {
      const head = Buffer.from(`{"bad":"x`);
      const tail = Buffer.from(`y","items":${filler(40_000)}}`);
      await writeFile(join(dir, 'latin1.json'), Buffer.concat([head, Buffer.from([0xe9]), tail]));
      const read = (await readInput('@latin1.json', dir)) as { bad: string };
      expect(read.bad).toBe('x\uFFFDy');
    });

    it('locates an error in the file as it is, a non-ASCII character outside a string included', async () => {
      await writeFile(join(dir, 'outside.json'), `{"items":${filler(40_000)},\n "é": 1, é}`);
      const error = await readInput('@outside.json', dir).catch((e: unknown) => e);
      expect((error as CliError).code).toBe('invalid_json');
      expect((error as CliError).message).toMatch(/line 2, column 10/);
      await writeFile(join(dir, 'late.json'), `{"items":${filler(40_000)},\n "é": tru}`);
      const late = await readInput('@late.json', dir).catch((e: unknown) => e);
      expect((late as CliError).message).toMatch(/line 2, column 10/);
    });
  });
});
