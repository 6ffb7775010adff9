/**
 * {@link PromptTemplate}: one prompt file (system and user parts, or the turns of a conversation), compiled
 * once, rendered many times.
 */
import { InvalidOptionError } from '../core/errors.ts';
import { compileUnit, translateRenderError } from './compile.ts';
import type { CompiledUnit, RenderContext } from './compile.ts';
import { PromptEnvironment, environmentCore } from './environment.ts';
import type { EnvironmentCore } from './environment.ts';
import { PartialNotFoundError } from './errors.ts';
import { splitSections } from './sections.ts';
import type { Section } from './sections.ts';

/**
 * One turn of a rendered conversation template: a user or assistant part, trimmed, or the place of the
 * conversation's history (the `{{!-- history --}}` marker).
 */
export type RenderedTurn =
  { readonly role: 'user' | 'assistant'; readonly content: string } | { readonly role: 'history' };

/** A rendered prompt: the system part when the template has one that renders non-empty, and the user part. */
export interface RenderedPrompt {
  /** The system part, trimmed; absent when the template has none or it rendered empty. */
  readonly system?: string;
  /** The (last) user part, trimmed (possibly empty). */
  readonly user: string;
  /**
   * Every turn in file order (the last user part included), for a template with `{{!-- assistant --}}` or
   * `{{!-- history --}}` parts or several user parts; parts that render empty are left out. Absent for a
   * template with one user part.
   */
  readonly turns?: readonly RenderedTurn[];
}

/** Per-render options of {@link PromptTemplate.render}. */
export interface RenderOptions {
  /** Key of the chain node rendering the template, named in errors. */
  readonly nodeKey?: string | undefined;
}

/** Options of {@link PromptTemplate}. */
export interface PromptTemplateOptions {
  /**
   * Name of the template, used in error messages (a loader passes e.g. `agents/judge`).
   * @default 'inline'
   */
  readonly name?: string | undefined;
  /** File the source was read from, when there is one (informational). */
  readonly path?: string | undefined;
  /**
   * The environment whose partials the template may include.
   * @default a shared environment with the helpers and no partials
   */
  readonly environment?: PromptEnvironment | undefined;
}

let sharedEnvironment: PromptEnvironment | undefined;

/**
 * A prompt template: Handlebars with HTML escaping off and strict variables, compiled once (syntax errors and
 * unknown helpers surface at construction), split into an optional system part and a user part.
 *
 * **File format.** A line holding only `{{!-- system --}}` starts the system part; a line holding only
 * `{{!-- user --}}` starts the user part. Text before the first marker is the user part, and a template
 * without markers is all user. Each part is rendered and trimmed separately.
 *
 * **Conversations.** `{{!-- assistant --}}` starts an assistant part (a few-shot answer), and a template
 * may have several user and assistant parts, in turn order; a line holding only `{{!-- history --}}` says
 * where a chain node's `messages` (the conversation so far) go. `system` and `history` appear at most once.
 * Such a template renders its `turns` too (see {@link RenderedPrompt.turns}).
 *
 * ```hbs
 * {{!-- system --}}
 * You label support tickets.
 * {{!-- user --}}
 * My card was charged twice.
 * {{!-- assistant --}}
 * billing
 * {{!-- history --}}
 * {{!-- user --}}
 * {{input.text}}
 * ```
 *
 * ```hbs
 * {{!-- system --}}
 * {{> persona}}
 * {{!-- user --}}
 * Summarise in {{default words 50}} words:
 * {{text}}
 * ```
 *
 * **Variables are strict.** `{{text}}`, `{{outline.title}}`, `{{#each items}}` and any helper argument must
 * be provided: a missing one throws a {@link TemplateVariableError} naming the template, the variable's full
 * path, the line and the node key. A variable may be absent only where the template asks whether it is
 * there: `{{#if x}}`, `{{#unless x}}`, `{{#with x}}…{{else}}…{{/with}}` (nested paths too: `{{#if a.b}}`
 * with no `a` is false) and `{{default x "fallback"}}`. A top-level variable whose value is `undefined`
 * counts as not provided, so `{ tone: options.tone }` behaves like omitting `tone`.
 *
 * **Not HTML.** Output is never escaped: `'`, `<`, `&` and `"` pass through untouched.
 *
 * **Helpers** are a fixed set (`json`, `list`, `each` with `@number`, `truncate`, `eq`, `join`, `upper`,
 * `lower`, `trim`, `indent`, `default`, plus Handlebars' `if`, `unless`, `with`, `lookup`, `log`); calling
 * any other is a {@link TemplateSyntaxError} at load time. A variable named like a helper is read with
 * `{{this.name}}`.
 *
 * @example
 * ```ts
 * const template = PromptTemplate.fromString('Summarise: {{text}}', { name: 'summarize' });
 * template.render({ text: 'Q3 <draft> & notes' }); // { user: 'Summarise: Q3 <draft> & notes' }
 * ```
 */
export class PromptTemplate {
  /** Name of the template, used in error messages. */
  readonly name: string;
  /** The template's full source, as given. */
  readonly source: string;
  /** File the source was read from, if any. */
  readonly path: string | undefined;
  /** Whether the template has a system part. */
  readonly hasSystem: boolean;
  readonly #core: EnvironmentCore;
  readonly #system: CompiledUnit | undefined;
  readonly #user: CompiledUnit;
  /** The turns in file order, when the template is a conversation; `#user` is the last user one. */
  readonly #turns:
    | readonly (
        { readonly role: 'user' | 'assistant'; readonly unit: CompiledUnit } | { readonly role: 'history' }
      )[]
    | undefined;

  /**
   * Compiles `source`; same as {@link PromptTemplate.fromString}.
   *
   * @throws {TemplateSyntaxError} when a part does not parse, calls an unknown helper, or repeats a marker.
   * @throws {PartialNotFoundError} when it includes a partial its environment does not have.
   */
  constructor(source: string, options: PromptTemplateOptions = {}) {
    if (typeof source !== 'string') throw new InvalidOptionError('source', source, 'a template string');
    const name = options.name ?? 'inline';
    if (typeof name !== 'string' || name === '')
      throw new InvalidOptionError('name', name, 'a non-empty string');
    const environment = options.environment ?? (sharedEnvironment ??= new PromptEnvironment());
    this.name = name;
    this.source = source;
    this.path = options.path;
    this.#core = environmentCore(environment);
    const sections = splitSections(source.replace(/^\uFEFF/u, ''), name);
    this.#system = sections.system === undefined ? undefined : this.#compile(sections.system);
    if (sections.turns === undefined) {
      this.#user = this.#compile(sections.user);
      this.#turns = undefined;
    } else {
      const turns = sections.turns.map((turn) =>
        turn.role === 'history' ? { role: turn.role } : { role: turn.role, unit: this.#compile(turn) },
      );
      this.#turns = turns;
      let last: CompiledUnit | undefined;
      for (const turn of turns) if (turn.role === 'user') last = turn.unit;
      this.#user = last ?? this.#compile(sections.user);
    }
    this.hasSystem = this.#system !== undefined;
  }

  /**
   * Compiles a template from a string.
   *
   * @example
   * ```ts
   * const judge = PromptTemplate.fromString('{{!-- system --}}\nYou judge.\n{{!-- user --}}\n{{answer}}', { name: 'judge' });
   * ```
   * @throws {TemplateSyntaxError} when a part does not compile.
   * @throws {PartialNotFoundError} when it includes a partial its environment does not have.
   */
  static fromString(source: string, options: PromptTemplateOptions = {}): PromptTemplate {
    return new PromptTemplate(source, options);
  }

  /**
   * Renders both parts with `variables`; each part is trimmed. `system` is present only when the template
   * has a system part and it renders non-empty.
   *
   * @throws {TemplateVariableError} when a variable the template needs is missing.
   * @throws {TemplateRenderError} when a helper is misused (e.g. `{{truncate text "ten"}}`) or a value
   *   cannot be rendered.
   * @throws {PartialNotFoundError} when a partial included by a partial is not registered.
   */
  render(variables: Readonly<Record<string, unknown>>, options: RenderOptions = {}): RenderedPrompt {
    const given: unknown = variables;
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      throw new InvalidOptionError('variables', variables, 'an object of template variables');
    }
    const context: Record<string, unknown> = {};
    const provided: string[] = [];
    for (const [key, value] of Object.entries(variables)) {
      if (value === undefined) continue;
      context[key] = value;
      provided.push(key);
    }
    const renderContext: RenderContext = {
      template: this.name,
      nodeKey: options.nodeKey,
      provided,
      partialNames: () => this.#core.partialNames(),
    };
    const system = this.#system === undefined ? '' : this.#render(this.#system, context, renderContext);
    if (this.#turns !== undefined) {
      const turns: RenderedTurn[] = [];
      let user = '';
      for (const turn of this.#turns) {
        if (turn.role === 'history') {
          turns.push({ role: 'history' });
          continue;
        }
        const content = this.#render(turn.unit, context, renderContext);
        if (turn.unit === this.#user) user = content;
        if (content !== '') turns.push({ role: turn.role, content });
      }
      return Object.freeze(system === '' ? { user, turns } : { system, user, turns });
    }
    const user = this.#render(this.#user, context, renderContext);
    return Object.freeze(system === '' ? { user } : { system, user });
  }

  #compile(section: Section): CompiledUnit {
    const unit = compileUnit(this.#core.handlebars, {
      name: this.name,
      kind: 'template',
      source: section.source,
      firstLine: section.firstLine,
    });
    for (const reference of unit.partials) {
      if (!this.#core.hasPartial(reference.name) && !unit.inlinePartials.has(reference.name)) {
        throw new PartialNotFoundError({
          template: this.name,
          partial: reference.name,
          line: reference.line,
          available: this.#core.partialNames(),
        });
      }
    }
    return unit;
  }

  #render(unit: CompiledUnit, context: Record<string, unknown>, renderContext: RenderContext): string {
    try {
      return unit.render(context).trim();
    } catch (error) {
      throw translateRenderError(error, unit, renderContext);
    }
  }
}
