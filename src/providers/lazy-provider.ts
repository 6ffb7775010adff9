/**
 * A {@link Provider} whose implementation (and the SDK it wraps) is imported on the first call, so that
 * importing the package, or building a registry that lists a provider, loads no SDK.
 */
import type { ModelRequest, ModelResponse, Provider, StreamEvent } from './types.ts';

/**
 * Wraps `load` in a provider named `name` that imports its implementation on the first `complete()` or
 * `stream()` call. A failed load is not cached: the next call tries again.
 */
export function lazyProvider(
  name: string,
  load: () => Promise<Provider>,
  options: LazyProviderOptions = {},
): Provider {
  const provider = new LazyProvider(name, load);
  const check = options.preflight;
  if (check !== undefined) provider.preflight = check;
  return provider;
}

/** Options of {@link lazyProvider}. */
export interface LazyProviderOptions {
  /** The provider's {@link Provider.preflight}, which must not need the implementation. @default none */
  readonly preflight?: ((model: string) => void) | undefined;
}

class LazyProvider implements Provider {
  readonly name: string;
  preflight?: (model: string) => void;
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
