// sotto-wasm: the visitor and agent client, without the team-management calls (see ./team.js).
// Importing this module fetches no wasm; the first SottoClient.register/open or init() does.

import * as glue from './wasm/sotto_wasm.js';
import { lazyModule } from './loader.js';

const lazy = lazyModule(glue, new URL('./wasm/sotto_wasm_bg.wasm', import.meta.url));

export const { init, configure, isInitialized, SottoClient } = lazy;
