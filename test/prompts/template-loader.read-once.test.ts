import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';

// Spy on the loader's file reads while keeping the real file system.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, readFileSync: vi.fn(actual.readFileSync) };
});

const fs = await import('node:fs');
const { TemplateLoader } = await import('../../src/prompts/index.ts');

describe('TemplateLoader file reads', () => {
  it('reads each template file once and each partial once, however often it is loaded', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'symphonizer-prompts-'));
    try {
      fs.mkdirSync(path.join(dir, 'partials'));
      fs.writeFileSync(path.join(dir, 'a.hbs'), '{{> p}} {{x}}');
      fs.writeFileSync(path.join(dir, 'b.hbs'), 'B {{x}}');
      fs.writeFileSync(path.join(dir, 'partials', 'p.hbs'), 'P');
      const readFileSync = vi.mocked(fs.readFileSync);
      readFileSync.mockClear();
      const loader = new TemplateLoader({ dir });
      expect(readFileSync).not.toHaveBeenCalled();
      for (let i = 0; i < 5; i++) {
        expect(loader.load('a').render({ x: i }).user).toBe(`P ${i}`);
        loader.load('a.hbs');
        loader.load('b');
      }
      const reads = readFileSync.mock.calls.map(([file]) => path.relative(dir, String(file)));
      expect(reads.sort()).toEqual(['a.hbs', 'b.hbs', path.join('partials', 'p.hbs')]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('layered: probes each directory once per name and search path, then reads nothing', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'symphonizer-prompts-'));
    try {
      const project = path.join(root, 'project');
      fs.mkdirSync(path.join(project, 'prompts', 'partials'), { recursive: true });
      fs.writeFileSync(path.join(project, 'prompts', 'a.hbs'), '{{> p}} {{x}}');
      fs.writeFileSync(path.join(project, 'prompts', 'partials', 'p.hbs'), 'P');
      const readFileSync = vi.mocked(fs.readFileSync);
      const loader = new TemplateLoader({ projectDir: path.join(root, 'option'), env: {}, cwd: project });
      loader.load('a');
      loader.load('agents/judge');
      readFileSync.mockClear();
      for (let i = 0; i < 5; i++) {
        expect(loader.load('a').render({ x: i }).user).toBe(`P ${i}`);
        loader.load('agents/judge');
      }
      expect(readFileSync).not.toHaveBeenCalled();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
