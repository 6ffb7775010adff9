/**
 * Whether an example module is the script Node was started with (`node examples/x.ts`), or was imported (by
 * the `symphonizer` command, a test, another module). Every example calls its `main` only in the first case,
 * so importing it has no side effects: no model call, no server, no work.
 *
 * `import.meta.main` says the same from Node 24.2; this works on every Node that runs the examples (22.12+).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * True when the module whose `import.meta` is `meta` is the entry script of the process: `process.argv[1]`
 * and the module's file are the same file once symlinks are resolved. False when `process.argv[1]` is absent
 * (a REPL, `node -e` without arguments) or either path cannot be resolved.
 *
 * @example
 * ```ts
 * if (isMain(import.meta)) await main();
 * ```
 */
export function isMain(meta: ImportMeta): boolean {
  const script = process.argv[1];
  if (script === undefined || !meta.url.startsWith('file:')) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
}
