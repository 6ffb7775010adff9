// What users get: `npm pack` (which builds through `prepack`), the tarball installed into a fresh app with
// its own package.json, then that app type-checks and runs a typed fan-out/fan-in chain with a ready agent,
// and the `symphonizer` bin runs --help, graph, run and eval. Dependencies come from the npm cache the
// project's own install filled (`--prefer-offline`).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const node = process.execPath;
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const npmCli = process.env['npm_execpath'];

/** Runs npm with this process's Node (Node 24 under `npm test`), whatever Node the system has. */
async function npm(args: readonly string[], cwd: string): Promise<string> {
  const command = npmCli !== undefined && npmCli.endsWith('.js') ? node : 'npm';
  const argv = command === node && npmCli !== undefined ? [npmCli, ...args] : [...args];
  const { stdout } = await run(command, argv, { cwd, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** No provider key, no model override: the app runs on the offline simulated model. */
function cleanEnv(): NodeJS.ProcessEnv {
  const dropped = new Set([
    'OPENAI_API_KEY',
    'ANTHROPIC_API_KEY',
    'SYMPHONIZER_MODEL',
    'SYMPHONIZER_PROMPTS',
  ]);
  // npm sets npm_* for the scripts it runs; an app install must not inherit the project's own settings.
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !dropped.has(name) && !name.startsWith('npm_')),
  );
}

const appChain = `import { z } from 'zod';
import { chain, type ChainResult } from 'symphonizer';
import { Composition, DAGNote } from 'symphonizer/core';
import { classifier, summarizer } from 'symphonizer/agents';
import { createSimulatedProvider } from 'symphonizer/providers';
import { exactMatch } from 'symphonizer/eval';
import { TemplateLoader } from 'symphonizer/prompts';
import { chain as chainFromSubpath } from 'symphonizer/chain';
import { createSimulatedProvider as simulated } from 'symphonizer/testing';

void [Composition, DAGNote, createSimulatedProvider, TemplateLoader, chainFromSubpath, simulated];

const Angle = z.object({ angle: z.string(), facts: z.array(z.string()).min(1) });

export const brief = chain({ name: 'brief', input: z.object({ topic: z.string().min(1) }), model: 'sim:app' })
  .prompt('history', { prompt: ({ input }) => \`History of \${input.topic}\`, output: Angle })
  .prompt('science', { prompt: ({ input }) => \`Science of \${input.topic}\`, output: Angle })
  .prompt('merge', {
    after: ['history', 'science'],
    prompt: ({ history, science }) => \`Merge: \${[...history.facts, ...science.facts].join('; ')}\`,
  })
  .prompt('summary', summarizer({ from: 'merge' }))
  .prompt('kind', classifier({ labels: ['news', 'essay'] as const, from: 'merge' }))
  .build();

export const scorers = [exactMatch({ name: 'kind', node: 'kind' })];

if (process.argv[2] === 'main') {
  const result: ChainResult<{ history: z.output<typeof Angle>; summary: string; kind: { label: 'news' | 'essay' } }> =
    await brief.run({ topic: 'tides' });
  const label: 'news' | 'essay' = result.outputs.kind.label;
  const facts: string[] = result.outputs.history.facts;
  console.log(JSON.stringify({ label, facts: facts.length, summary: typeof result.outputs.summary, nodes: result.trace.length }));
}
`;

let dir: string | undefined;
let app = '';

beforeAll(async () => {
  const temp = mkdtempSync(join(tmpdir(), 'symphonizer-install-'));
  dir = temp;
  app = join(temp, 'app');
  await npm(['pack', '--pack-destination', temp, '--silent'], root);
  const tarball = readdirSync(temp).find((name) => name.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack wrote no tarball into ${temp}`);
  rmSync(app, { recursive: true, force: true });
  await run('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await npm(
    ['install', join(temp, tarball), 'zod', '@types/node@24', '--prefer-offline', '--no-audit', '--no-fund'],
    app,
  );
  writeFileSync(join(app, 'chain.ts'), appChain);
  // The research-report example as a user copies it: its imports of this repo's sources become the package's.
  mkdirSync(join(app, 'examples'));
  for (const file of ['research-report.ts', 'model.ts', 'is-main.ts']) {
    const source = readFileSync(join(root, 'examples', file), 'utf8')
      .replaceAll("'../src/index.ts'", "'symphonizer'")
      .replaceAll("'../agents/index.ts'", "'symphonizer/agents'");
    if (/from '\.\.\//u.test(source))
      throw new Error(`examples/${file} imports more of the repo than the package`);
    writeFileSync(join(app, 'examples', file), source);
  }
  writeFileSync(join(app, 'rows.jsonl'), '{"id":"a","topic":"tides","expected":{"label":"news"}}\n');
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
        skipLibCheck: true,
        allowImportingTsExtensions: true,
      },
      include: ['chain.ts'],
    }),
  );
}, 180_000);

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball installed into a fresh app', () => {
  it('type-checks an app that imports every entry point, with the types of its chain', async () => {
    const result = await run(node, [tsc, '-p', app], { cwd: app }).catch((error: unknown) => ({
      stdout:
        (error as { stdout?: string }).stdout ?? (error instanceof Error ? error.message : 'tsc failed'),
    }));
    expect(result.stdout).toBe('');
    // tsc over the app and every declaration it reaches: seconds on a quiet machine, more on a loaded one.
  }, 60_000);

  it('runs a typed fan-out/fan-in chain with ready agents on the simulated model', async () => {
    const { stdout } = await run(node, ['chain.ts', 'main'], { cwd: app, env: cleanEnv() });
    const printed = JSON.parse(stdout) as { label: string; facts: number; summary: string; nodes: number };
    expect(['news', 'essay']).toContain(printed.label);
    expect(printed.facts).toBeGreaterThan(0);
    expect(printed.summary).toBe('string');
    expect(printed.nodes).toBe(5);
  });

  it('ships the bin: --help, graph without running, run, and eval', async () => {
    const bin = join(app, 'node_modules/.bin/symphonizer');
    const opts = { cwd: app, env: cleanEnv() };
    const help = await run(node, [bin, '--help'], opts);
    expect(help.stdout).toMatch(/Usage: symphonizer/u);
    const graph = await run(node, [bin, 'graph', 'chain.ts'], opts);
    expect(graph.stdout).toContain('history');
    expect(graph.stdout).toContain('summary');
    const ran = await run(node, [bin, 'run', 'chain.ts', '--input', '{"topic":"tides"}', '--json'], opts);
    const result = JSON.parse(ran.stdout) as { outputs: Record<string, unknown> };
    expect(Object.keys(result.outputs).sort()).toEqual(['history', 'kind', 'merge', 'science', 'summary']);
    const scored = await run(
      node,
      [bin, 'eval', 'chain.ts', '--dataset', 'rows.jsonl', '--store', 'runs.sqlite', '--json'],
      opts,
    );
    const summary = JSON.parse(scored.stdout) as { summary: { total?: number; rows?: number } };
    expect(JSON.stringify(summary)).toMatch(/"error":0/u);
  });

  it('draws the copied research-report example with the bin without running it, then runs it', async () => {
    const bin = join(app, 'node_modules/.bin/symphonizer');
    const opts = { cwd: app, env: cleanEnv() };
    const graph = await run(node, [bin, 'graph', 'examples/research-report.ts'], opts);
    expect(graph.stdout).toMatch(/^(flowchart|graph) /mu);
    for (const name of ['outline', 'draft', 'critique']) expect(graph.stdout).toContain(name);
    // Nothing ran: no outputs, usage or trace lines.
    expect(graph.stdout).not.toMatch(/tokens|usage|trace|cost/iu);
    expect(graph.stderr).toBe('');
    const direct = await run(node, ['examples/research-report.ts', 'ocean tides'], opts);
    expect(direct.stdout.length).toBeGreaterThan(0);
  });

  it('ships compiled code, declarations, the agents and the prompts, and no source maps', async () => {
    const files = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], root);
    const listed = (JSON.parse(files) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    expect(listed).toContain('dist/src/index.js');
    expect(listed).toContain('dist/src/index.d.ts');
    expect(listed).toContain('dist/agents/index.js');
    expect(listed).toContain('prompts/agents/classifier.hbs');
    expect(listed.filter((path) => path.endsWith('.map'))).toEqual([]);
    expect(listed.filter((path) => path.startsWith('test/') || path.startsWith('src/'))).toEqual([]);
  });
});
