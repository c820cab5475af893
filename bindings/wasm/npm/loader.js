// Lazy loading shared by both entry points: the wasm module is fetched and instantiated on the
// first call that needs it (or an explicit `init()`), once, however many calls race for it.

/** A rejection in the package's shape: an Error named SottoError with a stable `code`. */
function sottoError(code, message, cause) {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  error.name = 'SottoError';
  error.code = code;
  return error;
}

/**
 * The loading functions of one wasm-bindgen build. `glue` is its JS module (the functions
 * there fail until its default export has instantiated the module); `defaultUrl` the URL of
 * its .wasm.
 */
export function lazyModule(glue, defaultUrl) {
  let configured;
  let loading = null;
  let loaded = false;

  function init(options) {
    if (loading) return loading;
    const url = (options && options.wasmUrl) || configured || defaultUrl;
    loading = glue.default({ module_or_path: url }).then(
      () => {
        loaded = true;
      },
      (cause) => {
        // Forget the failed attempt so that a later call (say, once online again) retries.
        loading = null;
        throw sottoError('wasm_load_failed', `could not load the Sotto module from ${url}`, cause);
      },
    );
    return loading;
  }

  function configure(options) {
    if (loading) {
      throw sottoError('already_initialized', 'configure() must come before the module is loaded');
    }
    configured = options && options.wasmUrl ? options.wasmUrl : undefined;
  }

  // The static calls of the generated class are the only way to an instance, so making them
  // wait for the module makes every call lazy; instances exist only once it is loaded.
  const SottoClient = glue.SottoClient;
  for (const name of ['register', 'open']) {
    const eager = SottoClient[name];
    Object.defineProperty(SottoClient, name, {
      configurable: true,
      writable: true,
      value: async function lazily(...args) {
        await init();
        return eager.apply(SottoClient, args);
      },
    });
  }

  return { init, configure, isInitialized: () => loaded, SottoClient };
}
