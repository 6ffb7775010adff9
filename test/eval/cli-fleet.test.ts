// A fleet evaluation end to end on real servers: workers (`symphonizer worker`, their own processes) take the
// rows x variants of `symphonizer eval --queue redis://… --store postgres://…` off Redis; the rows land in
// PostgreSQL once each, with the results of a local run; a producer SIGKILLed midway is resumed by a new one
// that hands only the unfinished units and stores every row exactly once.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresRunStore } from '../../src/eval/postgres-store.ts';
import { spawnReady, type WorkerProcess } from '../distributed/fixtures/spawn-worker.ts';
import { skipPostgres, startPostgresServer, type PostgresTestServer } from '../support/postgres-server.ts';
import { skipRedis, startRedisServer, type RedisTestServer } from '../support/redis-server.ts';

const root = resolve(import.meta.dirname, '../..');
const chainModule = 'test/cli/fixtures/eval-chain.ts';
const smallDataset = 'test/cli/fixtures/eval-dataset.jsonl';

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[]): Promise<Outcome> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['src/cli/main.ts', ...args],
      { cwd: root, env: { ...process.env, NO_COLOR: '1' }, timeout: 50_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

interface EvalJson {
  done: number;
  skipped: number;
  summary: {
    variants: {
      variant: string;
      rows: number;
      pass: number;
      fail: number;
      error: number;
      latencyMs: unknown;
    }[];
  };
}

let redis: RedisTestServer;
let postgres: PostgresTestServer;
let workers: WorkerProcess[] = [];
let dir: string;

const skip = skipRedis || skipPostgres;

describe.skipIf(skip)(
  'symphonizer eval --queue over workers, stored in PostgreSQL',
  { timeout: 120_000 },
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'symphonizer-fleet-'));
      [redis, postgres] = await Promise.all([startRedisServer(), startPostgresServer()]);
      workers = await Promise.all(
        [1, 2].map(() =>
          spawnReady(
            'src/cli/main.ts',
            [
              'worker',
              '--chains',
              chainModule,
              '--redis',
              redis.url,
              '--queue',
              'fleet',
              '--concurrency',
              '4',
            ],
            {},
            (line) => line.startsWith('symphonizer worker ready'),
          ),
        ),
      );
    }, 60_000);

    afterAll(async () => {
      for (const worker of workers) worker.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
      await Promise.all([redis.close(), postgres.close()]);
      rmSync(dir, { recursive: true, force: true });
    });

    it('runs every unit on the workers with the results of a local run, and a resume hands nothing again', async () => {
      const args = ['eval', chainModule, '--dataset', smallDataset, '--store', postgres.url, '--json'];
      const fleet = await cli([...args, '--queue', redis.url, '--queue-name', 'fleet', '--run', 'fleet']);
      expect(fleet.code).toBe(0);
      const viaQueue = JSON.parse(fleet.stdout) as EvalJson;
      expect(viaQueue.done).toBe(6);
      const local = JSON.parse((await cli([...args, '--run', 'local'])).stdout) as EvalJson;
      // The same rows, statuses, scores and tokens (latencies differ: those are the machines').
      const facts = (r: EvalJson) => r.summary.variants.map(({ latencyMs: _l, ...rest }) => rest);
      expect(facts(viaQueue)).toEqual(facts(local));

      const again = await cli([...args, '--queue', redis.url, '--queue-name', 'fleet', '--run', 'fleet']);
      expect(JSON.parse(again.stdout)).toMatchObject({ done: 0, skipped: 6 });
    });

    it('a producer SIGKILLed midway is resumed by another: every row stored exactly once', async () => {
      const rows = 400;
      const dataset = join(dir, 'many.jsonl');
      writeFileSync(
        dataset,
        Array.from({ length: rows }, (_, i) =>
          JSON.stringify({ id: `m${i + 1}`, text: `message ${i + 1}`, expected: { label: 'ham' } }),
        ).join('\n'),
      );
      const args = ['eval', chainModule, '--dataset', dataset, '--store', postgres.url, '--run', 'killed'];
      const fleet = ['--queue', redis.url, '--queue-name', 'fleet', '--concurrency', '2'];
      const producer = spawn(process.execPath, ['src/cli/main.ts', ...args, ...fleet], {
        cwd: root,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise<void>((done) => {
        producer.once('exit', () => {
          done();
        });
      });
      // Progress lines come on stderr at least every 10 %: kill it at the first one past zero.
      await new Promise<void>((done, fail) => {
        let err = '';
        producer.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          err += chunk;
          for (const match of err.matchAll(/eval "killed": (\d+)\/\d+ rows/gu)) {
            if (Number(match[1]) > 0) done();
          }
        });
        void exited.then(() => {
          fail(new Error(`the producer exited before its first row: ${err}`));
        });
      });
      producer.kill('SIGKILL');
      await exited;

      const store = await PostgresRunStore.open(postgres.url);
      try {
        const before = (await store.countRows('killed')).total;
        expect(before).toBeGreaterThan(0);
        expect(before).toBeLessThan(rows);
        const resumed = await cli([...args, ...fleet, '--json']);
        // On a failure, the end of its output says where it stopped.
        expect(resumed.code, resumed.stderr.slice(-700)).toBe(0);
        const result = JSON.parse(resumed.stdout) as EvalJson;
        expect(result.skipped).toBe(before);
        expect(result.done).toBe(rows - before);
        const ids: string[] = [];
        for await (const row of store.summaryRows('killed')) ids.push(row.rowId);
        expect(ids).toHaveLength(rows);
        expect(new Set(ids).size).toBe(rows);
      } finally {
        await store.close();
      }
    });
  },
);
