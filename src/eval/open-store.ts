/**
 * Opening a run store by where it is: a `postgres://` URL or a SQLite file. Apart from the store interface
 * (run-store.ts), so the interface does not import the PostgreSQL store that implements it.
 */
import { PostgresRunStore, type PostgresRunStoreOptions } from './postgres-store.ts';
import { isPostgresUrl, sqliteEvalStore, type EvalRunStore } from './run-store.ts';
import { RunStore } from './store.ts';

/** Options of {@link openEvalStore}: those of {@link PostgresRunStore.open}, ignored for a file path. */
export type OpenEvalStoreOptions = PostgresRunStoreOptions;

/**
 * Open the run store at `location`: a `postgres://` URL opens a {@link PostgresRunStore} (loading `pg`), any
 * other string a SQLite file (`:memory:` for a private one).
 *
 * @throws {StoreOpenError} when it cannot be opened (a URL's password is never in the message).
 * @throws {MissingPeerDependencyError} for a URL when `pg` is not installed.
 */
export async function openEvalStore(
  location: string,
  options: OpenEvalStoreOptions = {},
): Promise<EvalRunStore> {
  if (isPostgresUrl(location)) {
    return PostgresRunStore.open(location, options);
  }
  return sqliteEvalStore(RunStore.open(location), location);
}
