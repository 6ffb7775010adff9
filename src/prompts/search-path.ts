/**
 * Where template names are looked up: the directories a {@link TemplateLoader} searches, in order, and the
 * package's own `prompts/` folder found from this module's location.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variable naming a directory of the user's templates. */
export const PROMPTS_ENV_VAR = 'SYMPHONIZER_PROMPTS';

/** The `name` in the package's `package.json`, which marks its root. */
const PACKAGE_NAME = 'symphonizer';

/**
 * Why a directory is searched:
 * - `dir`: it is the one directory of a single-directory loader (`new TemplateLoader({ dir })`);
 * - `option`: it was given as the chain's `templates` option (or the loader's `projectDir`);
 * - `env`: it is named by `SYMPHONIZER_PROMPTS`;
 * - `cwd`: it is `./prompts` under the current working directory, which exists;
 * - `package`: it is the package's own `prompts/` folder (the ready agents' templates and the stock partials).
 */
export type TemplateDirReason = 'dir' | 'option' | 'env' | 'cwd' | 'package';

/** One directory of a loader's search path. */
export interface TemplateSearchDir {
  /** Absolute directory of the templates. */
  readonly dir: string;
  /** Absolute directory of its partials (`${dir}/partials` unless the loader was given `partialsDir`). */
  readonly partialsDir: string;
  /** Why it is searched. */
  readonly reason: TemplateDirReason;
}

/** How each {@link TemplateDirReason} reads in messages. */
export const REASON_TEXT: Readonly<Record<TemplateDirReason, string>> = {
  dir: 'the loader directory',
  option: 'the templates option',
  env: PROMPTS_ENV_VAR,
  cwd: './prompts in the working directory',
  package: "symphonizer's own prompts",
};

/**
 * The nearest directory at or above `from` holding a `package.json` whose `name` is `packageName`, or
 * `undefined` when there is none. A `package.json` with another name (or none, or one that does not parse)
 * is passed over, so `dist/package.json` files or a workspace root do not stop the walk.
 *
 * @param from - Directory to start from, e.g. the directory of this module (`src/prompts/` in the repository,
 *   `dist/src/prompts/` in the installed package).
 */
export function findPackageRoot(from: string, packageName: string = PACKAGE_NAME): string | undefined {
  let dir = resolve(from);
  for (;;) {
    if (packageNameAt(dir) === packageName) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function packageNameAt(dir: string): unknown {
  let text: string;
  try {
    text = readFileSync(join(dir, 'package.json'), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return (JSON.parse(text) as { name?: unknown } | null)?.name;
  } catch {
    return undefined;
  }
}

let packagePrompts: string | undefined;

/**
 * The package's own `prompts/` folder: `prompts/` at the package root, found by walking up from this module
 * to the `package.json` named `symphonizer` (so it is the same folder from `src/prompts/` in the repository and
 * from `dist/src/prompts/` in the installed package). Found on first call, then remembered.
 */
export function packagePromptsDir(): string {
  packagePrompts ??= promptsDirFrom(import.meta.url);
  return packagePrompts;
}

/**
 * `prompts/` at the root of the package holding the module at `moduleUrl`; when no such root is found (a
 * bundled copy), `prompts/` two levels above the module, where it is in the repository.
 */
export function promptsDirFrom(moduleUrl: string): string {
  const moduleDir = dirname(fileURLToPath(moduleUrl));
  const root = findPackageRoot(moduleDir);
  return root === undefined ? resolve(moduleDir, '../../prompts') : join(root, 'prompts');
}

/** Whether `path` is an existing directory. */
export function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/** What {@link layeredSearchPath} reads; each value is read when it is called, never remembered. */
export interface SearchPathInputs {
  /** The directory given as the chain's `templates` option (absolute), if any. */
  readonly projectDir?: string | undefined;
  /** Partials directory of `projectDir`, if not `${projectDir}/partials`. */
  readonly projectPartialsDir?: string | undefined;
  /** The environment holding `SYMPHONIZER_PROMPTS`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The current working directory. */
  readonly cwd: string;
}

/**
 * The directories a layered loader searches, in order: `projectDir` (when given), `SYMPHONIZER_PROMPTS`
 * (when set; relative to `cwd`), `./prompts` under `cwd` (when it exists) and the package's own prompts.
 * A directory that appears twice is searched once, for its first reason (in this repository `./prompts` is
 * the package's folder). Costs one `stat` (of `./prompts`).
 */
export function layeredSearchPath(inputs: SearchPathInputs): TemplateSearchDir[] {
  const dirs: TemplateSearchDir[] = [];
  const add = (dir: string, reason: TemplateDirReason, partialsDir?: string): void => {
    if (dirs.some((entry) => entry.dir === dir)) return;
    dirs.push({ dir, partialsDir: partialsDir ?? join(dir, 'partials'), reason });
  };
  if (inputs.projectDir !== undefined) add(inputs.projectDir, 'option', inputs.projectPartialsDir);
  const fromEnv = inputs.env[PROMPTS_ENV_VAR]?.trim();
  if (fromEnv !== undefined && fromEnv !== '') add(resolve(inputs.cwd, fromEnv), 'env');
  const local = resolve(inputs.cwd, 'prompts');
  if (isDirectory(local)) add(local, 'cwd');
  add(packagePromptsDir(), 'package');
  return dirs;
}
