/**
 * A {@link Provider} whose implementation (and the SDK it wraps) is imported on the first call, so that
 * importing the package, or building a registry that lists a provider, loads no SDK.
 */
import type { ModelRequest, ModelResponse, Provider, StreamEvent } from './types.ts';

/**
 * Wraps `load` in a provider named `name` that imports its implementation on the first `complete()` or
 * `stream()` call. A failed load is not cached: the next call tries again.
 */
export function lazyProvider(name: string, load: () => Promise<Provider>): Provider {
  return new LazyProvider(name, load);
}

class LazyProvider implements Provider {
  readonly name: string;
  readonly #load: () => Promise<Provider>;
  // The implementation once loaded; the pending load while it is being imported.
  #impl: Provider | undefined;
  #loading: Promise<Provider> | undefined;

  constructor(name: string, load: () => Promise<Provider>) {
    this.name = name;
    this.#load = load;
  }

  async complete(request: ModelRequest): Promise<ModelResponse> {
    return (this.#impl ?? (await this.#resolve())).complete(request);
  }

  async *stream(request: ModelRequest): AsyncGenerator<StreamEvent, void, undefined> {
    yield* (this.#impl ?? (await this.#resolve())).stream(request);
  }

  async #resolve(): Promise<Provider> {
    this.#loading ??= this.#load().then(
      (impl) => (this.#impl = impl),
      (error: unknown) => {
        this.#loading = undefined;
        throw error;
      },
    );
    return this.#loading;
  }
}
