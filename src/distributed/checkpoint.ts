/**
 * Checkpointed nodes of distributed runs: each node of a job that completes is stored in a Redis hash per
 * run id (field: the node name, value: its output, text, model and usage as JSON), with a TTL, in the same
 * round trip as its `node-done` event is published. A job retried after its worker died reads the hash and
 * restores those nodes, so they are neither run nor paid again.
 */
import type { CheckpointedNode } from '../chain/chain.ts';
import type { UsageTotals } from '../providers/usage.ts';
import { loadIoredis, redisOptions, type Connection } from './peer.ts';
import { FAILURE_FIELD, type RunKeys, type SerializedError } from './job.ts';

/** @internal The commands of an ioredis client that runs, checkpoints and events use. */
export interface KvRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, px: 'PX', ms: number): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  hgetall(key: string): Promise<Record<string, string>>;
  publish(channel: string, message: string): Promise<unknown>;
  multi(): KvMulti;
  duplicate(): KvRedis;
  subscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** @internal A MULTI of {@link KvRedis}. */
export interface KvMulti {
  hset(key: string, field: string, value: string): KvMulti;
  pexpire(key: string, ms: number): KvMulti;
  publish(channel: string, message: string): KvMulti;
  exec(): Promise<unknown>;
}

/** @internal A new ioredis client for `connection` (its errors are retried by ioredis). */
export function kvClient(connection: Connection, feature: string): KvRedis {
  const Redis = loadIoredis(feature) as unknown as new (
    options: Readonly<Record<string, unknown>>,
  ) => KvRedis;
  const client = new Redis(redisOptions(connection, {}));
  client.on('error', () => undefined);
  return client;
}

/** An event of a distributed run, as a worker publishes it and a producer hands it to `onEvent`. */
export type DistributedRunEvent =
  | {
      readonly type: 'node-done';
      readonly runId: string;
      readonly node: string;
      /** What the node's calls used (absent for a node that made none). */
      readonly usage?: UsageTotals | undefined;
    }
  | {
      /**
       * A worker took the run again after an earlier try ended unacknowledged (its worker died): the
       * `restored` nodes are not run again. Not sent for a run's first try.
       */
      readonly type: 'run-start';
      readonly runId: string;
      readonly restored: readonly string[];
    };

/** @internal The nodes stored for `runId`, by name (fields that do not parse are skipped). */
export async function restoreNodes(
  redis: KvRedis,
  keys: RunKeys,
  runId: string,
): Promise<Record<string, CheckpointedNode>> {
  const stored = await redis.hgetall(keys.checkpoint(runId));
  const restored = Object.create(null) as Record<string, CheckpointedNode>;
  for (const [node, value] of Object.entries(stored)) {
    if (node === FAILURE_FIELD) continue;
    try {
      restored[node] = JSON.parse(value) as CheckpointedNode;
    } catch {
      // A field that is not ours: the node runs again.
    }
  }
  return restored;
}

/** @internal Stores `entry` for `node` of `runId` and publishes its `node-done` event, in one round trip. */
export async function saveNode(
  redis: KvRedis,
  keys: RunKeys,
  ttlMs: number,
  runId: string,
  node: string,
  entry: CheckpointedNode,
): Promise<void> {
  const key = keys.checkpoint(runId);
  const event: DistributedRunEvent = { type: 'node-done', runId, node, usage: entry.usage };
  await redis
    .multi()
    .hset(key, node, JSON.stringify(entry))
    .pexpire(key, ttlMs)
    .publish(keys.events, JSON.stringify(event))
    .exec();
}

/** @internal Publishes a run event (best effort). */
export async function publishEvent(redis: KvRedis, keys: RunKeys, event: DistributedRunEvent): Promise<void> {
  await redis.publish(keys.events, JSON.stringify(event));
}

/** @internal Stores the error a run failed with, next to its checkpoint, for its producer to rebuild. */
export async function saveFailure(
  redis: KvRedis,
  keys: RunKeys,
  ttlMs: number,
  runId: string,
  error: SerializedError,
): Promise<void> {
  const key = keys.checkpoint(runId);
  await redis.multi().hset(key, FAILURE_FIELD, JSON.stringify(error)).pexpire(key, ttlMs).exec();
}

/** @internal The error a run failed with, as its worker stored it, if it is still kept. */
export async function loadFailure(
  redis: KvRedis,
  keys: RunKeys,
  runId: string,
): Promise<SerializedError | undefined> {
  const value = await redis.hget(keys.checkpoint(runId), FAILURE_FIELD);
  if (value === null) return undefined;
  try {
    return JSON.parse(value) as SerializedError;
  } catch {
    return undefined;
  }
}
