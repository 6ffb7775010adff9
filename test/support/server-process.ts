// What the real-server test helpers share: finding a server binary (skip locally, fail in CI when it is
// missing), a free loopback port, and stopping a child by its PID, also when the test process exits.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** The first executable `name` on the PATH or in `extraDirs`, or `undefined`. */
export function findBinary(name: string, extraDirs: readonly string[] = []): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), ...extraDirs];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Whether a suite needing `binary` must be skipped: locally a missing server skips it with a visible
 * reason; in CI (`CI=true`) it throws, so a skipped suite can never pass silently.
 */
export function skipWithoutBinary(binary: string, found: string | undefined): boolean {
  if (found !== undefined) return false;
  const reason = `${binary} not found: install it with \`apt-get update && apt-get install -y redis-server postgresql\``;
  if (process.env['CI'] === 'true')
    throw new Error(`${reason} (CI=true: the real-server tests cannot be skipped)`);
  console.warn(`[skipped] ${reason}; the tests needing it are skipped.`);
  return true;
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

/** Children still running, killed when this process exits however the tests end. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }
});

/** Spawns a server; its output is kept (the last 4 KiB) for the error when it does not come up. */
export function spawnServer(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return { child, output: () => output };
}

/** Sends `signal` to the child by PID and waits until it has exited. */
export async function stopByPid(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  process.kill(child.pid, signal);
  await exited;
}

/** Calls `probe` until it resolves true, failing with the server's output after `timeoutMs`. */
export async function waitUntil(
  what: string,
  child: ChildProcess,
  output: () => string,
  probe: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${what} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`,
      );
    }
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`${what} was not ready after ${timeoutMs} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
