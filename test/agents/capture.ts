import {
  ModelClient,
  ProviderRegistry,
  createSimulatedProvider,
  type ModelRequest,
  type Provider,
} from '../../src/index.ts';
import type { SimulatedScriptEntry } from '../../src/testing.ts';

/** A client whose `capture:` provider records every request and lets the simulated model answer it. */
export interface CaptureClient {
  readonly client: ModelClient;
  /** Every request the `capture:` provider received, in order. */
  readonly requests: ModelRequest[];
  /** Chain options that run every node on `capture:test` through this client: spread into `chain({ input, ...options })`. */
  readonly options: { readonly model: string; readonly client: ModelClient };
}

/**
 * A ModelClient with a `capture` provider (call it as `capture:<anything>`) that records each request and
 * delegates to a simulated provider with `script`. No retries with delays; one re-ask on invalid output.
 */
export function captureClient(
  script: readonly SimulatedScriptEntry[] = [],
  repairAttempts = 1,
): CaptureClient {
  const sim = createSimulatedProvider({ script });
  const requests: ModelRequest[] = [];
  const capture: Provider = {
    name: 'capture',
    complete: (request) => {
      requests.push(request);
      return sim.complete(request);
    },
    stream: (request) => {
      requests.push(request);
      return sim.stream(request);
    },
  };
  const registry = new ProviderRegistry().register(capture);
  const client = new ModelClient({ registry, repairAttempts, retry: { maxRetries: 0 } });
  return { client, requests, options: { model: 'capture:test', client } };
}

/** The user text of a request: its last user message. */
export function userText(request: ModelRequest | undefined): string {
  const user = request?.messages.filter((m) => m.role === 'user').at(-1);
  return user?.content ?? '';
}

/** The first request whose system text includes `marker` (each agent's template has its own system text). */
export function requestFor(requests: readonly ModelRequest[], marker: string): ModelRequest {
  const found = requests.find((r) => (r.system ?? '').includes(marker));
  if (found === undefined)
    throw new Error(`no request with a system text including ${JSON.stringify(marker)}`);
  return found;
}
