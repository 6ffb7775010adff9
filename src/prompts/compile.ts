/**
 * Package-internal: how a prompt source becomes a render function, and how Handlebars' runtime errors become
 * ours. Not re-exported from the barrel.
 *
 * Strictness policy (documented for users on `PromptTemplate`):
 * - Handlebars compiles with `strict: true`, so `{{x}}` and `{{a.b}}` throw when `x` (or `b`) is missing.
 * - Handlebars' strict mode does not check helper arguments, so the AST is walked before compiling and every
 *   path given to a helper, a subexpression or a partial is marked strict too, except the one argument whose
 *   job is to test for presence: the first argument of `if`, `unless`, `with` and `default`.
 * - Handlebars' strict mode reads intermediate path segments without a null check, so `{{#if a.b}}` with no `a`
 *   would be a TypeError; lookups are made null-safe, which keeps that a plain "false".
 * - `knownHelpersOnly: true`: an unknown helper is a compile error at load time, never a silent empty string.
 * - Only own properties are variables. Handlebars' strict check is `name in object`, which inherited members
 *   (`constructor`, `toString`, `__proto__`) pass before its prototype-access guard turns them into an empty
 *   string and a console warning; here a strict path's last segment must be an own property, and the `lookup`
 *   helper refuses an inherited key, so both are a missing variable. Renders pass
 *   `allowProtoPropertiesByDefault: false` and `allowProtoMethodsByDefault: false`, which keep Handlebars'
 *   guard on (inherited members read as `undefined` where presence is tested) without writing to the console.
 */
import { createRequire } from 'node:module';
import type HandlebarsModule from 'handlebars';
import { SymphonizerError, errorMessage } from '../core/errors.ts';
import {
  PartialNotFoundError,
  TemplateRenderError,
  TemplateSyntaxError,
  TemplateVariableError,
} from './errors.ts';
import { HelperUsageError, eachWithNumber, ownLookup, promptHelpers } from './helpers.ts';
import type { HelperFunction } from './helpers.ts';

/** An isolated Handlebars instance, as `Handlebars.create()` returns it. */
export type HandlebarsInstance = typeof HandlebarsModule;

// Handlebars (a CommonJS package) is required on the first compile, so that importing the package does not
// load it; `require` keeps compiling synchronous.
let handlebarsModule: typeof HandlebarsModule | undefined;
function handlebars(): typeof HandlebarsModule {
  handlebarsModule ??= createRequire(import.meta.url)('handlebars') as typeof HandlebarsModule;
  return handlebarsModule;
}

/** Helpers whose first argument may be absent: they exist to test for presence. */
const PRESENCE_TESTS: ReadonlySet<string> = new Set(['if', 'unless', 'with', 'default']);

/** The helpers a template may call; anything else fails at load time (`knownHelpersOnly`). */
export const HELPER_NAMES: readonly string[] = Object.freeze([
  ...Object.keys(promptHelpers),
  'each',
  'if',
  'unless',
  'with',
  'lookup',
  'log',
]);

/**
 * Replaces `container.strict(object, name, loc)` in compiled templates (it is `in` the template function's
 * scope, where `container` is a parameter): an object or function that does not own `name` is handed on as
 * `undefined`, so Handlebars throws its own "not defined" error for an inherited member exactly as for an
 * absent one. Primitives keep Handlebars' behaviour.
 */
const OWN_STRICT =
  '(function (o, n, l) { return container.strict(' +
  "o !== null && (typeof o === 'object' || typeof o === 'function') && " +
  '!Object.prototype.hasOwnProperty.call(o, n) ? undefined : o, n, l); })';

/** Runtime options of every render: prototype access stays denied, and denying it writes no warning. */
const RUNTIME_OPTIONS: RuntimeOptions = Object.freeze({
  allowProtoPropertiesByDefault: false,
  allowProtoMethodsByDefault: false,
});

/** Handlebars' compile options, fresh per compile (the compiler mutates them). */
function compileOptions(): CompileOptions {
  return {
    noEscape: true,
    strict: true,
    knownHelpersOnly: true,
    knownHelpers: Object.fromEntries(HELPER_NAMES.map((name) => [name, true])),
    data: true,
  };
}

// --- Handlebars compiler internals -------------------------------------------------------------------------
// The compiler classes are public on every Handlebars instance but untyped; these are the members we use.

interface CompilerInstance {
  sourceNode: unknown[];
  compiler: unknown;
  opcode(name: string, ...args: unknown[]): void;
  compile(program: hbs.AST.Program, options: CompileOptions): unknown;
}
interface JavaScriptCompilerInstance {
  compiler: unknown;
  aliasable(name: string): unknown;
  useBlockParams: boolean;
  nameLookup(parent: unknown, name: string, type: string): unknown;
  push(expression: unknown): unknown;
  resolvePath(type: string, parts: readonly string[], start: number, falsy: boolean, strict: boolean): void;
  lookupBlockParam(blockParamId: readonly [number, number], parts: readonly string[], strict?: boolean): void;
  compile(
    environment: unknown,
    options: CompileOptions,
    context: undefined,
    asObject: true,
  ): TemplateSpecification;
}
interface HandlebarsCompilers {
  Compiler: new () => CompilerInstance;
  JavaScriptCompiler: new () => JavaScriptCompilerInstance;
}

interface OurCompilers {
  readonly Compiler: HandlebarsCompilers['Compiler'];
  readonly JavaScriptCompiler: HandlebarsCompilers['JavaScriptCompiler'];
}

let ourCompilers: OurCompilers | undefined;

/** Our compiler subclasses, defined once Handlebars is loaded. */
function compilers(): OurCompilers {
  if (ourCompilers !== undefined) return ourCompilers;
  const baseCompilers = handlebars() as unknown as HandlebarsCompilers;

  /** Passes a path's strict flag to block-param lookups (`{{item.name}}` in `{{#each items as |item|}}`). */
  class StrictCompiler extends baseCompilers.Compiler {
    override opcode(name: string, ...args: unknown[]): void {
      if (name === 'lookupBlockParam') {
        const path = this.sourceNode[0] as { strict?: boolean } | undefined;
        const parts = args[1] as readonly string[];
        // `{{item}}` itself always exists; only a segment below it can be missing.
        args.push(path?.strict === true && parts.length > 1);
      }
      super.opcode(name, ...args);
    }
  }
  StrictCompiler.prototype.compiler = StrictCompiler;

  /**
   * Null-safe path segments (`a.b` with no `a` is `undefined`, not a TypeError), strict block params, and
   * strict checks that accept own properties only.
   */
  class NullSafeJavaScriptCompiler extends baseCompilers.JavaScriptCompiler {
    override aliasable(name: string): unknown {
      return super.aliasable(name === 'container.strict' ? OWN_STRICT : name);
    }

    override nameLookup(parent: unknown, name: string, type: string): unknown {
      if (type === 'context' || type === 'data')
        return super.nameLookup(['(', parent, ' ?? {})'], name, type);
      return super.nameLookup(parent, name, type);
    }

    override lookupBlockParam(
      blockParamId: readonly [number, number],
      parts: readonly string[],
      strict = false,
    ): void {
      this.useBlockParams = true;
      this.push(['blockParams[', blockParamId[0], '][', blockParamId[1], ']']);
      this.resolvePath('context', parts, 1, false, strict);
    }
  }
  NullSafeJavaScriptCompiler.prototype.compiler = NullSafeJavaScriptCompiler;
  ourCompilers = { Compiler: StrictCompiler, JavaScriptCompiler: NullSafeJavaScriptCompiler };
  return ourCompilers;
}

/** A fresh, isolated Handlebars instance with our compilers and helpers; the global instance is never touched. */
export function createHandlebars(): HandlebarsInstance {
  const hb = handlebars().create();
  Object.assign(hb, compilers());
  for (const [name, helper] of Object.entries(promptHelpers)) hb.registerHelper(name, helper);
  hb.registerHelper('each', eachWithNumber(hb.helpers['each'] as HelperFunction));
  hb.registerHelper(
    'lookup',
    ownLookup(
      hb.helpers['lookup'] as HelperFunction,
      (message, loc) => new hb.Exception(message, { loc } as hbs.AST.Node),
    ),
  );
  return hb;
}

// --- AST analysis ------------------------------------------------------------------------------------------

/** A `{{> name}}` in a template. */
interface PartialReference {
  readonly name: string;
  readonly line: number;
}

/** What the walk over a template's AST learns, and the strict flags it sets on the way. */
interface Analysis {
  /** `line:column` of every path → the path as written, to name a missing variable in full. */
  readonly paths: Map<string, string>;
  readonly partials: PartialReference[];
  /** Inline partials the template defines itself (`{{#*inline "name"}}`). */
  readonly inlinePartials: Set<string>;
  /** Block parameter names (`as |item|`), which are not top-level variables. */
  readonly blockParams: Set<string>;
}

type CallNode = hbs.AST.MustacheStatement | hbs.AST.BlockStatement | hbs.AST.SubExpression;
type StrictPath = hbs.AST.PathExpression & { strict?: boolean };

function locationKey(loc: hbs.AST.SourceLocation): string {
  return `${loc.start.line}:${loc.start.column}`;
}

function analyse(program: hbs.AST.Program): Analysis {
  const analysis: Analysis = {
    paths: new Map(),
    partials: [],
    inlinePartials: new Set(),
    blockParams: new Set(),
  };

  const expression = (node: hbs.AST.Expression, strict: boolean): void => {
    if (node.type === 'PathExpression') {
      const path = node as StrictPath;
      analysis.paths.set(locationKey(path.loc), path.original);
      if (strict) path.strict = true;
    } else if (node.type === 'SubExpression') {
      call(node as hbs.AST.SubExpression);
    }
  };

  const args = (
    params: readonly hbs.AST.Expression[],
    hash: hbs.AST.Hash | undefined,
    helper?: string,
  ): void => {
    params.forEach((param, index) => {
      expression(param, !(index === 0 && helper !== undefined && PRESENCE_TESTS.has(helper)));
    });
    for (const pair of hash?.pairs ?? []) expression(pair.value, true);
  };

  const call = (node: CallNode): void => {
    const helper =
      node.path.type === 'PathExpression' ? (node.path as hbs.AST.PathExpression).original : undefined;
    expression(node.path, false);
    args(node.params, node.hash, helper);
    if (helper === 'lookup') lookupPath(node);
  };

  // `lookup` reports a missing key at the call's own location: name it `object.key` there.
  const lookupPath = (node: CallNode): void => {
    const [object, key] = node.params;
    if (object?.type !== 'PathExpression') return;
    if (key?.type !== 'StringLiteral' && key?.type !== 'NumberLiteral') return;
    const name = String((key as hbs.AST.StringLiteral | hbs.AST.NumberLiteral).value);
    const path = (object as hbs.AST.PathExpression).original;
    analysis.paths.set(
      locationKey(node.loc),
      /^[A-Za-z_$][\w$]*$/u.test(name) ? `${path}.${name}` : `${path}.[${name}]`,
    );
  };

  const block = (node: hbs.AST.Program | undefined): void => {
    for (const name of node?.blockParams ?? []) analysis.blockParams.add(name);
    for (const statement of node?.body ?? []) {
      switch (statement.type) {
        case 'MustacheStatement':
        case 'Decorator':
          call(statement as hbs.AST.MustacheStatement);
          break;
        case 'BlockStatement':
        case 'DecoratorBlock': {
          const node = statement as hbs.AST.BlockStatement;
          const first = node.params[0];
          if (
            statement.type === 'DecoratorBlock' &&
            node.path.original === 'inline' &&
            first?.type === 'StringLiteral'
          ) {
            analysis.inlinePartials.add((first as hbs.AST.StringLiteral).value);
          }
          call(node);
          block(node.program);
          block(node.inverse);
          break;
        }
        case 'PartialStatement':
        case 'PartialBlockStatement': {
          const node = statement as hbs.AST.PartialStatement | hbs.AST.PartialBlockStatement;
          if (node.name.type === 'PathExpression' && !node.name.data) {
            // A partial block (`{{#> name}}fallback{{/name}}`) renders its fallback when the partial is missing.
            if (statement.type === 'PartialStatement') {
              analysis.partials.push({ name: node.name.original, line: node.name.loc.start.line });
            }
          } else if (node.name.type === 'SubExpression') {
            call(node.name);
          }
          args(node.params, node.hash);
          if ('program' in node) block(node.program);
          break;
        }
        default:
          break;
      }
    }
  };

  block(program);
  return analysis;
}

// --- Compiling ---------------------------------------------------------------------------------------------

/** One compiled piece of source: a template's system or user part, or a partial. */
export interface CompiledUnit {
  /** Template or partial name, for messages. */
  readonly name: string;
  readonly kind: 'template' | 'partial';
  readonly render: HandlebarsTemplateDelegate;
  readonly paths: ReadonlyMap<string, string>;
  readonly partials: readonly PartialReference[];
  readonly inlinePartials: ReadonlySet<string>;
  readonly blockParams: ReadonlySet<string>;
}

/** Where a unit's source starts in its file, so Handlebars' line numbers are the file's. */
export interface UnitSource {
  readonly name: string;
  readonly kind: 'template' | 'partial';
  readonly source: string;
  /** 1-based line of the file on which `source` starts. @default 1 */
  readonly firstLine?: number | undefined;
}

/** Handlebars' parse errors say "Parse error on line N:"; its other compile errors carry `lineNumber`. */
function errorLine(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const lineNumber = (error as { lineNumber?: unknown }).lineNumber;
  if (typeof lineNumber === 'number') return lineNumber;
  const match = /on line (\d+)/u.exec(String((error as { message?: unknown }).message));
  return match === null ? undefined : Number(match[1]);
}

function syntaxError(unit: UnitSource, error: unknown): TemplateSyntaxError {
  const message = errorMessage(error);
  const unknownHelper = /unknown helper (\S+)/u.exec(message);
  return new TemplateSyntaxError({
    template: unit.name,
    kind: unit.kind,
    line: errorLine(error),
    detail:
      unknownHelper === null
        ? message.replace(/ - \d+:\d+$/u, '')
        : `unknown helper "${unknownHelper[1] ?? ''}".`,
    hint: unknownHelper === null ? undefined : `available helpers: ${HELPER_NAMES.join(', ')}`,
    cause: error,
  });
}

/**
 * Parses, checks and compiles a source eagerly (Handlebars' own `compile` defers all of that to the first
 * render), so syntax errors and unknown helpers surface when a template is loaded.
 *
 * @throws {TemplateSyntaxError} when the source does not parse or calls an unknown helper.
 */
export function compileUnit(hb: HandlebarsInstance, unit: UnitSource): CompiledUnit {
  const options = compileOptions();
  // Blank lines in front keep Handlebars' line numbers equal to the file's; the output is trimmed anyway.
  const padded = '\n'.repeat(Math.max(0, (unit.firstLine ?? 1) - 1)) + unit.source;
  try {
    const ast = hb.parse(padded, options);
    const analysis = analyse(ast);
    const { Compiler, JavaScriptCompiler } = compilers();
    const environment = new Compiler().compile(ast, options);
    const spec = new JavaScriptCompiler().compile(environment, options, undefined, true);
    const template = hb.template(spec);
    return {
      name: unit.name,
      kind: unit.kind,
      render: (context, runtimeOptions) => template(context, { ...runtimeOptions, ...RUNTIME_OPTIONS }),
      paths: analysis.paths,
      partials: analysis.partials,
      inlinePartials: analysis.inlinePartials,
      blockParams: analysis.blockParams,
    };
  } catch (error) {
    throw syntaxError(unit, error);
  }
}

// --- Runtime errors ----------------------------------------------------------------------------------------

/** The innermost unit an error passed through, recorded by partial wrappers so it is named correctly. */
const origins = new WeakMap<object, CompiledUnit>();

/** Records `unit` as where `error` arose, unless an inner unit already has. */
export function markOrigin(error: unknown, unit: CompiledUnit): void {
  if (typeof error === 'object' && error !== null && !origins.has(error)) origins.set(error, unit);
}

/** Context of one render call, for error messages. */
export interface RenderContext {
  readonly template: string;
  readonly nodeKey: string | undefined;
  readonly provided: readonly string[];
  readonly partialNames: () => readonly string[];
}

/** Turns anything a render threw into one of our errors, naming the template, node, variable or helper. */
export function translateRenderError(
  error: unknown,
  unit: CompiledUnit,
  context: RenderContext,
): SymphonizerError {
  const origin = (typeof error === 'object' && error !== null ? origins.get(error) : undefined) ?? unit;
  const partial = origin.kind === 'partial' ? origin.name : undefined;
  const { template, nodeKey } = context;
  if (error instanceof HelperUsageError) {
    return new TemplateRenderError({
      template,
      nodeKey,
      partial,
      helper: error.helper,
      line: error.line,
      detail: error.detail,
      hint: error.hint,
      cause: error,
    });
  }
  if (SymphonizerError.isInstance(error)) return error;
  const message = errorMessage(error);
  if (error instanceof handlebars().Exception) {
    const missing = /^"(.*)" not defined in /su.exec(message);
    if (missing !== null) {
      const line = errorLine(error);
      const column = (error as { column?: unknown }).column;
      const variable =
        (line !== undefined && typeof column === 'number'
          ? origin.paths.get(`${line}:${column}`)
          : undefined) ??
        missing[1] ??
        '?';
      return new TemplateVariableError({
        template,
        variable,
        nodeKey,
        partial,
        line,
        provided: context.provided,
        suggestion: suggest(variable, context.provided, origin.blockParams),
        cause: error,
      });
    }
    const partialMissing = /^The partial (.+) could not be found/su.exec(message);
    if (partialMissing !== null) {
      return new PartialNotFoundError({
        template,
        nodeKey,
        partial: partialMissing[1] ?? '?',
        available: context.partialNames(),
        cause: error,
      });
    }
  }
  return new TemplateRenderError({
    template,
    nodeKey,
    partial,
    line: errorLine(error),
    detail: message,
    cause: error,
  });
}

/**
 * A provided name close to the missing variable's first segment (a likely typo), if there is one: same name
 * in another case, or within one edit (two for names of 8+ characters), a swap of neighbours counting as one.
 */
function suggest(
  variable: string,
  provided: readonly string[],
  blockParams: ReadonlySet<string>,
): string | undefined {
  if (variable.startsWith('@') || variable.startsWith('.')) return undefined;
  const head = /^(?:this\.)?([^./[\]]+)/u.exec(variable)?.[1];
  if (head === undefined || blockParams.has(head) || provided.includes(head)) return undefined;
  const limit = head.length >= 8 ? 2 : head.length >= 4 ? 1 : 0;
  let best: { name: string; distance: number } | undefined;
  for (const name of provided) {
    const distance = name.toLowerCase() === head.toLowerCase() ? 0 : editDistance(name, head);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}
