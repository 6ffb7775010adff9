// A real Debian `redis-server` for tests: loopback only, a random free port, no persistence, its own temp
// dir; stopped by PID (and killed if the test process exits first). `stop()` then `restart()` brings it back
// on the same port, empty, as a crashed and restarted Redis would be.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  findBinary,
  freePort,
  skipWithoutBinary,
  spawnServer,
  stopByPid,
  waitUntil,
} from './server-process.ts';

/** Path of `redis-server`, when installed. */
export const redisServerBinary: string | undefined = findBinary('redis-server', [
  '/usr/bin',
  '/usr/local/bin',
]);

/** True when the Redis suites must be skipped (only locally: in CI a missing binary throws). */
export const skipRedis: boolean = skipWithoutBinary('redis-server', redisServerBinary);

/** A running test Redis. */
export interface RedisTestServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** PID of the current server process (changes on restart). */
  readonly pid: number;
  /** Whether the server is running now. */
  readonly running: boolean;
  /** Stops it by PID (SIGTERM with no save, so it exits at once); the port stays reserved for restart. */
  stop(): Promise<void>;
  /** Starts a fresh, empty server on the same port. */
  restart(): Promise<void>;
  /** Stops it and removes its temp dir. */
  close(): Promise<void>;
}

/** Starts `redis-server` on 127.0.0.1 and a random free port, and waits until it answers PING. */
export async function startRedisServer(): Promise<RedisTestServer> {
  if (redisServerBinary === undefined) throw new Error('redis-server is not installed');
  const binary = redisServerBinary;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-redis-'));
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const spawned = spawnServer(binary, [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ]);
    child = spawned.child;
    await waitUntil(`redis-server on port ${port}`, spawned.child, spawned.output, () => ping(port));
  };
  await launch();
  const stop = async (): Promise<void> => {
    if (child !== undefined) await stopByPid(child);
    child = undefined;
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? -1;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop,
    async restart() {
      if (child !== undefined) await stopByPid(child);
      await launch();
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True when a server on `port` answers `PING` with `+PONG`. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => {
      done(false);
    });
    socket.once('error', () => {
      done(false);
    });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
