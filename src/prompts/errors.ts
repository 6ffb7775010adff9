/**
 * Errors of the prompts layer. Each carries the template's name and, where it applies, the node key of the
 * chain node that rendered it, so a failure deep in a composition still says which prompt broke and why.
 */
import { dirname } from 'node:path';
import { SymphonizerError } from '../core/errors.ts';
import { REASON_TEXT, type TemplateDirReason } from './search-path.ts';

/** Codes of the errors `symphonizer/prompts` raises. */
export type PromptErrorCode =
  | 'template_not_found'
  | 'template_variable'
  | 'template_syntax'
  | 'template_render'
  | 'template_read'
  | 'partial_not_found';

/** Most names listed in a hint; the full list is always on the error's field. */
const HINT_LIST_LIMIT = 20;

/** A readable, bounded list of names for a hint: `a, b, c` or `a, b, … and 12 more`. */
function listForHint(names: readonly string[]): string {
  if (names.length <= HINT_LIST_LIMIT) return names.join(', ');
  return `${names.slice(0, HINT_LIST_LIMIT).join(', ')}, … and ${names.length - HINT_LIST_LIMIT} more`;
}

/** ` (node "k")` when a node key is known, else the empty string. */
function forNode(nodeKey: string | undefined): string {
  return nodeKey === undefined ? '' : ` (node "${nodeKey}")`;
}

/** ` at line 3` when the line is known, else the empty string. */
function atLine(line: number | undefined): string {
  return line === undefined ? '' : ` at line ${line}`;
}

/** One place a template was looked for; see {@link TemplateNotFoundError.searched}. */
export interface SearchedTemplatePlace {
  /** The directory searched (absolute). */
  readonly dir: string;
  /** Why it was searched: the templates option, `SYMPHONIZER_PROMPTS`, `./prompts` or the package. */
  readonly reason: TemplateDirReason;
  /** The file looked for in it. */
  readonly path: string;
  /** Whether the directory exists. */
  readonly exists: boolean;
}

/** What {@link TemplateNotFoundError} is built from. */
export interface TemplateNotFoundErrorInit {
  /** The name that was asked for, e.g. `agents/judge`. */
  readonly template: string;
  /** The absolute path that was looked for first. */
  readonly path: string;
  /** Template names available in the searched directories (sorted, deduplicated; partials excluded). */
  readonly available: readonly string[];
  /**
   * Every place searched, in order. @default one place: the directory of `path`, as a loader directory
   */
  readonly searched?: readonly SearchedTemplatePlace[] | undefined;
  /** The templates directory, when it does not exist (the hint then says so). */
  readonly missingDir?: string | undefined;
  /** Replaces the default hint. */
  readonly hint?: string | undefined;
}

/** `/a/x.hbs (the templates option), then /b/x.hbs (SYMPHONIZER_PROMPTS; no such directory)`. */
function listSearched(places: readonly SearchedTemplatePlace[]): string {
  return places
    .map(
      (place) => `${place.path} (${REASON_TEXT[place.reason]}${place.exists ? '' : '; no such directory'})`,
    )
    .join(', then ');
}

/**
 * No template file exists for a name given to `TemplateLoader.load()`. Code `template_not_found`.
 *
 * Its message lists every place searched, in order and with why each was searched (the templates option,
 * `SYMPHONIZER_PROMPTS`, `./prompts`, the package's prompts); its hint lists the available templates.
 */
export class TemplateNotFoundError extends SymphonizerError<PromptErrorCode> {
  /** The name that was asked for. */
  readonly template: string;
  /** The absolute path that was looked for first. */
  readonly path: string;
  /** Template names available in the searched directories, sorted. */
  readonly available: readonly string[];
  /** Every place searched, in order. */
  readonly searched: readonly SearchedTemplatePlace[];

  constructor(init: TemplateNotFoundErrorInit) {
    const searched = init.searched ?? [
      { dir: dirname(init.path), reason: 'dir', path: init.path, exists: init.missingDir === undefined },
    ];
    const hint =
      init.hint ??
      (init.missingDir !== undefined
        ? `the templates directory ${init.missingDir} does not exist`
        : init.available.length === 0
          ? 'the templates directory holds no .hbs templates'
          : `available templates: ${listForHint(init.available)}`);
    super(
      'template_not_found',
      `Template "${init.template}" not found; looked for ${listSearched(searched)}.`,
      {
        hint,
      },
    );
    this.template = init.template;
    this.path = init.path;
    this.available = init.available;
    this.searched = searched;
  }
}

/** What {@link PartialNotFoundError} is built from. */
export interface PartialNotFoundErrorInit {
  /** The template (or partial) that includes the missing partial. */
  readonly template: string;
  /** Name of the missing partial, as written after `{{>`. */
  readonly partial: string;
  /** Names of the registered partials, sorted. */
  readonly available: readonly string[];
  /** Line of the `{{> name}}` tag, when known. */
  readonly line?: number | undefined;
  /** Node key of the chain node rendering the template, when known. */
  readonly nodeKey?: string | undefined;
  /** The underlying error, if any. */
  readonly cause?: unknown;
}

/** A template includes a partial (`{{> name}}`) that is not registered. Code `partial_not_found`. */
export class PartialNotFoundError extends SymphonizerError<PromptErrorCode> {
  /** The template that includes the missing partial. */
  readonly template: string;
  /** Name of the missing partial. */
  readonly partial: string;
  /** Names of the registered partials, sorted. */
  readonly available: readonly string[];
  /** Node key of the chain node rendering the template, when known. */
  readonly nodeKey: string | undefined;

  constructor(init: PartialNotFoundErrorInit) {
    super(
      'partial_not_found',
      `Template "${init.template}"${forNode(init.nodeKey)} includes partial "${init.partial}"${atLine(init.line)}, which is not registered.`,
      {
        cause: init.cause,
        hint:
          init.available.length === 0
            ? 'no partials are registered; add prompts/partials/<name>.hbs'
            : `registered partials: ${listForHint(init.available)}`,
      },
    );
    this.template = init.template;
    this.partial = init.partial;
    this.available = init.available;
    this.nodeKey = init.nodeKey;
  }
}

/** What {@link TemplateVariableError} is built from. */
export interface TemplateVariableErrorInit {
  /** Name of the template being rendered. */
  readonly template: string;
  /** The variable as written in the template, full path included: `outline.title`, `@root.x`, `../y`. */
  readonly variable: string;
  /** Node key of the chain node rendering the template, when known. */
  readonly nodeKey?: string | undefined;
  /** Top-level variables that were provided (those whose value is not `undefined`). */
  readonly provided: readonly string[];
  /** The partial in which the variable is used, when it is not the template itself. */
  readonly partial?: string | undefined;
  /** 1-based line of the variable in the template (or partial) file. */
  readonly line?: number | undefined;
  /** A provided variable whose name is close to the missing one. */
  readonly suggestion?: string | undefined;
  /** The Handlebars error. */
  readonly cause?: unknown;
}

/**
 * A template used a variable that was not provided (strict variables). Code `template_variable`.
 *
 * Its hint lists the variables that were provided, so a typo or a missing upstream output is quick to see.
 */
export class TemplateVariableError extends SymphonizerError<PromptErrorCode> {
  /** Name of the template being rendered. */
  readonly template: string;
  /** The variable as written in the template, full path included, e.g. `outline.title`. */
  readonly variable: string;
  /** Node key of the chain node rendering the template, when known. */
  readonly nodeKey: string | undefined;
  /** Top-level variables that were provided. */
  readonly provided: string[];
  /** The partial in which the variable is used, when it is not the template itself. */
  readonly partial: string | undefined;
  /** 1-based line of the variable in the template (or partial) file, when known. */
  readonly line: number | undefined;

  constructor(init: TemplateVariableErrorInit) {
    const where =
      init.partial === undefined
        ? `template "${init.template}"${forNode(init.nodeKey)}${atLine(init.line)}`
        : `partial "${init.partial}"${atLine(init.line)}, included by template "${init.template}"${forNode(init.nodeKey)}`;
    const provided =
      init.provided.length === 0
        ? 'no variables were provided'
        : `provided variables: ${listForHint(init.provided)}`;
    const suggestion = init.suggestion === undefined ? '' : ` (did you mean "${init.suggestion}"?)`;
    super('template_variable', `Missing variable "${init.variable}" in ${where}.`, {
      cause: init.cause,
      hint: `${provided}${suggestion}; for an optional variable use {{#if ${init.variable}}} or {{default ${init.variable} "…"}}`,
    });
    this.template = init.template;
    this.variable = init.variable;
    this.nodeKey = init.nodeKey;
    this.provided = [...init.provided];
    this.partial = init.partial;
    this.line = init.line;
  }
}

/** What {@link TemplateSyntaxError} is built from. */
export interface TemplateSyntaxErrorInit {
  /** Name of the template (or partial) that failed to compile. */
  readonly template: string;
  /** Whether `template` names a template or a partial. @default 'template' */
  readonly kind?: 'template' | 'partial' | undefined;
  /** What is wrong, e.g. Handlebars' parse error message. */
  readonly detail: string;
  /** 1-based line in the template file, when known. */
  readonly line?: number | undefined;
  /** What to do about it. */
  readonly hint?: string | undefined;
  /** The Handlebars error. */
  readonly cause?: unknown;
}

/**
 * A template (or partial) does not compile: a Handlebars parse error, an unknown helper, or a misplaced
 * section marker. Code `template_syntax`. Thrown when the template is loaded, never at render time.
 */
export class TemplateSyntaxError extends SymphonizerError<PromptErrorCode> {
  /** Name of the template (or partial) that failed to compile. */
  readonly template: string;
  /** Whether `template` names a template or a partial. */
  readonly kind: 'template' | 'partial';
  /** 1-based line in the template file, when known. */
  readonly line: number | undefined;

  constructor(init: TemplateSyntaxErrorInit) {
    const kind = init.kind ?? 'template';
    const what = kind === 'partial' ? 'Partial' : 'Template';
    super(
      'template_syntax',
      `${what} "${init.template}" does not compile${atLine(init.line)}: ${init.detail}`,
      {
        cause: init.cause,
        hint: init.hint,
      },
    );
    this.template = init.template;
    this.kind = kind;
    this.line = init.line;
  }
}

/** What {@link TemplateRenderError} is built from. */
export interface TemplateRenderErrorInit {
  /** Name of the template being rendered. */
  readonly template: string;
  /** What went wrong. */
  readonly detail: string;
  /** Node key of the chain node rendering the template, when known. */
  readonly nodeKey?: string | undefined;
  /** The helper that failed, when one did. */
  readonly helper?: string | undefined;
  /** The partial in which it failed, when it is not the template itself. */
  readonly partial?: string | undefined;
  /** 1-based line, when known. */
  readonly line?: number | undefined;
  /** What to do about it. */
  readonly hint?: string | undefined;
  /** The underlying error. */
  readonly cause?: unknown;
}

/**
 * Rendering failed for a reason other than a missing variable: a helper was given the wrong kind of value
 * (`{{truncate text "ten"}}`), or a value could not be rendered. Code `template_render`.
 */
export class TemplateRenderError extends SymphonizerError<PromptErrorCode> {
  /** Name of the template being rendered. */
  readonly template: string;
  /** Node key of the chain node rendering the template, when known. */
  readonly nodeKey: string | undefined;
  /** The helper that failed, when one did. */
  readonly helper: string | undefined;
  /** The partial in which it failed, when it is not the template itself. */
  readonly partial: string | undefined;
  /** 1-based line, when known. */
  readonly line: number | undefined;

  constructor(init: TemplateRenderErrorInit) {
    const where =
      init.partial === undefined
        ? `Template "${init.template}"${forNode(init.nodeKey)}`
        : `Partial "${init.partial}" of template "${init.template}"${forNode(init.nodeKey)}`;
    const helper = init.helper === undefined ? '' : `helper "${init.helper}": `;
    super('template_render', `${where} failed to render${atLine(init.line)}: ${helper}${init.detail}`, {
      cause: init.cause,
      hint: init.hint,
    });
    this.template = init.template;
    this.nodeKey = init.nodeKey;
    this.helper = init.helper;
    this.partial = init.partial;
    this.line = init.line;
  }
}
