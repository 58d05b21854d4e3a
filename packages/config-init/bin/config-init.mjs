#!/usr/bin/env node
// Launcher of the bundled CLI (packages/config-init/dist/config-init.mjs, the one file a
// container image ships); run `pnpm build` first.
import '../dist/config-init.mjs';
