/**
 * {@link TemplateLoader}: finds prompt templates by name, in the user's project first and in the package's own
 * `prompts/` folder last, registers the partials of each searched directory's `partials/` folder, and
 * compiles each template once.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { InvalidOptionError, SymphonizerError } from '../core/errors.ts';
import { PromptEnvironment } from './environment.ts';
import { TemplateNotFoundError, type PromptErrorCode, type SearchedTemplatePlace } from './errors.ts';
import { isDirectory, layeredSearchPath } from './search-path.ts';
import type { TemplateSearchDir } from './search-path.ts';
import { PromptTemplate } from './template.ts';
import type { RenderOptions, RenderedPrompt } from './template.ts';

const EXTENSION = '.hbs';

/** Options of {@link TemplateLoader}. */
export interface TemplateLoaderOptions {
  /**
   * The one directory to read templates from, and nothing else: `load('agents/judge')` reads
   * `${dir}/agents/judge.hbs`. Relative to the working directory at construction. Give `dir` for a loader
   * isolated from `SYMPHONIZER_PROMPTS`, `./prompts` and the package's prompts; give `projectDir` (or
   * neither) for the layered lookup.
   * @default none: the layered lookup
   */
  readonly dir?: string | undefined;
  /**
   * The first directory of the layered lookup (what the chain's `templates` option sets), searched before
   * `SYMPHONIZER_PROMPTS`, `./prompts` and the package's own prompts. Relative to `cwd` at construction.
   * @default none: the lookup starts at `SYMPHONIZER_PROMPTS`
   */
  readonly projectDir?: string | undefined;
  /**
   * Directory holding the partials of `dir` (or `projectDir`); `${partialsDir}/persona.hbs` becomes
   * `{{> persona}}` (subfolders give `{{> agents/rubric}}`). A missing directory means no partials there.
   * Only with `dir` or `projectDir`; every other searched directory has its partials in `partials/`.
   * @default `${dir}/partials`
   */
  readonly partialsDir?: string | undefined;
  /**
   * Where the layered lookup reads `SYMPHONIZER_PROMPTS`, at every lookup (never at import).
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * The working directory whose `./prompts` the layered lookup searches, and against which relative
   * `SYMPHONIZER_PROMPTS` and `projectDir` resolve; a function is called at every lookup.
   * @default process.cwd
   */
  readonly cwd?: string | (() => string) | undefined;
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

/** What a template *name* looks like; anything else is an inline template. */
const templateName = /^[\w./-]+$/;

function checkPath(option: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value === '')) {
    throw new InvalidOptionError(option, value, 'a non-empty path');
  }
}

/** Everything compiled for one search path; a different search path (cwd or env changed) gets its own. */
interface Resolution {
  readonly dirs: readonly TemplateSearchDir[];
  /** Created on first use, with the partials of every directory in `dirs`. */
  environment: PromptEnvironment | undefined;
  /** Compiled file templates by absolute path. */
  readonly byPath: Map<string, PromptTemplate>;
  /** Compiled file templates by the name asked for (without `.hbs`), so a repeated lookup probes nothing. */
  readonly byName: Map<string, PromptTemplate>;
  /** Compiled inline templates by source. */
  readonly bySource: Map<string, PromptTemplate>;
}

/**
 * Loads prompt templates by name and compiles each once.
 *
 * **Where names resolve.** By default (and with `projectDir`, which is what the chain's `templates` option
 * sets) a name is looked up in these directories, in order, and the first that has the file wins:
 * 1. `projectDir`, when given;
 * 2. the directory named by the `SYMPHONIZER_PROMPTS` environment variable, when it is set;
 * 3. `./prompts` under the current working directory, when it exists;
 * 4. the package's own `prompts/` folder (the ready agents' `agents/*` templates and the stock partials).
 * The environment variable and the working directory are read at every lookup, so a change between calls
 * is seen. Partials come from the `partials/` folder of every one of those directories, an earlier
 * directory's partial replacing a later one's of the same name: the package's templates still find the
 * package's partials when the user's prompts have none. With `dir`, only that directory is searched.
 *
 * A string containing `{{` or a newline is an inline template and is compiled as it is (cached by source);
 * anything else is a name: `summarize`, `summarize.hbs` and `agents/judge` read `<directory>/<name>.hbs`
 * (cached by absolute path, so every spelling returns the same {@link PromptTemplate}). Files are read
 * synchronously on first use and never re-read; call {@link TemplateLoader.clear} after editing them.
 *
 * @example
 * ```ts
 * const loader = new TemplateLoader({ projectDir: 'prompts/report' }); // then SYMPHONIZER_PROMPTS, ./prompts, the package
 * const { system, user } = loader.load('agents/judge').render({ answer }, { nodeKey: 'judge' });
 * const isolated = new TemplateLoader({ dir: 'test/fixtures/prompts' }); // that directory only
 * ```
 */
export class TemplateLoader {
  /** The single directory's search path, or `undefined` for the layered lookup. */
  readonly #fixed: readonly TemplateSearchDir[] | undefined;
  /** Absolute `projectDir`, if given. */
  readonly #projectDir: string | undefined;
  /** Absolute `partialsDir` of `projectDir`, if given. */
  readonly #projectPartialsDir: string | undefined;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #cwd: () => string;
  /** Compiled templates and partials per search path, keyed by its directories. */
  readonly #resolutions = new Map<string, Resolution>();

  /**
   * Constructing a loader reads no file and no environment variable.
   *
   * @throws {InvalidOptionError} when `dir`, `projectDir` or `partialsDir` is not a non-empty string, when
   *   both `dir` and `projectDir` are given, when `partialsDir` comes without either, or when `env` or `cwd`
   *   has the wrong type.
   */
  constructor(options: TemplateLoaderOptions = {}) {
    const { dir, projectDir, partialsDir, env = process.env, cwd = () => process.cwd() } = options;
    checkPath('dir', dir);
    checkPath('projectDir', projectDir);
    checkPath('partialsDir', partialsDir);
    if (dir !== undefined && projectDir !== undefined) {
      throw new InvalidOptionError('projectDir', projectDir, 'absent when `dir` is given', {
        hint: '`dir` searches one directory only; `projectDir` is the first of the layered lookup',
      });
    }
    if (partialsDir !== undefined && dir === undefined && projectDir === undefined) {
      throw new InvalidOptionError('partialsDir', partialsDir, 'given only with `dir` or `projectDir`');
    }
    const givenEnv: unknown = env;
    if (typeof givenEnv !== 'object' || givenEnv === null) {
      throw new InvalidOptionError('env', env, 'an object of environment variables');
    }
    if (typeof cwd !== 'function' && (typeof cwd !== 'string' || cwd === '')) {
      throw new InvalidOptionError('cwd', cwd, 'a non-empty path or a function returning one');
    }
    this.#env = env;
    const fixedCwd = typeof cwd === 'string' ? resolve(cwd) : undefined;
    this.#cwd = fixedCwd === undefined ? (cwd as () => string) : () => fixedCwd;
    if (dir !== undefined) {
      const absolute = resolve(dir);
      this.#fixed = Object.freeze([
        Object.freeze({
          dir: absolute,
          partialsDir: resolve(absolute, partialsDir ?? 'partials'),
          reason: 'dir',
        }),
      ]);
    } else if (projectDir !== undefined) {
      this.#projectDir = resolve(this.#cwd(), projectDir);
      this.#projectPartialsDir =
        partialsDir === undefined ? undefined : resolve(this.#projectDir, partialsDir);
    }
  }

  /**
   * The directories a name is looked up in now, in order, each with why it is searched. For the layered
   * lookup this reads `SYMPHONIZER_PROMPTS` and the working directory afresh.
   */
  searchPath(): readonly TemplateSearchDir[] {
    if (this.#fixed !== undefined) return this.#fixed;
    return layeredSearchPath({
      projectDir: this.#projectDir,
      projectPartialsDir: this.#projectPartialsDir,
      env: this.#env,
      cwd: this.#cwd(),
    });
  }

  /** Absolute directory of the templates: `dir`, or the first directory of the current search path. */
  get dir(): string {
    return (this.searchPath()[0] as TemplateSearchDir).dir;
  }

  /** Absolute directory of the partials of {@link TemplateLoader.dir}. */
  get partialsDir(): string {
    return (this.searchPath()[0] as TemplateSearchDir).partialsDir;
  }

  /**
   * The environment of the current search path, with the partials of each of its directories registered
   * (read on first access; an earlier directory's partial replaces a later one's of the same name).
   *
   * @throws {TemplateSyntaxError} when a partial does not compile.
   */
  get environment(): PromptEnvironment {
    return this.#environmentOf(this.#resolution());
  }

  /**
   * The template for a name or an inline source, compiled on first request and cached.
   *
   * @param nameOrSource - `summarize`, `summarize.hbs` or `agents/judge` (relative to each searched
   *   directory, see {@link TemplateLoader.searchPath}), or an inline template: every other string, i.e. one
   *   that is not a plain name (a name is letters, digits, `_`, `-`, `.` and `/` only), so `Summarise {{text}}`
   *   and `Say hi.` are inline and `summarize` is a file.
   * @throws {TemplateNotFoundError} when no searched directory has the file; it lists every place searched and
   *   the available template names.
   * @throws {TemplateSyntaxError} when the template (or a partial) does not compile.
   * @throws {PartialNotFoundError} when it includes an unknown partial.
   */
  load(nameOrSource: string): PromptTemplate {
    if (typeof nameOrSource !== 'string' || nameOrSource.trim() === '') {
      throw new InvalidOptionError('nameOrSource', nameOrSource, 'a template name or an inline template');
    }
    const resolution = this.#resolution();
    if (!templateName.test(nameOrSource)) {
      let template = resolution.bySource.get(nameOrSource);
      if (template === undefined) {
        template = new PromptTemplate(nameOrSource, {
          name: inlineName(nameOrSource),
          environment: this.#environmentOf(resolution),
        });
        resolution.bySource.set(nameOrSource, template);
      }
      return template;
    }
    const bare = nameOrSource.endsWith(EXTENSION) ? nameOrSource.slice(0, -EXTENSION.length) : nameOrSource;
    const known = resolution.byName.get(bare);
    if (known !== undefined) return known;
    const searched: SearchedTemplatePlace[] = [];
    let leaves = true;
    for (const { dir, reason } of resolution.dirs) {
      const path = resolve(dir, `${bare}${EXTENSION}`);
      const inside = isInside(dir, path);
      leaves &&= !inside;
      let template = inside ? resolution.byPath.get(path) : undefined;
      if (template === undefined) {
        const source = inside ? this.#read(nameOrSource, path) : undefined;
        if (source === undefined) {
          searched.push({ dir, reason, path, exists: isDirectory(dir) });
          continue;
        }
        const name = relative(dir, path).slice(0, -EXTENSION.length).split(sep).join('/');
        template = new PromptTemplate(source, { name, path, environment: this.#environmentOf(resolution) });
        resolution.byPath.set(path, template);
      }
      resolution.byName.set(bare, template);
      return template;
    }
    const first = searched[0] as SearchedTemplatePlace;
    throw new TemplateNotFoundError({
      template: nameOrSource,
      path: first.path,
      available: this.#templateNames(resolution.dirs),
      searched,
      missingDir: this.#fixed !== undefined && !first.exists ? first.dir : undefined,
      hint: leaves
        ? `template names are relative to ${searched.map((place) => place.dir).join(', ')} and may not leave them`
        : undefined,
    });
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

  /**
   * Names of the templates in the current search path (partials excluded), deduplicated and sorted:
   * `['agents/judge', 'summarize']`.
   */
  templateNames(): string[] {
    return this.#templateNames(this.searchPath());
  }

  /** Forgets every compiled template and partial; the next `load()` reads the files again. */
  clear(): void {
    this.#resolutions.clear();
  }

  #templateNames(dirs: readonly TemplateSearchDir[]): string[] {
    return [...new Set(dirs.flatMap((d) => hbsNames(d.dir, d.partialsDir)))].sort();
  }

  /** The compiled state of the current search path: one `stat` for the layered lookup, then a map lookup. */
  #resolution(): Resolution {
    const dirs = this.searchPath();
    const key = dirs.map((d) => `${d.dir}\0${d.partialsDir}`).join('\n');
    let resolution = this.#resolutions.get(key);
    if (resolution === undefined) {
      resolution = {
        dirs,
        environment: undefined,
        byPath: new Map(),
        byName: new Map(),
        bySource: new Map(),
      };
      this.#resolutions.set(key, resolution);
    }
    return resolution;
  }

  #environmentOf(resolution: Resolution): PromptEnvironment {
    if (resolution.environment === undefined) {
      const environment = new PromptEnvironment();
      // Last directory first, so an earlier directory's partial replaces a later one's of the same name.
      for (const { partialsDir } of [...resolution.dirs].reverse()) {
        for (const name of hbsNames(partialsDir)) {
          environment.registerPartial(
            name,
            readFileSync(resolve(partialsDir, `${name}${EXTENSION}`), 'utf8'),
          );
        }
      }
      resolution.environment = environment;
    }
    return resolution.environment;
  }

  /** The file's text, or `undefined` when there is no such file. */
  #read(name: string, path: string): string | undefined {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      if (isMissingFile(error)) return undefined;
      throw new SymphonizerError<PromptErrorCode>(
        'template_read',
        `Template "${name}" could not be read from ${path}.`,
        {
          cause: error,
        },
      );
    }
  }
}

/**
 * The layered loader used when a chain has no `templates` option and by {@link renderTemplate}: it looks in
 * `SYMPHONIZER_PROMPTS`, then `./prompts`, then the package's own prompts. Constructing it reads nothing.
 */
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
