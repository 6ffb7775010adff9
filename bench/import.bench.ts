/**
 * Import cost of each entry point of the package as users get it: the compiled `dist/` (built first when it
 * is missing or older than `src/`), one fresh Node process per import, medians of `BENCH_RUNS` (default 7)
 * alternating rounds. Reports the time of the `import()` itself and the RSS after it, and the empty-process
 * RSS as the floor. Run by `npm run bench`; alone with `node bench/import.bench.ts [--json]`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './util.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
const runs = Number(process.env['BENCH_RUNS'] ?? 7);

/** Entry point → compiled module, as the exports map of package.json lists them. */
const entries: Readonly<Record<string, string>> = {
  'symphonizer/core': 'dist/src/core/index.js',
  'symphonizer/testing': 'dist/src/testing.js',
  'symphonizer/prompts': 'dist/src/prompts/index.js',
  'symphonizer/providers': 'dist/src/providers/index.js',
  'symphonizer/chain': 'dist/src/chain/index.js',
  'symphonizer/eval': 'dist/src/eval/index.js',
  'symphonizer/agents': 'dist/agents/index.js',
  symphonizer: 'dist/src/index.js',
};

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

if (
  !existsSync(join(root, 'dist/src/index.js')) ||
  statSync(join(root, 'dist/src/index.js')).mtimeMs <
    Math.max(newestMtime(join(root, 'src')), newestMtime(join(root, 'agents')))
) {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
}

interface Sample {
  readonly ms: number;
  readonly rssMb: number;
  readonly sdk: boolean;
  readonly sqlite: boolean;
}

/** One fresh process: time the import, then report RSS and whether an SDK or SQLite got loaded. */
function sample(file: string | undefined): Sample {
  const code =
    file === undefined
      ? `console.log(JSON.stringify({ ms: 0, rssMb: process.memoryUsage().rss / 1048576, sdk: false, sqlite: false }))`
      : `const { registerHooks } = await import('node:module');
         const urls = [];
         registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
         const t = performance.now(); await import(${JSON.stringify(join(root, file))}); const ms = performance.now() - t;
         console.log(JSON.stringify({ ms, rssMb: process.memoryUsage().rss / 1048576,
           sdk: urls.some((u) => /node_modules\\/(openai|@anthropic-ai)\\//u.test(u)),
           sqlite: process.moduleLoadList.some((m) => m.includes('sqlite')) }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`import of ${file ?? 'nothing'} failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Sample;
}

const samples = new Map<string, Sample[]>([
  ['(empty process)', []],
  ...Object.keys(entries).map((k) => [k, []] as [string, Sample[]]),
]);
for (let round = 0; round < runs; round++) {
  const names = [...samples.keys()];
  if (round % 2 === 1) names.reverse();
  for (const name of names) samples.get(name)?.push(sample(entries[name]));
}

const rows = [...samples].map(([name, list]) => ({
  entry: name,
  importMs: median(list.map((s) => s.ms)),
  rssMb: median(list.map((s) => s.rssMb)),
  sdkLoaded: list.some((s) => s.sdk),
  sqliteLoaded: list.some((s) => s.sqlite),
}));
if (args.json) {
  console.log(JSON.stringify({ node: process.version, runs, rows }, null, 2));
} else {
  console.log(
    `\n## Import cost per entry point (compiled dist/, Node ${process.version}, medians of ${runs} fresh processes)\n`,
  );
  console.log('| Entry point | import (ms) | RSS after (MB) | provider SDK loaded | node:sqlite loaded |');
  console.log('| --- | ---: | ---: | --- | --- |');
  for (const row of rows)
    console.log(
      `| \`${row.entry}\` | ${row.importMs.toFixed(1)} | ${row.rssMb.toFixed(0)} | ${row.sdkLoaded ? 'yes' : 'no'} | ${row.sqliteLoaded ? 'yes' : 'no'} |`,
    );
}
