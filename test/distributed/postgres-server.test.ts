// The PostgreSQL the distributed tests will use really starts, answers a query and stops: CI proves the
// server works before any store depends on it.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { skipPostgres, startPostgresServer } from '../support/postgres-server.ts';

describe.skipIf(skipPostgres)('test PostgreSQL server', () => {
  it('starts on a loopback port as a non-root user, answers SELECT 1 in its database, and stops by PID', async () => {
    const server = await startPostgresServer();
    try {
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      try {
        const result = await client.query<{ one: number; db: string; usr: string }>(
          'SELECT 1 AS one, current_database() AS db, current_user AS usr',
        );
        expect(result.rows).toEqual([{ one: 1, db: server.database, usr: server.user }]);
      } finally {
        await client.end();
      }
    } finally {
      await server.close();
    }
    expect(() => process.kill(server.pid, 0)).toThrow();
  }, 60_000);
});
