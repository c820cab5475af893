// sotto-wasm/team: the client with the team-management calls (teams, members, roles, the audit
// log, system notes, the recovery key). A separate, larger module; an application loads one of
// the two entry points, not both.

import * as glue from './wasm-team/sotto_wasm.js';
import { lazyModule } from './loader.js';

const lazy = lazyModule(glue, new URL('./wasm-team/sotto_wasm_bg.wasm', import.meta.url));

export const { init, configure, isInitialized, SottoClient } = lazy;
