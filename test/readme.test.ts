/**
 * The README's TypeScript snippets compile against the real sources, and its error table names every error
 * class and code, so the documentation cannot drift from the API.
 *
 * Snippet convention: every fenced block whose info string starts with `ts` (or `typescript`) is a complete
 * program and must type-check with zero diagnostics. A block that is deliberately not a complete program
 * (a few lines out of a larger one) is marked with the word `fragment` after the language:
 *
 *     ```ts fragment
 *
 * and is skipped. Each block is its own ES module (`export {}` is appended), checked with the repo's
 * tsconfig compiler options (strict and all) in one Program, except `noUnusedLocals` / `noUnusedParameters`:
 * a snippet may bind a value only to show its type. `symphonizer` and its subpaths resolve to the sources
 * (`paths`), so a snippet checks the API as it is, not as a stale `dist/` was.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import * as root from '../src/index.ts';
import * as core from '../src/core/index.ts';
import * as providers from '../src/providers/index.ts';
import * as prompts from '../src/prompts/index.ts';
import * as chainLayer from '../src/chain/index.ts';
import * as evalLayer from '../src/eval/index.ts';
import * as agents from '../agents/index.ts';
import * as testing from '../src/testing.ts';
import * as distributed from '../src/distributed/index.ts';
import * as cliErrors from '../src/cli/errors.ts';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const readme = readFileSync(join(repo, 'README.md'), 'utf8');

/** Package specifiers a snippet may import, and the source entry each one stands for. */
const entries: Readonly<Record<string, string>> = {
  symphonizer: 'src/index.ts',
  'symphonizer/core': 'src/core/index.ts',
  'symphonizer/providers': 'src/providers/index.ts',
  'symphonizer/prompts': 'src/prompts/index.ts',
  'symphonizer/chain': 'src/chain/index.ts',
  'symphonizer/eval': 'src/eval/index.ts',
  'symphonizer/agents': 'agents/index.ts',
  'symphonizer/testing': 'src/testing.ts',
  'symphonizer/distributed': 'src/distributed/index.ts',
};

/** One fenced TypeScript block of a Markdown text. */
interface Snippet {
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** Words after the language in the info string, e.g. `['fragment']`. */
  readonly tags: readonly string[];
  readonly code: string;
}

/** Every ```ts / ```typescript block of `markdown`, with the line of its opening fence. */
function tsBlocks(markdown: string): Snippet[] {
  const lines = markdown.split('\n');
  const blocks: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(lines[i] ?? '');
    if (open === null) continue;
    const [, indent = '', fence = '```', lang = '', rest = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j] ?? '';
      if (line.trimStart().startsWith(fence) && line.trim().replaceAll(fence[0] ?? '`', '') === '') break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    if (lang === 'ts' || lang === 'typescript') {
      blocks.push({ line: i + 1, tags: rest.trim().split(/\s+/).filter(Boolean), code: body.join('\n') });
    }
    i = j; // a fence inside a block (```sh in a ```md block) is not a block of its own
  }
  return blocks;
}

/** The README line of a snippet's 0-based code line: the fence is at `snippet.line`. */
function readmeLine(snippet: Snippet, codeLine: number): number {
  return snippet.line + 1 + codeLine;
}

/** Diagnostics as readable lines, with README line numbers for snippet files. */
function format(
  diagnostics: readonly ts.Diagnostic[],
  snippetOf: (file: string) => Snippet | undefined,
): string {
  return diagnostics
    .map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n  ');
      if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${text}`;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      const snippet = snippetOf(d.file.fileName);
      const where =
        snippet === undefined
          ? `${relative(repo, d.file.fileName)}:${line + 1}:${character + 1}`
          : `README.md:${readmeLine(snippet, line)}:${character + 1}`;
      return `${where} TS${d.code}: ${text}`;
    })
    .join('\n');
}

/**
 * Type-checks `files` (virtual path → source) in one Program over the repo's compiler options; returns the
 * diagnostics of each virtual file (the sources themselves are `tsc --noEmit`'s job).
 */
function typeCheck(files: ReadonlyMap<string, string>): {
  readonly options: readonly ts.Diagnostic[];
  readonly byFile: ReadonlyMap<string, readonly ts.Diagnostic[]>;
} {
  const configPath = join(repo, 'tsconfig.json');
  const raw = ts.readConfigFile(configPath, (path) => ts.sys.readFile(path));
  if (raw.error !== undefined) throw new Error(format([raw.error], () => undefined));
  const config = raw.config as { compilerOptions?: Record<string, unknown> };
  config.compilerOptions = {
    ...config.compilerOptions,
    noEmit: true,
    noUnusedLocals: false,
    noUnusedParameters: false,
    paths: Object.fromEntries(Object.entries(entries).map(([specifier, path]) => [specifier, [`./${path}`]])),
  };
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, repo, undefined, configPath);
  const host = ts.createCompilerHost(parsed.options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.fileExists = (path) => files.has(path) || fileExists(path);
  host.readFile = (path) => files.get(path) ?? readFile(path);
  host.getSourceFile = (path, language, onError, create) => {
    const text = files.get(path);
    return text === undefined
      ? getSourceFile(path, language, onError, create)
      : ts.createSourceFile(path, text, language, true, ts.ScriptKind.TS);
  };
  const program = ts.createProgram({ rootNames: [...files.keys()], options: parsed.options, host });
  const byFile = new Map<string, readonly ts.Diagnostic[]>();
  for (const path of files.keys()) {
    const source = program.getSourceFile(path);
    if (source === undefined) throw new Error(`${path} is not part of the program`);
    byFile.set(path, [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]);
  }
  return { options: [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()], byFile };
}

describe('README TypeScript snippets', () => {
  const snippets = tsBlocks(readme);
  const checked = snippets.filter((s) => !s.tags.includes('fragment'));
  /** Virtual files sit in the repo root, so `./agents/index.ts` and `zod` resolve as from a user's module. */
  const pathOf = (s: Snippet): string => join(repo, `README.md.line-${s.line}.ts`);
  const selfCheckPath = join(repo, 'README.md.self-check.ts');
  const snippetOf = (file: string): Snippet | undefined => checked.find((s) => pathOf(s) === file);
  let result: ReturnType<typeof typeCheck>;

  beforeAll(() => {
    const files = new Map(checked.map((s) => [pathOf(s), `${s.code}\nexport {};\n`]));
    // A control snippet with a known type error: proves that the package paths resolve to the sources and
    // that diagnostics are really reported (an unresolved import would give TS2307, not TS2322).
    files.set(
      selfCheckPath,
      "import { DAGNote } from 'symphonizer/core';\nconst n: number = new DAGNote('x').name;\nexport { n };\n",
    );
    result = typeCheck(files);
  }, 60_000);

  it('finds the blocks, and every checked block is a whole program (not marked fragment)', () => {
    expect(checked.length).toBeGreaterThanOrEqual(8);
    for (const s of snippets)
      expect(
        s.tags.every((tag) => tag === 'fragment'),
        `README.md:${s.line}`,
      ).toBe(true);
  });

  it('reports a type error in a snippet, with package imports resolved to the sources', () => {
    expect(format(result.options, snippetOf)).toBe('');
    const control = result.byFile.get(selfCheckPath) ?? [];
    expect(control.map((d) => d.code)).toEqual([2322]);
  });

  it.each(checked.map((s) => [s.line, s] as const))(
    'the block at README.md:%i compiles',
    (_line, snippet) => {
      const diagnostics = result.byFile.get(pathOf(snippet)) ?? [];
      expect(
        format(diagnostics, snippetOf),
        `README.md:${snippet.line}: the \`\`\`ts block does not compile (mark it \`\`\`ts fragment if it is not a whole program)`,
      ).toBe('');
    },
  );
});

describe('tsBlocks()', () => {
  it('finds ts blocks with their line and tags, and skips other languages and nested fences', () => {
    const md = [
      '# t',
      '```ts',
      'const a = 1;',
      '```',
      '```sh',
      'npm test',
      '```',
      '````md',
      '```ts',
      'not a block',
      '```',
      '````',
      '  ```typescript fragment',
      '  b();',
      '  ```',
    ].join('\n');
    expect(tsBlocks(md)).toEqual([
      { line: 2, tags: [], code: 'const a = 1;' },
      { line: 13, tags: ['fragment'], code: 'b();' },
    ]);
  });
});

describe('README error table', () => {
  /** The class names (in backticks) of the first column of the table under `## Errors`. */
  function tableClasses(): Set<string> {
    const section = errorsSection();
    const names = new Set<string>();
    for (const row of section.split('\n').filter((line) => line.startsWith('|'))) {
      const first = row.split('|')[1] ?? '';
      for (const [, name] of first.matchAll(/`([A-Z]\w*)`/g)) if (name !== undefined) names.add(name);
    }
    return names;
  }

  function errorsSection(): string {
    const start = readme.indexOf('\n## Errors\n');
    expect(start, 'README has a "## Errors" section').toBeGreaterThan(-1);
    const end = readme.indexOf('\n## ', start + 1);
    return readme.slice(start, end === -1 ? undefined : end);
  }

  /** Error classes among a module's exports: SymphonizerError and everything that extends it. */
  function errorClasses(module: Record<string, unknown>): string[] {
    return Object.entries(module)
      .filter(
        ([, value]) =>
          typeof value === 'function' &&
          (value === core.SymphonizerError || value.prototype instanceof core.SymphonizerError),
      )
      .map(([name]) => name);
  }

  it('lists every error class exported by the package and its layers (and the CLI)', () => {
    const barrels = { root, core, providers, prompts, chainLayer, evalLayer, agents, testing, cliErrors };
    const exported = new Set(
      Object.values(barrels).flatMap((m) => errorClasses(m as Record<string, unknown>)),
    );
    expect(exported.size).toBeGreaterThan(40);
    const listed = tableClasses();
    expect([...exported].filter((name) => !listed.has(name)).sort()).toEqual([]);
  });

  it('lists every error class declared in src/, exported from a barrel or not', () => {
    const declared = new Map<string, string>(); // class → the class it extends
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts')) {
          for (const [, name, base] of readFileSync(path, 'utf8').matchAll(
            /^export class (\w+) extends (\w+)/gm,
          )) {
            if (name !== undefined && base !== undefined) declared.set(name, base);
          }
        }
      }
    };
    walk(join(repo, 'src'));
    const isError = (name: string, seen = new Set<string>()): boolean => {
      if (name === 'SymphonizerError') return true;
      const base = declared.get(name);
      if (base === undefined || seen.has(name)) return false;
      seen.add(name);
      return isError(base, seen);
    };
    const errors = [...declared.keys()].filter((name) => isError(name));
    expect(errors).toContain('CliError');
    const listed = tableClasses();
    expect(errors.filter((name) => !listed.has(name)).sort()).toEqual([]);
  });

  it('names only classes that exist', () => {
    const barrels = [
      root,
      core,
      providers,
      prompts,
      chainLayer,
      evalLayer,
      agents,
      testing,
      distributed,
      cliErrors,
    ];
    const known = new Set(barrels.flatMap((m) => errorClasses(m as Record<string, unknown>)));
    known.add('HelperUsageError'); // package-internal (src/prompts/helpers.ts), listed for completeness
    expect([...tableClasses()].filter((name) => !known.has(name)).sort()).toEqual([]);
  });

  it('gives every error code of every layer', () => {
    const codes = (file: string, type: string): string[] => {
      const text = readFileSync(join(repo, file), 'utf8');
      const start = text.indexOf(`export type ${type} =`);
      expect(start, `${file} declares ${type}`).toBeGreaterThan(-1);
      const union = text.slice(start, text.indexOf(';', start));
      return [...union.matchAll(/'([a-z_]+)'/g)].map(([, code]) => code ?? '');
    };
    const all = [
      ['src/core/errors.ts', 'CoreErrorCode'],
      ['src/providers/errors.ts', 'ProviderErrorCode'],
      ['src/prompts/errors.ts', 'PromptErrorCode'],
      ['src/chain/errors.ts', 'ChainErrorCode'],
      ['src/eval/errors.ts', 'EvalErrorCode'],
      ['src/cli/errors.ts', 'CliErrorCode'],
      ['src/cli/errors.ts', 'CliRunErrorCode'],
      ['src/distributed/errors.ts', 'DistributedErrorCode'],
    ].flatMap(([file, type]) => codes(file!, type!));
    // The root's ErrorCode is the union of exactly these.
    const root = readFileSync(join(repo, 'src/index.ts'), 'utf8');
    const union = root.slice(
      root.indexOf('export type ErrorCode ='),
      root.indexOf(';', root.indexOf('export type ErrorCode =')),
    );
    expect([...union.matchAll(/\|\s*(\w+)/g)].map(([, name]) => name).sort()).toEqual(
      [
        'CoreErrorCode',
        'ProviderErrorCode',
        'PromptErrorCode',
        'ChainErrorCode',
        'EvalErrorCode',
        'CliErrorCode',
        'CliRunErrorCode',
        'DistributedErrorCode',
      ].sort(),
    );
    expect(all.length).toBeGreaterThan(50);
    const section = errorsSection();
    expect(all.filter((code) => !section.includes(`\`${code}\``))).toEqual([]);
  });
});
