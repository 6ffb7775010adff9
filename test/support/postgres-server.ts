// A real PostgreSQL for tests: `initdb` into a temp dir, `postgres` on 127.0.0.1 and a random free port with
// its socket in that dir, one database created; stopped by PID (and killed if the test process exits
// first). PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres` user.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import {
  findBinary,
  freePort,
  skipWithoutBinary,
  spawnServer,
  stopByPid,
  waitUntil,
} from './server-process.ts';

const run = promisify(execFile);

/** Debian keeps the server binaries out of the PATH, under /usr/lib/postgresql/<major>/bin. */
function postgresBinDirs(): string[] {
  try {
    return readdirSync('/usr/lib/postgresql')
      .sort((a, b) => Number(b) - Number(a))
      .map((major) => `/usr/lib/postgresql/${major}/bin`);
  } catch {
    return [];
  }
}

/** Path of the `postgres` server binary, when installed. */
export const postgresBinary: string | undefined = findBinary('postgres', postgresBinDirs());

/** True when the PostgreSQL suites must be skipped (only locally: in CI a missing binary throws). */
export const skipPostgres: boolean = skipWithoutBinary('postgres (PostgreSQL server)', postgresBinary);

/** A running test PostgreSQL. */
export interface PostgresTestServer {
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** `postgres://<user>@127.0.0.1:<port>/<database>` (trust authentication on loopback). */
  readonly url: string;
  readonly pid: number;
  /** Stops it by PID (SIGINT: fast shutdown) and removes its data dir. */
  close(): Promise<void>;
}

/** Who owns the cluster: PostgreSQL will not run as root. */
function owner(): { uid: number; gid: number; user: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return { uid: Number(idOf('-u')), gid: Number(idOf('-g')), user: 'postgres' };
}

function idOf(flag: '-u' | '-g'): string {
  return execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim();
}

/** Initializes a cluster in a temp dir, starts it and creates `database`. */
export async function startPostgresServer(database = 'symphonizer_test'): Promise<PostgresTestServer> {
  if (postgresBinary === undefined) throw new Error('postgres is not installed');
  // The other tools (initdb, pg_isready, createdb) sit beside the real binary, whatever links led to it.
  const bin = dirname(realpathSync(postgresBinary));
  const as = owner();
  const dir = mkdtempSync(join(tmpdir(), 'symphonizer-pg-'));
  if (as !== undefined) chownSync(dir, as.uid, as.gid);
  const user = as?.user ?? (process.env['USER'] || 'postgres');
  const ids = as === undefined ? {} : { uid: as.uid, gid: as.gid };
  const data = join(dir, 'data');
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  await run(
    join(bin, 'initdb'),
    ['-D', data, '-U', user, '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'],
    { ...ids, env, cwd: dir },
  );
  const port = await freePort();
  const { child, output } = spawnServer(
    postgresBinary,
    ['-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port), '-F', '-c', 'max_connections=50'],
    { ...ids, env, cwd: dir },
  );
  const isReady = join(bin, 'pg_isready');
  await waitUntil(`postgres on port ${port}`, child, output, async () => {
    try {
      await run(isReady, ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', 'postgres'], { env });
      return true;
    } catch {
      return false;
    }
  });
  await run(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', user, database], { env });
  return {
    port,
    database,
    user,
    url: `postgres://${user}@127.0.0.1:${port}/${database}`,
    pid: child.pid ?? -1,
    async close() {
      await stopByPid(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
