/**
 * Entry file of a `server.workers` API process (forked by `cluster/primary.ts`).
 */
import './worker.js';
