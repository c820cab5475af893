// Loading the module (this part is written by hand), then the module's classes and types as
// wasm-bindgen declares them (appended by scripts/build-npm.sh).

/** How the module is loaded. */
export interface InitOptions {
  /**
   * Where the .wasm file is served: by default next to this package's JS (resolved from
   * `import.meta.url`), which bundlers and static servers usually preserve.
   */
  wasmUrl?: string | URL;
}

/**
 * Fetches and instantiates the module, once. `SottoClient.register` and `SottoClient.open` call
 * it by themselves, so calling it first is only a way to load ahead of need or to pass options.
 * Concurrent calls share one load; once loaded it resolves at once and ignores `options`. A
 * failed load rejects with code `wasm_load_failed` and the next call tries again.
 */
export function init(options?: InitOptions): Promise<void>;

/**
 * Sets the options of the load to come without starting it (for a lazy first use). Throws
 * (code `already_initialized`) once a load has started.
 */
export function configure(options: InitOptions): void;

/** Whether the module is loaded and instantiated. */
export function isInitialized(): boolean;

