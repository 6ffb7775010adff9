// The response cache's semantics, once per backing database: SQLite and PostgreSQL (a real server, see
// test/support/postgres-server.ts). Two caches opened on the same database (two processes, two machines)
// share their answers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheClosedError,
  CacheMissError,
  ResponseCache,
  isCachedResponse,
  type CacheMode,
} from '../../src/eval/cache.ts';
import { StoreOpenError } from '../../src/eval/store.ts';
import type { ModelRequest, Provider, StreamEvent } from '../../src/providers/types.ts';
import { ScriptedProvider } from '../helpers/scripted-provider.ts';
import { freePort } from '../support/server-process.ts';
import { skipPostgres, startPostgresServer, type PostgresTestServer } from '../support/postgres-server.ts';

const request: ModelRequest = {
  model: 'm1',
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Capital of France?' }],
  temperature: 0,
};

const unreachable: Provider = {
  name: 'scripted',
  complete: () => Promise.reject(new Error('the provider must not be called')),
  stream: () => {
    throw new Error('the provider must not be called');
  },
};

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

let server: PostgresTestServer | undefined;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'symphonizer-cache-contract-'));
  if (!skipPostgres) server = await startPostgresServer();
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
const backends: {
  name: string;
  skip: boolean;
  /** A fresh database; `open` opens a cache on it (again and again: other processes). */
  fresh: () => (mode?: CacheMode) => Promise<ResponseCache>;
}[] = [
  {
    name: 'SQLite',
    skip: false,
    fresh: () => {
      const path = join(dir, `cache-${++n}.db`);
      return (mode) => Promise.resolve(ResponseCache.open(path, mode));
    },
  },
  {
    name: 'PostgreSQL',
    skip: skipPostgres,
    fresh: () => {
      const schema = `cache_${++n}_${process.pid}`;
      return (mode) => ResponseCache.openPostgres((server as PostgresTestServer).url, mode, { schema });
    },
  },
];

describe.each(backends)('response cache contract: $name', ({ skip, fresh }) => {
  it.skipIf(skip)(
    'answers a repeated call from the cache at zero cost, shared by every cache on the database',
    async () => {
      const open = fresh();
      const [cache, other] = await Promise.all([open(), open()]);
      const inner = new ScriptedProvider('scripted', () => ({ json: { city: 'Paris' } }));
      const first = await cache.wrap(inner).complete(request);
      expect(isCachedResponse(first)).toBe(false);
      const second = await other.wrap(unreachable).complete(request);
      expect(isCachedResponse(second)).toBe(true);
      expect(second).toMatchObject({
        text: first.text,
        json: { city: 'Paris' },
        usage: { inputTokens: 0, outputTokens: 0 },
      });
      expect(isCachedResponse(second) && second.cachedUsage).toEqual(first.usage);
      await cache.wrap(inner).complete({ ...request, temperature: 1 });
      expect(inner.requests).toHaveLength(2);
      expect(cache.stats()).toEqual({ hits: 0, misses: 2, writes: 2 });
      expect(other.stats()).toEqual({ hits: 1, misses: 0, writes: 0 });
      await Promise.all([cache.dispose(), other.dispose()]);
    },
  );

  it.skipIf(skip)('does not store errors; read-only misses throw; off passes through', async () => {
    const open = fresh();
    const cache = await open();
    const failing = new ScriptedProvider('scripted', (_r, call) => (call === 1 ? new Error('boom') : 'ok'));
    await expect(cache.wrap(failing).complete(request)).rejects.toThrow('boom');
    expect((await cache.wrap(failing).complete(request)).text).toBe('ok');
    await cache.dispose();

    const readOnly = await open('read-only');
    expect((await readOnly.wrap(unreachable).complete(request)).text).toBe('ok');
    await expect(
      readOnly.wrap(unreachable).complete({ ...request, temperature: 0.5 }),
    ).rejects.toBeInstanceOf(CacheMissError);
    await expect(
      collect(readOnly.wrap(unreachable).stream({ ...request, temperature: 0.5 })),
    ).rejects.toBeInstanceOf(CacheMissError);
    await readOnly.dispose();

    const off = await open('off');
    const inner = new ScriptedProvider('scripted', () => 'fresh');
    expect(off.wrap(inner)).toBe(inner);
    await off.dispose();
  });

  it.skipIf(skip)('stores a finished stream and replays it as one delta and the finish', async () => {
    const open = fresh();
    const cache = await open();
    const inner = new ScriptedProvider('scripted', () => 'Paris is the capital.');
    const live = await collect(cache.wrap(inner).stream(request));
    expect(live.filter((e) => e.type === 'text-delta').length).toBeGreaterThan(1);
    const replay = await collect(cache.wrap(unreachable).stream(request));
    expect(replay.map((e) => e.type)).toEqual(['text-delta', 'finish']);
    expect(replay[0]).toEqual({ type: 'text-delta', text: 'Paris is the capital.' });
    await cache.dispose();
  });

  it.skipIf(skip)('throws CacheClosedError after close; closing twice does nothing', async () => {
    const cache = await fresh()();
    const provider = cache.wrap(unreachable);
    cache.close();
    cache.close();
    await cache.dispose();
    await expect(provider.complete(request)).rejects.toBeInstanceOf(CacheClosedError);
  });
});

describe.skipIf(skipPostgres)('PostgreSQL response cache', () => {
  it('refuses an unreachable database with store_open and never shows the password', async () => {
    const password = 'cache-Pw-Secr3t';
    const url = `postgres://someone:${password}@127.0.0.1:${await freePort()}/db`;
    const error = await ResponseCache.openPostgres(url).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreOpenError);
    expect(inspect(error, { depth: 10 })).not.toContain(password);
    expect((error as StoreOpenError).message).toContain('PostgreSQL');
  });
});
