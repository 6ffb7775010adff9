// pg is an optional peer: importing the eval entry loads none of it, the first PostgresRunStore.open (or
// evaluate() on a postgres:// store) loads it, and no Redis client comes with it. Each check runs in a fresh
// Node process that records every module it resolves.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

async function loadedBy(script: string): Promise<{ urls: string[]; out: string }> {
  const code = `const { registerHooks } = await import('node:module');
const urls = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
${script}
console.log(JSON.stringify({ urls, out: globalThis.out ?? '' }));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: root });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { urls: string[]; out: string };
}

const pg = /node_modules\/pg\//u;
const redis = /node_modules\/(ioredis|bullmq)\//u;

describe('the PostgreSQL store loads pg lazily', () => {
  it('importing symphonizer/eval loads no pg; opening a PostgresRunStore does, with no Redis client', async () => {
    const imported = await loadedBy(`await import('./src/eval/index.ts');`);
    expect(imported.urls.filter((url) => pg.test(url))).toEqual([]);

    const opened = await loadedBy(`const { PostgresRunStore } = await import('./src/eval/index.ts');
globalThis.out = await PostgresRunStore.open('postgres://u:pw-not-shown@127.0.0.1:9/db').then(() => 'opened', (e) => e.code);`);
    expect(opened.out).toBe('store_open');
    expect(opened.urls.some((url) => pg.test(url))).toBe(true);
    expect(opened.urls.filter((url) => redis.test(url))).toEqual([]);
  });

  it('without pg installed, opening a PostgreSQL store says to npm install pg', async () => {
    // The child resolves `pg` as a missing package would (Node's own error code), everything else as usual.
    const code = `const { registerHooks } = await import('node:module');
registerHooks({ resolve(specifier, context, next) {
  if (specifier === 'pg') throw Object.assign(new Error("Cannot find package 'pg'"), { code: 'ERR_MODULE_NOT_FOUND' });
  return next(specifier, context);
} });
const { PostgresRunStore, ResponseCache } = await import('./src/eval/index.ts');
const out = [];
for (const open of [() => PostgresRunStore.open('postgres://u@127.0.0.1:9/db'), () => ResponseCache.openPostgres('postgres://u@127.0.0.1:9/db')]) {
  out.push(await open().then(() => null, (e) => ({ name: e.name, code: e.code, packageName: e.packageName, message: e.message })));
}
console.log(JSON.stringify(out));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd: root });
    const errors = JSON.parse(stdout) as {
      name: string;
      code: string;
      packageName: string;
      message: string;
    }[];
    expect(errors).toHaveLength(2);
    for (const error of errors) {
      expect(error).toMatchObject({
        name: 'MissingPeerDependencyError',
        code: 'missing_peer_dependency',
        packageName: 'pg',
      });
      expect(error.message).toContain('npm install pg');
    }
  });
});
