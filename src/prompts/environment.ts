/**
 * {@link PromptEnvironment}: one isolated Handlebars instance with the prompt helpers and a set of partials.
 */
import { InvalidOptionError } from '../core/errors.ts';
import { compileUnit, createHandlebars, markOrigin } from './compile.ts';
import type { CompiledUnit, HandlebarsInstance } from './compile.ts';

/** Options of {@link PromptEnvironment}. */
export interface PromptEnvironmentOptions {
  /**
   * Partials to register, by name: `{ persona: 'You are {{name}}.' }` makes `{{> persona}}` available.
   * @default {}
   */
  readonly partials?: Readonly<Record<string, string>> | undefined;
}

/** What a {@link PromptTemplate} needs from its environment; package-internal. */
export interface EnvironmentCore {
  readonly handlebars: HandlebarsInstance;
  hasPartial(name: string): boolean;
  partialNames(): readonly string[];
}

const cores = new WeakMap<PromptEnvironment, EnvironmentCore>();

/** Package-internal access to an environment's Handlebars instance. */
export function environmentCore(environment: PromptEnvironment): EnvironmentCore {
  const core = cores.get(environment);
  if (core === undefined) {
    throw new InvalidOptionError('environment', environment, 'an instance of PromptEnvironment');
  }
  return core;
}

/** Partial names as written after `{{>`: path-like, no whitespace or braces. */
const PARTIAL_NAME = /^[\w$-]+(?:[/.][\w$-]+)*$/u;

/**
 * An isolated Handlebars environment (`Handlebars.create()`, never the global instance) holding the prompt
 * helpers and a set of partials. Templates compiled in it may include its partials with `{{> name}}`.
 * A `TemplateLoader` owns one, filled from `prompts/partials/*.hbs`.
 *
 * @example
 * ```ts
 * const environment = new PromptEnvironment({ partials: { persona: 'You are {{role}}.' } });
 * const template = PromptTemplate.fromString('{{> persona}} Summarise: {{text}}', { name: 'summarize', environment });
 * ```
 */
export class PromptEnvironment {
  /** The isolated Handlebars instance; never exposed, so nothing outside can register on it. */
  // Created on first use, so that building the default loader at import loads no Handlebars.
  #hb: HandlebarsInstance | undefined;
  get #handlebars(): HandlebarsInstance {
    this.#hb ??= createHandlebars();
    return this.#hb;
  }
  /** Registered partials by name; the Handlebars instance holds the same set. */
  readonly #partials = new Map<string, CompiledUnit>();

  /**
   * @throws {InvalidOptionError} when a partial name is not a valid `{{> name}}` name.
   * @throws {TemplateSyntaxError} when a partial does not compile.
   */
  constructor(options: PromptEnvironmentOptions = {}) {
    cores.set(this, {
      handlebars: this.#handlebars,
      hasPartial: (name) => this.#partials.has(name),
      partialNames: () => this.partialNames,
    });
    for (const [name, source] of Object.entries(options.partials ?? {})) this.registerPartial(name, source);
  }

  /**
   * Registers (or replaces) a partial. It is compiled now, with the same strict rules as templates.
   *
   * @param name - The name used in `{{> name}}`, e.g. `persona` or `agents/judge-rubric`.
   * @param source - Handlebars source of the partial.
   * @throws {InvalidOptionError} when `name` is not a valid partial name.
   * @throws {TemplateSyntaxError} when the source does not compile.
   */
  registerPartial(name: string, source: string): this {
    if (typeof name !== 'string' || !PARTIAL_NAME.test(name)) {
      throw new InvalidOptionError(
        'partial name',
        name,
        'letters, digits, "_", "-" or "$", in segments split by "/" or "."',
      );
    }
    if (typeof source !== 'string')
      throw new InvalidOptionError(`partials.${name}`, source, 'a template string');
    const unit = compileUnit(this.#handlebars, {
      name,
      kind: 'partial',
      source: source.replace(/^\uFEFF/u, ''),
    });
    const render = (context: unknown, options?: RuntimeOptions): string => {
      try {
        return unit.render(context, options);
      } catch (error) {
        markOrigin(error, unit);
        throw error;
      }
    };
    this.#handlebars.registerPartial(name, render);
    this.#partials.set(name, unit);
    return this;
  }

  /** Whether a partial of that name is registered. */
  hasPartial(name: string): boolean {
    return this.#partials.has(name);
  }

  /** Names of the registered partials, sorted. */
  get partialNames(): readonly string[] {
    return [...this.#partials.keys()].sort();
  }
}
