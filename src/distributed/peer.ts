/**
 * The optional peers of `symphonizer/distributed`, loaded on first use only: importing the package (or this
 * entry) loads no Redis client, and a missing one is a {@link MissingPeerDependencyError} saying what to
 * install.
 */
import { createRequire } from 'node:module';
import { InvalidOptionError } from '../core/errors.ts';
import { MissingPeerDependencyError } from './errors.ts';

/**
 * Where Redis is: a `redis://` / `rediss://` URL, or ioredis-style options (`host`, `port`, `username`,
 * `password`, `db`, `tls`, …).
 */
export type Connection = string | RedisConnectionOptions;

/** The ioredis options a {@link Connection} may carry; the limiter sets its own retry and queue options. */
export interface RedisConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly db?: number | undefined;
  /** TLS options as Node's `tls.connect` takes them; any object turns TLS on. */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** Any other ioredis option, passed through. */
  readonly [option: string]: unknown;
}

/** ioredis options, as passed to its constructor. */
type RedisOptions = Readonly<Record<string, unknown>> & { readonly host?: string; readonly port?: number };

/**
 * @internal The part of an ioredis client the limiter uses, so the published declarations need no ioredis
 * types (the tests check that ioredis's `Redis` has this shape).
 */
export interface RedisClient {
  readonly status: string;
  on(event: 'error' | 'ready', listener: (error?: unknown) => void): unknown;
  evalsha(sha: string, numKeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}

type RedisConstructor = new (options: RedisOptions) => RedisClient;

let redisClass: RedisConstructor | undefined;

/** The ioredis `Redis` class, required on first use. */
export function loadIoredis(feature: string): RedisConstructor {
  if (redisClass !== undefined) return redisClass;
  let module: { Redis?: RedisConstructor; default?: RedisConstructor };
  try {
    module = createRequire(import.meta.url)('ioredis') as typeof module;
  } catch (error) {
    throw new MissingPeerDependencyError('ioredis', feature, error);
  }
  const found = module.Redis ?? module.default;
  if (found === undefined) throw new MissingPeerDependencyError('ioredis', feature);
  redisClass = found;
  return found;
}

/**
 * ioredis options from a {@link Connection}, plus `overrides`.
 *
 * @throws {@link InvalidOptionError} when `connection` is neither a `redis://` / `rediss://` URL nor an object
 *   with a `host` (the URL itself is not repeated: it may hold a password).
 */
export function redisOptions(connection: Connection, overrides: RedisOptions): RedisOptions {
  if (typeof connection === 'string') {
    const url = URL.parse(connection);
    if (url === null || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) {
      throw new InvalidOptionError(
        'connection',
        '(a string, not shown)',
        'a redis:// or rediss:// URL, or { host, port }',
      );
    }
    const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined;
    return {
      host: url.hostname,
      port: url.port === '' ? 6379 : Number(url.port),
      ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
      ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
      ...(db === undefined ? {} : { db }),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
      ...overrides,
    };
  }
  if (
    typeof (connection as unknown) !== 'object' ||
    typeof (connection as { host?: unknown }).host !== 'string'
  ) {
    throw new InvalidOptionError(
      'connection',
      typeof connection,
      'a redis:// or rediss:// URL, or { host, port }',
    );
  }
  return { ...(connection as RedisOptions), ...overrides };
}

/** Where a connection points, without credentials: `host:port`. */
export function describeConnection(connection: Connection): string {
  try {
    const options = redisOptions(connection, {});
    return `${options.host ?? '127.0.0.1'}:${options.port ?? 6379}`;
  } catch {
    return 'an invalid address';
  }
}
