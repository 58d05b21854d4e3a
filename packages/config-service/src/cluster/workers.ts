/**
 * How many API processes `config-service serve` runs (`server.workers`).
 */
import os from 'node:os';
import { isTemplateUrl } from '../git/app-patterns.js';
import type { Settings } from '../settings/schema.js';

/**
 * The number of API processes for `settings`: `server.workers`, by default the number of
 * CPUs this process may use (`os.availableParallelism()`). One process serves alone (no
 * primary). A repository entry with `{app}` in its URL (per-application mirrors, cloned on
 * first read) is served by one process for now: `reason` says why when more were asked.
 */
export function apiWorkers(settings: Readonly<Settings>): { count: number; reason?: string } {
  const wanted = settings.server.workers ?? os.availableParallelism();
  if (wanted > 1 && settings.repositories.some((r) => r.url !== undefined && isTemplateUrl(r.url))) {
    return {
      count: 1,
      ...(settings.server.workers !== undefined && {
        reason: 'server.workers is ignored: a repository URL with {app} (per-application mirrors) is served by one process',
      }),
    };
  }
  return { count: Math.max(1, wanted) };
}
