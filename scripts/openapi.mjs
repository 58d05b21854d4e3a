#!/usr/bin/env node
// Regenerates docs/openapi.json, the OpenAPI 3.1 document config-service serves at
// GET /openapi.json (packages/config-service/src/http/openapi.ts). Run after changing a
// route: `npx -y pnpm@10.34.9 openapi` (it builds first). test/openapi.e2e.test.ts fails
// while the committed file differs from what the service serves.
//
// The document does not depend on settings, so any running instance gives the same one:
// this starts the API app on a throwaway PKI and an empty local repository.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const svc = await import(path.join(root, 'packages/config-service/dist/index.js'));
const work = mkdtempSync(path.join(os.tmpdir(), 'openapi-'));
const repo = path.join(work, 'repo');
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
execFileSync('git', ['-C', repo, '-c', 'user.name=openapi', '-c', 'user.email=openapi@example.com', 'commit', '-q', '--allow-empty', '-m', 'empty']);
const pki = await svc.initPki(path.join(work, 'pki'));
const settings = svc.loadSettings({
  env: {},
  overrides: {
    server: { host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.caCert } },
    management: { host: '127.0.0.1', port: 0 },
    dataDir: path.join(work, 'data'),
    repositories: [{ name: 'config', path: repo }],
    log: { level: 'warn' },
  },
});
const service = await svc.startService(settings, { env: {} });
try {
  const file = path.join(root, 'docs/openapi.json');
  writeFileSync(file, `${JSON.stringify(service.api.swagger(), null, 2)}\n`);
  process.stdout.write(`${path.relative(root, file)}\n`);
} finally {
  await service.close();
}
