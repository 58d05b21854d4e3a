/**
 * Runs after every other end-to-end file (see the sequencer in vitest.config.ts): no
 * service log line written during the whole run holds a secret the suite planted.
 */
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { plantedSecretsInLogs } from './global-setup.ts';

it('no log line of any service started in this run holds a planted secret', () => {
  const dir = process.env.E2E_SERVICE_LOG_DIR;
  expect(dir, 'global-setup.ts sets E2E_SERVICE_LOG_DIR').toBeTruthy();
  // Every other file of a full run starts services; a run of this file alone checks nothing.
  if (readdirSync(dir!).length === 0) return;
  expect(plantedSecretsInLogs(dir!)).toEqual([]);
});
