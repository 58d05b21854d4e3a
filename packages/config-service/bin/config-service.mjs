#!/usr/bin/env node
// Launcher of the built CLI (packages/config-service/dist/cli/main.js); run `pnpm build` first.
import '../dist/cli/main.js';
