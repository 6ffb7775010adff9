/**
 * Batch mode for the offline simulated model: a {@link BatchClient} that keeps its batches in memory and
 * answers each item through a provider's `complete()` once the batch's turnaround has passed, so a batch
 * evaluation can be tried without a key or a network.
 */
import { randomUUID } from 'node:crypto';
import type { BatchClient, BatchItemResult, BatchLimits, BatchRequestItem, BatchState } from './batch.ts';
import { ProviderError } from './errors.ts';
import type { Provider } from './types.ts';

/** Options of {@link createSimulatedBatchClient}. */
export interface SimulatedBatchOptions {
  /** A batch ends at the first poll this many ms after its submission. @default 0 */
  readonly turnaroundMs?: number | undefined;
  /** A batch ends at its n-th poll (whichever of the two comes later). @default 1 */
  readonly turnaroundPolls?: number | undefined;
  /** @default 100,000 requests and 256 MB */
  readonly limits?: BatchLimits | undefined;
}

interface SimBatch {
  readonly items: readonly BatchRequestItem[];
  readonly submittedAt: number;
  polls: number;
  results: Promise<readonly BatchItemResult[]> | undefined;
}

/**
 * A simulated Batch API over `provider` (e.g. the `sim` provider): nothing leaves the process; the batches
 * live as long as the client.
 */
export function createSimulatedBatchClient(
  provider: Provider,
  options: SimulatedBatchOptions = {},
): BatchClient {
  const batches = new Map<string, SimBatch>();
  const turnaroundMs = options.turnaroundMs ?? 0;
  const turnaroundPolls = options.turnaroundPolls ?? 1;
  const find = (id: string): SimBatch => {
    const batch = batches.get(id);
    if (batch === undefined) {
      throw new ProviderError('not_found', {
        provider: provider.name,
        model: undefined,
        status: 404,
        message: `No simulated batch "${id}" (simulated batches live only as long as their process).`,
      });
    }
    return batch;
  };
  return {
    provider: provider.name,
    limits: options.limits ?? { maxRequests: 100_000, maxBytes: 256 * 1024 * 1024 },
    pollMs: Math.max(10, Math.min(1000, turnaroundMs)),
    sizeOf: (item) => Buffer.byteLength(JSON.stringify(item.request)) + 1,
    submit(items): Promise<string> {
      const id = `simbatch_${randomUUID()}`;
      batches.set(id, { items: [...items], submittedAt: Date.now(), polls: 0, results: undefined });
      return Promise.resolve(id);
    },
    retrieve(id): Promise<BatchState> {
      const batch = find(id);
      batch.polls += 1;
      const ended = batch.polls >= turnaroundPolls && Date.now() - batch.submittedAt >= turnaroundMs;
      return Promise.resolve({
        id,
        status: ended ? 'ended' : 'in_progress',
        completed: ended ? batch.items.length : 0,
        total: batch.items.length,
      });
    },
    results(id): Promise<readonly BatchItemResult[]> {
      const batch = find(id);
      batch.results ??= Promise.all(
        batch.items.map(async (item): Promise<BatchItemResult> => {
          try {
            const { signal: _signal, ...request } = item.request;
            return { customId: item.customId, ok: true, response: await provider.complete(request) };
          } catch (error) {
            const retryable = error instanceof ProviderError ? error.isRetryable : false;
            const message = error instanceof Error ? error.message : String(error);
            return { customId: item.customId, ok: false, message, retryable };
          }
        }),
      );
      return batch.results;
    },
  };
}
