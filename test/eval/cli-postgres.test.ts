// The command on a PostgreSQL run store (a real server, test/support/postgres-server.ts): eval --store
// postgres://…, resumed; its response cache in the same database; runs and compare reading it; and a URL
// with a password that never reaches the output.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipPostgres, startPostgresServer, type PostgresTestServer } from '../support/postgres-server.ts';
import { freePort } from '../support/server-process.ts';

const root = resolve(import.meta.dirname, '../..');
const chainModule = 'test/cli/fixtures/eval-chain.ts';
const dataset = 'test/cli/fixtures/eval-dataset.jsonl';

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[]): Promise<Outcome> {
  const dropped = [
    'SYMPHONIZER_MODEL',
    'OPENAI_API_KEY',
    'OPENAI_BASE_URL',
    'ANTHROPIC_API_KEY',
    'ANTHROPIC_BASE_URL',
  ];
  const env: Record<string, string | undefined> = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !dropped.includes(name))),
    NO_COLOR: '1',
  };
  return new Promise((done) => {
    execFile(process.execPath, ['src/cli/main.ts', ...args], { cwd: root, env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

let server: PostgresTestServer;

beforeAll(async () => {
  if (!skipPostgres) server = await startPostgresServer();
}, 60_000);

afterAll(async () => {
  if (!skipPostgres) await server.close();
});

describe.skipIf(skipPostgres)(
  'symphonizer eval, runs and compare with --store postgres://',
  { timeout: 120_000 },
  () => {
    it('evaluates into PostgreSQL, caches there, resumes, lists and compares the runs; the password is never shown', async () => {
      // Trust authentication on loopback: the password is accepted and ignored, so it can be checked for in the output.
      const password = 'cli-Pw-Secr3t';
      const url = server.url.replace(`${server.user}@`, `${server.user}:${password}@`);
      const first = await cli([
        'eval',
        chainModule,
        '--dataset',
        dataset,
        '--store',
        url,
        '--cache-mode',
        'read-write',
        '--json',
      ]);
      expect(first.stderr).toBe(first.stderr.replaceAll(password, '')); // never in the progress lines either
      expect(first.code).toBe(0);
      const result = JSON.parse(first.stdout) as {
        store: string;
        done: number;
        skipped: number;
        cache: { hits: number; misses: number; writes: number };
        summary: { variants: { variant: string; rows: number; error: number }[] };
      };
      expect(result).toMatchObject({ done: 6, skipped: 0 });
      // The store is named without the password (and the command's output scrubs any URL's user info too).
      const shown = server.url.replace(`${server.user}@`, '***@');
      expect(result.store).toBe(shown);
      expect(result.store).not.toContain(password);
      expect(result.summary.variants[0]).toMatchObject({ variant: 'default', rows: 6, error: 1 });
      expect(result.cache.writes).toBeGreaterThan(0);

      // Another run with the same model and prompts: every answer comes from the cache in PostgreSQL.
      const cached = await cli([
        'eval',
        chainModule,
        '--dataset',
        dataset,
        '--store',
        url,
        '--run',
        'again',
        '--cache-mode',
        'read-only',
        '--json',
      ]);
      expect(cached.code).toBe(0);
      const replay = JSON.parse(cached.stdout) as { cache: { hits: number; misses: number } };
      expect(replay.cache.misses).toBe(0);
      expect(replay.cache.hits).toBe(result.cache.writes);

      const resumed = await cli(['eval', chainModule, '--dataset', dataset, '--store', url]);
      expect(resumed.code).toBe(0);
      expect(resumed.stderr).toContain('resuming run "spam": 6 rows already done');
      expect(resumed.stderr).toContain(`stored in ${shown}`);
      expect(resumed.stdout + resumed.stderr).not.toContain(password);

      const other = await cli([
        'eval',
        chainModule,
        '--dataset',
        dataset,
        '--store',
        url,
        '--run',
        'beta',
        '--model',
        'sim:beta',
      ]);
      expect(other.code).toBe(0);

      const runs = await cli(['runs', '--store', url]);
      expect(runs.code).toBe(0);
      expect(runs.stdout).toMatch(/^spam +spam +default +6 /m);
      expect(runs.stdout).toMatch(/^beta +spam +sim:beta +6 /m);
      expect(runs.stdout).toContain(`3 runs in ${shown}`);
      expect(runs.stdout).not.toContain(password);

      const compared = await cli(['compare', 'spam', 'beta', '--store', url]);
      expect(compared.code).toBe(0);
      expect(compared.stdout).toMatch(/^spam +beta +correct +5 /m);
      const badRun = await cli(['compare', 'spam', 'gamma', '--store', url]);
      expect(badRun.code).toBe(2);
      expect(badRun.stderr).toContain('error [unknown_run]: No run named "gamma"');
    });

    it('a database that cannot be reached is a store_open error naming it without the password', async () => {
      const password = 'cli-Pw-Unreach';
      const url = `postgres://someone:${password}@127.0.0.1:${await freePort()}/evals`;
      for (const args of [
        ['runs', '--store', url],
        ['eval', chainModule, '--dataset', dataset, '--store', url],
      ]) {
        const outcome = await cli(args);
        expect(outcome.code).not.toBe(0);
        expect(outcome.stderr).toContain('[store_open]');
        expect(outcome.stderr).toMatch(
          /Cannot open the PostgreSQL database at postgres:\/\/\*\*\*@127\.0\.0\.1:\d+\/evals: /,
        );
        expect(outcome.stdout + outcome.stderr).not.toContain(password);
      }
    });
  },
);
