/**
 * Summarises V8 CPU profiles (`.cpuprofile`, from `node bench/eval.bench.ts --cpu-prof`): self time by
 * function (with file:line), by file, and by area of the code base, plus the inclusive time of a few
 * functions of interest (store writes, cache, scoring, composition).
 *
 *   node bench/eval-profile.ts <file-or-dir.cpuprofile>... [--top 30] [--json]
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const root = join(import.meta.dirname, '..');

/** Where a frame lives, as a short label: `src/eval/store.ts`, `node:sqlite`, `zod`, `(gc)`. */
export function fileOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0)
    return `node_modules/${path
      .slice(nm + 14)
      .split('/')
      .slice(0, 1)
      .join('/')}`;
  return relative(root, path);
}

/** The area a file belongs to, for the coarse breakdown. */
export function areaOf(file: string): string {
  if (file.startsWith('src/')) return file.split('/').slice(0, 2).join('/');
  if (file.startsWith('node_modules/')) return file;
  if (file.startsWith('node:')) return 'node internals';
  if (file === '(garbage collector)') return 'GC';
  if (file === '(idle)' || file === '(program)' || file === '(root)') return file;
  return file.startsWith('bench/') ? 'bench' : file;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly byFunction: readonly { name: string; ms: number }[];
  readonly byFile: readonly { name: string; ms: number }[];
  readonly byArea: readonly { name: string; ms: number }[];
  /** Inclusive time (the function and everything it called) of the frames matched by `inclusive`. */
  readonly inclusive: readonly { name: string; ms: number }[];
}

/** Self and inclusive times of one profile. `inclusive` maps a label to a predicate on frames. */
export function summariseProfile(
  profile: CpuProfile,
  inclusive: Readonly<Record<string, (frame: CallFrame, file: string) => boolean>> = {},
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    totalUs += dt;
    self.set(id, (self.get(id) ?? 0) + dt);
  });
  const add = (map: Map<string, number>, key: string, us: number): void => {
    map.set(key, (map.get(key) ?? 0) + us);
  };
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const area = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const f = fileOf(frame);
    add(fn, `${frame.functionName || '(anonymous)'}  ${f}:${frame.lineNumber + 1}`, us);
    add(file, f, us);
    add(area, areaOf(f), us);
    // Inclusive: each label counts a sample once, however many matching frames are on its stack.
    const labels = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frameAt = byId.get(at)!.callFrame;
      const fileAt = fileOf(frameAt);
      for (const [label, test] of Object.entries(inclusive)) if (test(frameAt, fileAt)) labels.add(label);
    }
    for (const label of labels) add(incl, label, us);
  }
  const sorted = (map: Map<string, number>) =>
    [...map].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return {
    totalMs: totalUs / 1000,
    byFunction: sorted(fn),
    byFile: sorted(file),
    byArea: sorted(area),
    inclusive: sorted(incl),
  };
}

/** Frames of interest for the eval batch, by what they stand for. */
export const evalFocus: Readonly<Record<string, (frame: CallFrame, file: string) => boolean>> = {
  'run store: putRow (src/eval/store.ts)': (f, file) =>
    file === 'src/eval/store.ts' && f.functionName === 'putRow',
  'run store: final rows() + summarize': (f, file) =>
    (file === 'src/eval/store.ts' && f.functionName === 'rows') ||
    (file === 'src/eval/report.ts' && f.functionName === 'summarize'),
  'dataset: counting pre-pass (countUnits)': (f, file) =>
    file === 'src/eval/batch.ts' && f.functionName === 'countUnits',
  'dataset: reading + input validation': (_f, file) => file === 'src/eval/dataset.ts',
  'response cache (src/eval/cache.ts)': (_f, file) => file === 'src/eval/cache.ts',
  'scoring (#scored, scorers)': (f, file) =>
    file === 'src/eval/scorers.ts' || (file === 'src/eval/batch.ts' && f.functionName === '#scored'),
  'toJson (JSON round trip per record)': (f, file) =>
    file === 'src/eval/batch.ts' && f.functionName === 'toJson',
  'chain: compose + node runners (src/chain)': (_f, file) => file.startsWith('src/chain/'),
  'ModelClient (src/providers/model-client.ts)': (_f, file) => file === 'src/providers/model-client.ts',
  'simulated provider': (_f, file) => file.startsWith('src/providers/simulated/'),
  'core scheduler (src/core)': (_f, file) => file.startsWith('src/core/'),
  zod: (_f, file) => file === 'node_modules/zod',
  'templates (handlebars)': (_f, file) =>
    file === 'node_modules/handlebars' || file.startsWith('src/prompts/'),
  'node:sqlite': (f) => f.url === '' && /^(run|get|all|iterate|exec|prepare)$/.test(f.functionName),
  GC: (_f, file) => file === '(garbage collector)',
};

function profilesIn(paths: readonly string[]): string[] {
  return paths.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => join(p, f))
      : [p],
  );
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' }, json: { type: 'boolean', default: false } },
  });
  const top = Number(values.top);
  const results = profilesIn(positionals).map((path) => ({
    path,
    summary: summariseProfile(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, evalFocus),
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  } else {
    const pct = (ms: number, total: number): string => `${((100 * ms) / total).toFixed(1).padStart(5)}%`;
    for (const { path, summary } of results) {
      const t = summary.totalMs;
      const list = (title: string, rows: readonly { name: string; ms: number }[], n: number): void => {
        console.log(`\n${title}`);
        for (const r of rows.slice(0, n))
          console.log(`${pct(r.ms, t)}  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`);
      };
      console.log(`\n=== ${path}: ${(t / 1000).toFixed(2)} s sampled`);
      list('Inclusive (function and callees):', summary.inclusive, 100);
      list('Self time by area:', summary.byArea, 15);
      list('Self time by file:', summary.byFile, 20);
      list('Self time by function:', summary.byFunction, top);
    }
  }
}
