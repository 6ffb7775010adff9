/**
 * Loading a user's chain module: resolve the path against the working directory, import it (`.ts` runs
 * directly on Node 24), and pick the exported chain.
 */
import { stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ChainBuilder } from '../chain/builder.ts';
import { Chain } from '../chain/chain.ts';
import type { ChainEvent, ChainResult, NodeOverride } from '../chain/types.ts';
import { CliError } from './errors.ts';
import { errorMessage } from '../core/errors.ts';

/** Run options the command passes to a chain (a subset of `ChainRunOptions`). */
export interface LoadedRunOptions {
  readonly signal?: AbortSignal | undefined;
  readonly onEvent?: ((event: ChainEvent) => void) | undefined;
  readonly overrides?: Readonly<Record<string, NodeOverride>> | undefined;
  readonly streamTokens?: boolean | undefined;
}

/**
 * What the command needs of a chain. A `Chain` of this package satisfies it; so does a chain built by
 * another copy of symphonizer (a user module may resolve the package from elsewhere).
 */
export interface LoadedChain {
  /** The chain's name (`'chain'` when it has none). */
  readonly name: string;
  /** Node names in definition order (empty when the chain does not say). */
  readonly nodes: readonly string[];
  /** Runs the chain once. */
  run(input: unknown, options: LoadedRunOptions): Promise<ChainResult<Record<string, unknown>>>;
  /** The graph as a Mermaid flowchart. */
  toMermaid(): string;
  /** The graph in Graphviz DOT. */
  toDot(): string;
}

/** A module that was found and imported. */
export interface LoadedModule {
  /** Absolute path of the module file. */
  readonly path: string;
  /** Name of the export the chain came from. */
  readonly exportName: string;
  readonly chain: LoadedChain;
  /** The chain object as the module exported it (a `Chain`, or a lookalike from another copy). */
  readonly raw: unknown;
  /** Every export of the module, e.g. to find the `scorers` next to the chain. */
  readonly exports: Readonly<Record<string, unknown>>;
}

/** A module that was found and imported, whatever it exports. */
export interface ImportedModule {
  /** Absolute path of the module file. */
  readonly path: string;
  /** Its exports. */
  readonly exports: Readonly<Record<string, unknown>>;
}

const extensions = ['.ts', '.mts', '.js', '.mjs'];

/**
 * Resolves `specifier` against `cwd` (adding `.ts`, `.mts`, `.js` or `.mjs` when it has no extension and the
 * bare path does not exist), imports it and picks its chain.
 * @throws {CliError} `module_not_found` (with every path tried), `module_load_failed` (the import threw), or
 *   `no_chain` (see {@link pickChain}).
 */
export async function loadChain(specifier: string, cwd: string, exportName?: string): Promise<LoadedModule> {
  const { path, exports } = await importModule(specifier, cwd);
  const picked = pickChain(exports, path, exportName);
  return {
    path,
    exportName: picked.exportName,
    chain: picked.chain,
    raw: exports[picked.exportName],
    exports,
  };
}

/**
 * Resolves `specifier` against `cwd` as {@link loadChain} does and imports it, without looking at its exports.
 * @param kind What the module is, for the not-found message (`Chain module`, `Scorers module`, ...).
 * @throws {CliError} `module_not_found` (with every path tried) or `module_load_failed` (the import threw).
 */
export async function importModule(
  specifier: string,
  cwd: string,
  kind = 'Chain module',
): Promise<ImportedModule> {
  const path = await resolveModule(specifier, cwd, kind);
  try {
    return { path, exports: (await import(pathToFileURL(path).href)) as Record<string, unknown> };
  } catch (error) {
    const reason = errorMessage(error);
    throw new CliError('module_load_failed', `Could not load ${path}: ${reason}`, {
      cause: error,
      hint: hintForLoadError(error, path),
    });
  }
}

/**
 * Picks the chain among a module's exports: the export named `exportName` when given, else the only export
 * that is a chain (one Chain object exported under several names counts once).
 * @throws {CliError} `no_chain`, listing the exports found.
 */
export function pickChain(
  namespace: Readonly<Record<string, unknown>>,
  path: string,
  exportName?: string,
): { exportName: string; chain: LoadedChain } {
  const names = Object.keys(namespace).sort();
  const listing =
    names.length === 0
      ? ['  (the module exports nothing)']
      : names.map((n) => `  ${n}: ${describeExport(namespace[n])}`);
  if (exportName !== undefined) {
    if (!(exportName in namespace)) {
      throw new CliError('no_chain', `${path} has no export named "${exportName}".`, {
        hint:
          chainExports(namespace).length > 0
            ? `chains exported: ${chainExports(namespace).join(', ')}`
            : undefined,
        details: ['exports found:', ...listing],
      });
    }
    const value = namespace[exportName];
    if (!isChain(value)) {
      throw new CliError(
        'no_chain',
        `Export "${exportName}" of ${path} is not a chain (it is ${describeExport(value)}).`,
        {
          hint: isBuilder(value) ? 'export the result of .build(), not the builder' : undefined,
          details: ['exports found:', ...listing],
        },
      );
    }
    return { exportName, chain: normalize(value) };
  }
  const found = chainExports(namespace);
  const distinct = new Set(found.map((n) => namespace[n]));
  const first = found[0];
  if (first === undefined) {
    const builders = names.filter((n) => isBuilder(namespace[n]));
    throw new CliError('no_chain', `${path} exports no chain.`, {
      hint:
        builders.length > 0
          ? `export the result of .build(): ${builders.join(', ')} ${builders.length === 1 ? 'is a builder' : 'are builders'}`
          : 'export a chain built with chain({ input }).prompt(...).build()',
      details: ['exports found:', ...listing],
    });
  }
  if (distinct.size > 1) {
    throw new CliError('no_chain', `${path} exports ${distinct.size} chains: ${found.join(', ')}.`, {
      hint: `pick one with --export <name>`,
    });
  }
  // Prefer a named export over `default` when both hold the same chain.
  const name = found.find((n) => n !== 'default') ?? first;
  return { exportName: name, chain: normalize(namespace[name] as ChainLike) };
}

/** The shape a chain from any copy of symphonizer has. */
interface ChainLike {
  readonly name?: unknown;
  readonly nodes?: unknown;
  readonly inputSchema: unknown;
  run(input: unknown, options: LoadedRunOptions): Promise<ChainResult<Record<string, unknown>>>;
  toMermaid(): string;
  toDot?: unknown;
}

/**
 * True for a `Chain`, or for an object shaped like one (`inputSchema`, `run`, `toMermaid`): a user module may
 * build its chain with another copy of symphonizer, whose class is not ours.
 */
export function isChain(value: unknown): value is ChainLike {
  if (value instanceof Chain) return true;
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return 'inputSchema' in v && typeof v.run === 'function' && typeof v.toMermaid === 'function';
}

function isBuilder(value: unknown): boolean {
  if (value instanceof ChainBuilder) return true;
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.build === 'function' && typeof v.prompt === 'function' && typeof v.agent === 'function';
}

function chainExports(namespace: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(namespace)
    .filter((n) => isChain(namespace[n]))
    .sort();
}

function normalize(value: ChainLike): LoadedChain {
  const name = typeof value.name === 'string' ? value.name : 'chain';
  const nodes = Array.isArray(value.nodes)
    ? value.nodes.filter((n): n is string => typeof n === 'string')
    : [];
  const toDot = value.toDot;
  return {
    name,
    nodes,
    run: (input, options) => value.run(input, options),
    toMermaid: () => value.toMermaid(),
    toDot: () => {
      if (typeof toDot !== 'function') {
        throw new CliError('no_chain', `Chain "${name}" cannot draw itself as DOT (it has no toDot()).`, {
          hint: 'use --format mermaid, or upgrade the symphonizer the module imports',
        });
      }
      return String((toDot as () => unknown).call(value));
    },
  };
}

/** What an export is, for listings in error messages: `a chain`, `a function`, `an array`, ... */
export function describeExport(value: unknown): string {
  if (value === null) return 'null';
  if (isChain(value)) return 'a chain';
  if (isBuilder(value)) return 'a chain builder (call .build())';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') {
    const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
      ?.name;
    return Array.isArray(value)
      ? 'an array'
      : typeof ctor === 'string' && ctor !== 'Object'
        ? `a ${ctor}`
        : 'an object';
  }
  return `a ${typeof value}`;
}

async function resolveModule(specifier: string, cwd: string, kind: string): Promise<string> {
  const base = resolve(cwd, specifier);
  const tried = [base];
  if (await isFile(base)) return base;
  if (extname(base) === '') {
    for (const ext of extensions) {
      tried.push(base + ext);
      if (await isFile(base + ext)) return base + ext;
    }
  }
  throw new CliError('module_not_found', `${kind} not found: ${base}`, {
    hint: `paths are resolved against the working directory (${cwd})`,
    details: tried.length > 1 ? ['tried:', ...tried.map((p) => `  ${p}`)] : [],
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function hintForLoadError(error: unknown, path: string): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND')
    return 'a module it imports is missing; check its import paths and installed packages';
  if (code === 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING')
    return 'Node does not strip types under node_modules; build it to .js';
  if (code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX')
    return 'Node runs TypeScript by stripping types: enums, namespaces and parameter properties need a build step';
  if (path.endsWith('.ts') && error instanceof SyntaxError)
    return 'Node 22.18+ or 24 is needed to run a .ts module directly';
  return undefined;
}
