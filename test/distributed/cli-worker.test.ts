// `symphonizer worker` end to end against a real redis-server: the command in its own process prints one
// ready line (with no password of the --redis URL), runs a run a producer submits, and on SIGTERM drains
// and exits 0.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedPerform } from '../../src/distributed/index.ts';
import { main } from '../../src/cli/main.ts';
import { fakeKey } from '../helpers/fake-keys.ts';
import { startFakeProviderServer, type FakeProviderServer } from '../support/fake-provider-server.ts';
import { skipRedis, startRedisServer, type RedisTestServer } from '../support/redis-server.ts';
import { freePort } from '../support/server-process.ts';
import type * as Fixture from './fixtures/chains.ts';
import { spawnReady } from './fixtures/spawn-worker.ts';

const MODEL = 'openai:gpt-4.1-mini';
let redis: RedisTestServer;
let fake: FakeProviderServer;
let chains: typeof Fixture.chains;

describe.skipIf(skipRedis)('symphonizer worker', () => {
  beforeAll(async () => {
    process.env.FIXTURE_MODEL = MODEL;
    chains = (await import('./fixtures/chains.ts')).chains;
    [redis, fake] = await Promise.all([startRedisServer(), startFakeProviderServer()]);
  });
  afterAll(async () => {
    await Promise.all([redis.close(), fake.close()]);
  });

  it('prints one ready line without the URL password, runs a submitted run, and drains on SIGTERM', async () => {
    const password = 'cli-worker-s3cret-pw';
    const url = `redis://:${password}@127.0.0.1:${redis.port}`;
    const worker = await spawnReady(
      'src/cli/main.ts',
      [
        'worker',
        '--chains',
        'test/distributed/fixtures/chains.ts',
        '--redis',
        url,
        '--queue',
        'cli',
        '--concurrency',
        '2',
        '--limits',
        '{"openai": {"requestsPerMinute": 600}}',
      ],
      {
        OPENAI_BASE_URL: fake.openaiBaseURL,
        OPENAI_API_KEY: fakeKey('test', 'cli', 'worker0123456789'),
        FIXTURE_MODEL: MODEL,
      },
      (line) => line.startsWith('symphonizer worker ready'),
    );
    expect(worker.firstLine).toBe(
      `symphonizer worker ready: queue cli on 127.0.0.1:${redis.port}, chains diamond, failing, concurrency 2, shared limits`,
    );
    expect(worker.firstLine).not.toContain(password);
    const producer = new DistributedPerform({ connection: redis.url, queue: 'cli', chains });
    try {
      const run = await producer.submit('diamond', { id: 'cli-1' }, { runId: 'cli-1' });
      const result = await run.result();
      expect(Object.keys(result.outputs).sort()).toEqual(['a', 'b', 'c', 'd']);
      expect(result.usage.calls).toBe(4);
    } finally {
      await producer.close();
    }
    worker.kill('SIGTERM');
    const exit = await worker.exited;
    expect(exit.code).toBe(0);
    expect(exit.lines.at(-1)).toBe('symphonizer worker drained: 1 completed, 0 failed');
    expect(JSON.stringify(exit.lines)).not.toContain(password);
  }, 20_000);

  it('drains on SIGINT too (Ctrl+C) and exits 0', async () => {
    const worker = await spawnReady(
      'src/cli/main.ts',
      [
        'worker',
        '--chains',
        'test/distributed/fixtures/chains.ts',
        '--redis',
        redis.url,
        '--queue',
        'cli-int',
      ],
      {
        FIXTURE_MODEL: MODEL,
        OPENAI_BASE_URL: fake.openaiBaseURL,
        OPENAI_API_KEY: fakeKey('test', 'cli', 'int0123456789'),
      },
      (line) => line.startsWith('symphonizer worker ready'),
    );
    worker.kill('SIGINT');
    const exit = await worker.exited;
    expect(exit.code).toBe(0);
    expect(exit.lines.at(-1)).toBe('symphonizer worker drained: 0 completed, 0 failed');
  }, 20_000);

  it('waits for an unreachable Redis, saying so once, and a SIGTERM then stops it with exit code 0', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        'src/cli/main.ts',
        'worker',
        '--chains',
        'test/distributed/fixtures/chains.ts',
        '--redis',
        `redis://127.0.0.1:${port}`,
      ],
      { cwd: resolve(import.meta.dirname, '../..'), env: { ...process.env, FIXTURE_MODEL: MODEL } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const retrying = new Promise<void>((resolveRetrying) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('(retrying)')) resolveRetrying();
      });
    });
    const exited = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => {
        resolveExit(code);
      }),
    );
    await retrying;
    await new Promise((wait) => setTimeout(wait, 600)); // several reconnect attempts
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toBe('symphonizer worker stopped before it was connected\n');
    expect(stderr.match(/ECONNREFUSED/gu)?.length).toBe(1);
  }, 20_000);

  it('refuses bad arguments with a usage error (exit code 2) before connecting', async () => {
    const out: string[] = [];
    const io = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => out.push(t) },
    };
    expect(await main(['worker', '--chains', 'x.ts'], io)).toBe(2);
    expect(out.join('')).toContain('needs --chains <module> and --redis <url>');
    out.length = 0;
    expect(await main(['worker', '--chains', 'x.ts', '--redis', 'http://u:hunter2secret@h'], io)).toBe(2);
    expect(out.join('')).not.toContain('hunter2secret');
    out.length = 0;
    expect(
      await main(
        [
          'worker',
          '--chains',
          'test/distributed/fixtures/chains.ts',
          '--redis',
          redis.url,
          '--concurrency',
          '0',
        ],
        io,
      ),
    ).toBe(2);
    expect(out.join('')).toContain('--concurrency must be an integer >= 1');
    out.length = 0;
    expect(await main(['help', 'worker'], io)).toBe(0);
    expect(out.join('')).toContain('Usage: symphonizer worker --chains <module> --redis <url>');
  });
});
