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
});
