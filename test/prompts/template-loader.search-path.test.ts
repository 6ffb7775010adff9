// Where template names resolve: the templates option, then SYMPHONIZER_PROMPTS, then ./prompts, then the
// package's own prompts. The environment and the working directory are injected, so nothing here changes
// process.env or process.cwd().
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../src/core/errors.ts';
import {
  PROMPTS_ENV_VAR,
  TemplateLoader,
  TemplateNotFoundError,
  defaultTemplateLoader,
} from '../../src/prompts/index.ts';
import { findPackageRoot, packagePromptsDir, promptsDirFrom } from '../../src/prompts/search-path.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const packagePrompts = path.join(repoRoot, 'prompts');

let root: string;
/** The chain's `templates` option directory. */
let optionDir: string;
/** The directory SYMPHONIZER_PROMPTS names. */
let envDir: string;
/** A project whose working directory has ./prompts. */
let project: string;
/** A working directory without ./prompts. */
let bare: string;

function write(file: string, content: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

beforeEach(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'symphonizer-search-')));
  optionDir = path.join(root, 'option');
  envDir = path.join(root, 'env');
  project = path.join(root, 'project');
  bare = path.join(root, 'bare');
  fs.mkdirSync(bare);
  // The same name in every layer, each saying where it came from; the package has agents/summarizer too.
  write(path.join(optionDir, 'agents/summarizer.hbs'), 'option {{text}}');
  write(path.join(envDir, 'agents/summarizer.hbs'), 'env {{text}}');
  write(path.join(project, 'prompts/agents/summarizer.hbs'), 'cwd {{text}}');
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('layered lookup: precedence', () => {
  it('the templates option beats SYMPHONIZER_PROMPTS, which beats ./prompts, which beats the package', () => {
    const env = { [PROMPTS_ENV_VAR]: envDir };
    const all = new TemplateLoader({ projectDir: optionDir, env, cwd: project });
    expect(all.load('agents/summarizer').render({ text: 't' }).user).toBe('option t');
    expect(all.searchPath().map((d) => [d.reason, d.dir])).toEqual([
      ['option', optionDir],
      ['env', envDir],
      ['cwd', path.join(project, 'prompts')],
      ['package', packagePrompts],
    ]);

    const noOption = new TemplateLoader({ env, cwd: project });
    expect(noOption.load('agents/summarizer').render({ text: 't' }).user).toBe('env t');

    const noEnv = new TemplateLoader({ env: {}, cwd: project });
    expect(noEnv.load('agents/summarizer').render({ text: 't' }).user).toBe('cwd t');

    const packageOnly = new TemplateLoader({ env: {}, cwd: bare });
    const fromPackage = packageOnly.load('agents/summarizer');
    expect(fromPackage.path).toBe(path.join(packagePrompts, 'agents/summarizer.hbs'));
    expect(fromPackage.name).toBe('agents/summarizer');
    expect(packageOnly.searchPath().map((d) => d.reason)).toEqual(['package']);
  });

  it('resolves a relative SYMPHONIZER_PROMPTS and projectDir against the working directory', () => {
    const loader = new TemplateLoader({ env: { [PROMPTS_ENV_VAR]: '../env' }, cwd: project });
    expect(loader.load('agents/summarizer').path).toBe(path.join(envDir, 'agents/summarizer.hbs'));
    const option = new TemplateLoader({ projectDir: '../option', env: {}, cwd: project });
    expect(option.searchPath()[0]).toEqual({
      dir: optionDir,
      partialsDir: path.join(optionDir, 'partials'),
      reason: 'option',
    });
  });

  it('ignores an empty SYMPHONIZER_PROMPTS and searches a directory named twice once', () => {
    const loader = new TemplateLoader({ env: { [PROMPTS_ENV_VAR]: '  ' }, cwd: repoRoot });
    // In this repository ./prompts is the package's folder: one entry, for its first reason.
    expect(loader.searchPath().map((d) => [d.reason, d.dir])).toEqual([['cwd', packagePrompts]]);
  });

  it('reads SYMPHONIZER_PROMPTS and the working directory at every lookup, not at construction', () => {
    const env: Record<string, string | undefined> = {};
    let cwd = bare;
    const loader = new TemplateLoader({ env, cwd: () => cwd });
    const fromPackage = loader.load('agents/summarizer');
    expect(fromPackage.path).toBe(path.join(packagePrompts, 'agents/summarizer.hbs'));
    cwd = project;
    expect(loader.load('agents/summarizer').render({ text: 'x' }).user).toBe('cwd x');
    env[PROMPTS_ENV_VAR] = envDir;
    expect(loader.load('agents/summarizer').render({ text: 'x' }).user).toBe('env x');
    env.SYMPHONIZER_PROMPTS = undefined;
    cwd = bare;
    // Back to the first search path: its compiled template is still cached.
    expect(loader.load('agents/summarizer')).toBe(fromPackage);
  });

  it('caches per resolved path: every spelling gives the same compiled template', () => {
    const loader = new TemplateLoader({ projectDir: optionDir, env: {}, cwd: bare });
    const first = loader.load('agents/summarizer');
    expect(loader.load('agents/summarizer.hbs')).toBe(first);
    expect(loader.load('./agents/../agents/summarizer')).toBe(first);
    expect(first.path).toBe(path.join(optionDir, 'agents/summarizer.hbs'));
  });

  it("defaultTemplateLoader is layered and its last directory is the package's prompts", () => {
    const last = defaultTemplateLoader.searchPath().at(-1);
    expect(last?.dir).toBe(packagePrompts);
    expect(last?.partialsDir).toBe(path.join(packagePrompts, 'partials'));
    // From this repository's root, ./prompts is the package's folder and is listed once, as ./prompts.
    expect(['package', 'cwd']).toContain(last?.reason);
  });
});

describe('layered lookup: the ready agents and the package partials', () => {
  it("finds the agents' templates in the package when the user's ./prompts does not have them", () => {
    write(path.join(project, 'prompts/greet.hbs'), 'Hello {{name}}');
    fs.rmSync(path.join(project, 'prompts/agents'), { recursive: true });
    const loader = new TemplateLoader({ env: {}, cwd: project });
    expect(loader.load('greet').render({ name: 'Ada' }).user).toBe('Hello Ada');
    for (const agent of ['classifier', 'critic', 'extractor', 'judge', 'reviser', 'router', 'summarizer']) {
      expect(loader.load(`agents/${agent}`).path).toBe(path.join(packagePrompts, `agents/${agent}.hbs`));
    }
    expect(loader.templateNames()).toEqual(expect.arrayContaining(['agents/classifier', 'greet']));
  });

  it("user partials come first, the package's partials are the fallback", () => {
    write(path.join(project, 'prompts/partials/persona.hbs'), 'I am {{role}}, from the project.');
    write(path.join(project, 'prompts/partials/house.hbs'), 'House rules.');
    write(
      path.join(project, 'prompts/brief.hbs'),
      '{{> persona role="an editor"}} {{> house}}\n{{> json-output}}',
    );
    const loader = new TemplateLoader({ env: {}, cwd: project });
    expect(loader.load('brief').render({}).user).toBe(
      'I am an editor, from the project. House rules.\n' +
        'Answer with one JSON object and nothing else: no prose, no Markdown code fences.',
    );
    expect(loader.environment.partialNames).toEqual(['house', 'json-output', 'persona']);
    // Inline templates see the same layered partials.
    expect(loader.load('{{> json-output}}').render({}).user).toMatch(/^Answer with one JSON object/);
  });

  it("a lower directory's templates still find that directory's partials when a higher one has its own", () => {
    // envDir plays the package: a template using its own partial, below a project with other partials.
    write(path.join(envDir, 'scored.hbs'), '{{> rubric max=5}} {{answer}}');
    write(path.join(envDir, 'partials/rubric.hbs'), 'Score 1-{{max}}.');
    write(path.join(optionDir, 'partials/tone.hbs'), 'Be terse.');
    const loader = new TemplateLoader({
      projectDir: optionDir,
      env: { [PROMPTS_ENV_VAR]: envDir },
      cwd: bare,
    });
    expect(loader.load('scored').render({ answer: 'A' }).user).toBe('Score 1-5. A');
    expect(loader.load('{{> tone}} {{> rubric max=3}}').render({}).user).toBe('Be terse. Score 1-3.');
  });

  it('partialsDir of the templates option replaces its partials/ folder', () => {
    write(path.join(optionDir, 'shared/persona.hbs'), 'Shared {{role}}.');
    const loader = new TemplateLoader({ projectDir: optionDir, partialsDir: 'shared', env: {}, cwd: bare });
    expect(loader.searchPath()[0]?.partialsDir).toBe(path.join(optionDir, 'shared'));
    expect(loader.load('{{> persona role="x"}}').render({}).user).toBe('Shared x.');
  });
});

describe('layered lookup: a missing template', () => {
  it('lists every place searched, in order, with why each was searched, and keeps its code', () => {
    const missingEnv = path.join(root, 'no-such-dir');
    const loader = new TemplateLoader({
      projectDir: optionDir,
      env: { [PROMPTS_ENV_VAR]: missingEnv },
      cwd: project,
    });
    let error: unknown;
    try {
      loader.load('reports/weekly');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TemplateNotFoundError);
    const notFound = error as TemplateNotFoundError;
    expect(notFound.code).toBe('template_not_found');
    expect(notFound.template).toBe('reports/weekly');
    const file = 'reports/weekly.hbs';
    expect(notFound.searched).toEqual([
      { dir: optionDir, reason: 'option', path: path.join(optionDir, file), exists: true },
      { dir: missingEnv, reason: 'env', path: path.join(missingEnv, file), exists: false },
      {
        dir: path.join(project, 'prompts'),
        reason: 'cwd',
        path: path.join(project, 'prompts', file),
        exists: true,
      },
      { dir: packagePrompts, reason: 'package', path: path.join(packagePrompts, file), exists: true },
    ]);
    expect(notFound.path).toBe(path.join(optionDir, file));
    expect(notFound.message).toContain(
      `Template "reports/weekly" not found; looked for ${path.join(optionDir, file)} (the templates option), ` +
        `then ${path.join(missingEnv, file)} (SYMPHONIZER_PROMPTS; no such directory), ` +
        `then ${path.join(project, 'prompts', file)} (./prompts in the working directory), ` +
        `then ${path.join(packagePrompts, file)} (symphonizer's own prompts).`,
    );
    expect(notFound.available).toEqual(expect.arrayContaining(['agents/classifier', 'agents/summarizer']));
    expect(notFound.hint).toMatch(/^available templates: /);
  });

  it('refuses a name that leaves every searched directory', () => {
    write(path.join(root, 'secret.hbs'), 'secret');
    const loader = new TemplateLoader({ projectDir: optionDir, env: {}, cwd: bare });
    expect(() => loader.load('../secret')).toThrow(TemplateNotFoundError);
    expect(() => loader.load('../secret')).toThrow(/may not leave them/);
  });
});

describe('TemplateLoader options', () => {
  it('refuses dir with projectDir, partialsDir alone, and a bad env or cwd', () => {
    expect(() => new TemplateLoader({ dir: optionDir, projectDir: envDir })).toThrow(InvalidOptionError);
    expect(() => new TemplateLoader({ partialsDir: 'shared' })).toThrow(/partialsDir/);
    expect(() => new TemplateLoader({ projectDir: '' })).toThrow(/projectDir/);
    expect(() => new TemplateLoader({ cwd: '' })).toThrow(/cwd/);
    // @ts-expect-error -- env must be an object
    expect(() => new TemplateLoader({ env: 'x' })).toThrow(/env/);
  });

  it('a dir loader searches that directory only', () => {
    const loader = new TemplateLoader({ dir: optionDir, env: { [PROMPTS_ENV_VAR]: envDir }, cwd: project });
    expect(loader.searchPath().map((d) => d.reason)).toEqual(['dir']);
    expect(() => loader.load('agents/classifier')).toThrow(TemplateNotFoundError);
  });
});

describe("the package's prompts directory", () => {
  it('is prompts/ at the repository root when running from src/', () => {
    expect(packagePromptsDir()).toBe(packagePrompts);
  });

  it('is found from dist/src/prompts of an installed package, past other package.json files', () => {
    const installed = path.join(root, 'app/node_modules/symphonizer');
    write(path.join(root, 'app/package.json'), JSON.stringify({ name: 'app' }));
    write(path.join(installed, 'package.json'), JSON.stringify({ name: 'symphonizer', version: '0.1.0' }));
    write(path.join(installed, 'dist/package.json'), JSON.stringify({ type: 'module' }));
    write(path.join(installed, 'dist/src/package.json'), '{ not json');
    const moduleFile = write(path.join(installed, 'dist/src/prompts/search-path.js'), '');
    expect(findPackageRoot(path.dirname(moduleFile))).toBe(installed);
    expect(promptsDirFrom(pathToFileURL(moduleFile).href)).toBe(path.join(installed, 'prompts'));
    // The ready agents' module directory finds the same root.
    expect(findPackageRoot(path.join(installed, 'dist/agents'))).toBe(installed);
  });

  it('is computed from the module file itself (import.meta.url) in a dist/src/prompts layout', async () => {
    // A copy of the module (it imports only node: builtins) in the layout `npm pack` ships.
    const installed = path.join(root, 'vendor/symphonizer');
    write(path.join(installed, 'package.json'), JSON.stringify({ name: 'symphonizer' }));
    const copy = write(
      path.join(installed, 'dist/src/prompts/search-path.ts'),
      fs.readFileSync(path.join(repoRoot, 'src/prompts/search-path.ts'), 'utf8'),
    );
    const module = (await import(
      pathToFileURL(copy).href
    )) as typeof import('../../src/prompts/search-path.ts');
    expect(module.packagePromptsDir()).toBe(path.join(installed, 'prompts'));
  });

  it('falls back to prompts/ two levels above the module when no symphonizer package.json is found', () => {
    const moduleFile = write(path.join(root, 'bundle/src/prompts/index.js'), '');
    expect(findPackageRoot(path.dirname(moduleFile))).toBeUndefined();
    expect(promptsDirFrom(pathToFileURL(moduleFile).href)).toBe(path.join(root, 'bundle/prompts'));
  });
});
