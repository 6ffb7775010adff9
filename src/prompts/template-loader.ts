/**
 * {@link TemplateLoader}: finds prompt templates by name in a directory (`prompts/` by default), registers the
 * partials of its `partials/` folder, and compiles each template once.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError, SymphonizerError } from '../core/errors.ts';
import { PromptEnvironment } from './environment.ts';
import { TemplateNotFoundError } from './errors.ts';
import { PromptTemplate } from './template.ts';
import type { RenderOptions, RenderedPrompt } from './template.ts';

/** The package's `prompts/` folder: two levels up from `src/prompts/` (or `dist/prompts/` once built). */
const PACKAGE_PROMPTS_DIR = fileURLToPath(new URL('../../prompts/', import.meta.url));

const EXTENSION = '.hbs';

/** Options of {@link TemplateLoader}. */
export interface TemplateLoaderOptions {
  /**
   * Directory holding the `*.hbs` templates; `load('agents/judge')` reads `${dir}/agents/judge.hbs`.
   * @default the package's `prompts/` folder
   */
  readonly dir?: string | undefined;
  /**
   * Directory holding the partials; `${partialsDir}/persona.hbs` becomes `{{> persona}}` (subfolders give
   * `{{> agents/rubric}}`). A missing directory means no partials.
   * @default `${dir}/partials`
   */
  readonly partialsDir?: string | undefined;
}

/** Options of {@link renderTemplate}. */
export interface RenderTemplateOptions extends RenderOptions {
  /**
   * The loader to load the template with.
   * @default defaultTemplateLoader
   */
  readonly loader?: TemplateLoader | undefined;
}

function isMissingFile(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** `.hbs` files under `dir` as names relative to it, `/`-separated and without the extension, sorted. */
function hbsNames(dir: string, exclude?: string): string[] {
  if (!isDirectory(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith(EXTENSION))
    .filter((file) => exclude === undefined || !isInside(exclude, resolve(dir, file)))
    .map((file) => file.slice(0, -EXTENSION.length).split(sep).join('/'))
    .sort();
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** Inline sources are named after their first line, shortened, for error messages. */
function inlineName(source: string): string {
  const firstLine = source.trim().split('\n', 1)[0] ?? '';
  return `<inline: ${firstLine.length > 40 ? `${firstLine.slice(0, 39)}…` : firstLine}>`;
}

/**
 * Loads prompt templates by name and compiles each once.
 *
 * A string containing `{{` or a newline is an inline template and is compiled as it is (cached by source);
 * anything else is a name: `summarize`, `summarize.hbs` and `agents/judge` read `${dir}/<name>.hbs`
 * (cached by absolute path, so every spelling returns the same {@link PromptTemplate}). Files are read
 * synchronously on first use and never re-read; call {@link TemplateLoader.clear} after editing them.
 *
 * @example
 * ```ts
 * const loader = new TemplateLoader({ dir: 'prompts' });
 * const { system, user } = loader.load('agents/judge').render({ answer }, { nodeKey: 'judge' });
 * ```
 */
export class TemplateLoader {
  /** Absolute directory of the templates. */
  readonly dir: string;
  /** Absolute directory of the partials. */
  readonly partialsDir: string;
  /** Created on first use, so constructing a loader touches no file. */
  #environment: PromptEnvironment | undefined;
  /** Compiled file templates by absolute path. */
  readonly #byPath = new Map<string, PromptTemplate>();
  /** Compiled inline templates by source. */
  readonly #bySource = new Map<string, PromptTemplate>();

  /** @throws {InvalidOptionError} when `dir` or `partialsDir` is not a non-empty string. */
  constructor(options: TemplateLoaderOptions = {}) {
    const { dir = PACKAGE_PROMPTS_DIR, partialsDir } = options;
    if (typeof dir !== 'string' || dir === '') throw new InvalidOptionError('dir', dir, 'a non-empty path');
    if (partialsDir !== undefined && (typeof partialsDir !== 'string' || partialsDir === '')) {
      throw new InvalidOptionError('partialsDir', partialsDir, 'a non-empty path');
    }
    this.dir = resolve(dir);
    this.partialsDir = resolve(this.dir, partialsDir ?? 'partials');
  }

  /**
   * The loader's environment, with every partial of {@link TemplateLoader.partialsDir} registered (read on
   * first access).
   *
   * @throws {TemplateSyntaxError} when a partial does not compile.
   */
  get environment(): PromptEnvironment {
    if (this.#environment === undefined) {
      const environment = new PromptEnvironment();
      for (const name of hbsNames(this.partialsDir)) {
        environment.registerPartial(
          name,
          readFileSync(resolve(this.partialsDir, `${name}${EXTENSION}`), 'utf8'),
        );
      }
      this.#environment = environment;
    }
    return this.#environment;
  }

  /**
   * The template for a name or an inline source, compiled on first request and cached.
   *
   * @param nameOrSource - `summarize`, `summarize.hbs` or `agents/judge` (relative to {@link TemplateLoader.dir}),
   *   or an inline template: every other string, i.e. one that is not a plain name (a name is letters, digits, `_`, `-`, `.` and
   *   `/` only), so `Summarise {{text}}` and `Say hi.` are inline and `summarize` is a file.
   * @throws {TemplateNotFoundError} when no such file exists; it lists the available template names.
   * @throws {TemplateSyntaxError} when the template (or a partial) does not compile.
   * @throws {PartialNotFoundError} when it includes an unknown partial.
   */
  load(nameOrSource: string): PromptTemplate {
    if (typeof nameOrSource !== 'string' || nameOrSource.trim() === '') {
      throw new InvalidOptionError('nameOrSource', nameOrSource, 'a template name or an inline template');
    }
    if (!templateName.test(nameOrSource)) {
      let template = this.#bySource.get(nameOrSource);
      if (template === undefined) {
        template = new PromptTemplate(nameOrSource, {
          name: inlineName(nameOrSource),
          environment: this.environment,
        });
        this.#bySource.set(nameOrSource, template);
      }
      return template;
    }
    const bare = nameOrSource.endsWith(EXTENSION) ? nameOrSource.slice(0, -EXTENSION.length) : nameOrSource;
    const path = resolve(this.dir, `${bare}${EXTENSION}`);
    const cached = this.#byPath.get(path);
    if (cached !== undefined) return cached;
    if (!isInside(this.dir, path)) {
      throw new TemplateNotFoundError({
        template: nameOrSource,
        path,
        available: this.templateNames(),
        hint: `template names are relative to ${this.dir} and may not leave it`,
      });
    }
    const name = relative(this.dir, path).slice(0, -EXTENSION.length).split(sep).join('/');
    const template = new PromptTemplate(this.#read(nameOrSource, path), {
      name,
      path,
      environment: this.environment,
    });
    this.#byPath.set(path, template);
    return template;
  }

  /**
   * Loads and renders in one call.
   *
   * @throws everything {@link TemplateLoader.load} and {@link PromptTemplate.render} throw.
   */
  render(
    nameOrSource: string,
    variables: Readonly<Record<string, unknown>>,
    options: RenderOptions = {},
  ): RenderedPrompt {
    return this.load(nameOrSource).render(variables, options);
  }

  /** Names of the templates in {@link TemplateLoader.dir} (partials excluded), sorted: `['agents/judge', 'summarize']`. */
  templateNames(): string[] {
    return hbsNames(this.dir, this.partialsDir);
  }

  /** Forgets every compiled template and partial; the next `load()` reads the files again. */
  clear(): void {
    this.#byPath.clear();
    this.#bySource.clear();
    this.#environment = undefined;
  }

  #read(name: string, path: string): string {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      if (isMissingFile(error)) {
        throw new TemplateNotFoundError({
          template: name,
          path,
          available: this.templateNames(),
          missingDir: isDirectory(this.dir) ? undefined : this.dir,
        });
      }
      throw new SymphonizerError('template_read', `Template "${name}" could not be read from ${path}.`, {
        cause: error,
      });
    }
  }
}

/**
 * The loader of the package's `prompts/` folder. Constructing it reads nothing: files are read on first use.
 */
/** What a template *name* looks like; anything else is an inline template. */
const templateName = /^[\w./-]+$/;

export const defaultTemplateLoader: TemplateLoader = new TemplateLoader();

/**
 * Loads (once) and renders a template by name or inline source.
 *
 * @example
 * ```ts
 * const { system, user } = renderTemplate('summarize', { text }, { nodeKey: 'summarize' });
 * ```
 * @throws everything {@link TemplateLoader.load} and {@link PromptTemplate.render} throw.
 */
export function renderTemplate(
  nameOrSource: string,
  variables: Readonly<Record<string, unknown>>,
  options: RenderTemplateOptions = {},
): RenderedPrompt {
  const { loader = defaultTemplateLoader, ...renderOptions } = options;
  return loader.load(nameOrSource).render(variables, renderOptions);
}
