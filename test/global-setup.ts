/**
 * Whole-suite guard (issue: "a canary secret never appears in any log line during the
 * whole test suite"): every service a test starts writes its log lines into one folder
 * (see helpers/service.ts); `whole-suite-logs.e2e.test.ts`, run after every other file,
 * searches every line for the secrets the suite plants and fails naming the file and secret.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Secrets planted by the test files (repository values, Git credentials, canaries). */
const PLANTED = [
  'CANARY-SECRET-5e1f', // no-secrets-in-logs: a configuration value
  'CANARY-9c41e', // cases README: canary.yml beside the data directory
  'OTHER-TEAM-7d2', // cases README: another team's committed secret
  'OTHER-APP-CANARY-31', // security matrix: another application's value
  'hunter2-Db-Pa55-9f3a', // main job: a database password in the repository
  'S3cr3t-T0ken-xyz', // case 15: Git token
  'p@ss/w0rd', // case 15: Git password
  'p%40ss%2Fw0rd',
  'Db-Pa55-templ4te-7e1', // templates: a secret a template renders
];

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e2e-service-logs-'));
  process.env.E2E_SERVICE_LOG_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}

/**
 * The planted secrets found in the log files captured so far, as `file: secret` lines.
 * Run by `whole-suite-logs.e2e.test.ts`, which the sequencer in vitest.config.ts runs last.
 */
export function plantedSecretsInLogs(dir: string): string[] {
  const hits = new Set<string>();
  for (const name of readdirSync(dir)) {
    const text = readFileSync(path.join(dir, name), 'utf8');
    for (const secret of PLANTED) if (text.includes(secret)) hits.add(`${name}: ${secret}`);
  }
  return [...hits];
}
