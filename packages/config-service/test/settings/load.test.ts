import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listEnvSettings, loadDocumentSettings, loadSettings } from '../../src/settings/load.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'settings-'));
function file(text: string): string {
  const p = path.join(dir, `s-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(p, text);
  return p;
}
const minimal = `
server:
  tls: { cert: pki/server.crt, key: pki/server.key, clientCa: pki/ca.crt }
repositories:
  - name: config
    path: repo
`;

function errorOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected an error');
}

describe('loadSettings', () => {
  it('applies defaults and resolves paths against the settings file folder', () => {
    const s = loadSettings({ file: file(minimal), env: {} });
    expect(s.server.port).toBe(8443);
    expect(s.server.host).toBe('0.0.0.0');
    expect(s.management).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(s.server.tls.cert).toBe(path.join(dir, 'pki/server.crt'));
    expect(s.repositories[0]).toMatchObject({ name: 'config', path: path.join(dir, 'repo'), branch: 'main', layout: 'folders', pollIntervalMs: 30000 });
    expect(s.dataDir).toBe(path.join(dir, 'data'));
    expect(s.audit.sqlitePath).toBe(path.join(dir, 'data', 'audit.sqlite'));
    expect(s.policy).toEqual({ defaultOwnApp: true, grants: [] });
    expect(Object.isFrozen(s.server.tls)).toBe(true);
  });

  it('lets CONFIG_SERVICE_* variables win over the file, converting scalars and reading lists as YAML', () => {
    const s = loadSettings({
      file: file(minimal),
      env: {
        CONFIG_SERVICE_SERVER_PORT: '9443',
        CONFIG_SERVICE_LOG_LEVEL: 'debug',
        CONFIG_SERVICE_SERVER_TLS_CLIENT_CA: '/etc/ca.pem',
        CONFIG_SERVICE_REPOSITORIES: '[{name: remote, url: "https://git.example.com/c.git", branch: trunk}]',
      },
    });
    expect(s.server.port).toBe(9443);
    expect(s.log.level).toBe('debug');
    expect(s.server.tls.clientCa).toBe('/etc/ca.pem');
    expect(s.repositories).toHaveLength(1);
    expect(s.repositories[0]).toMatchObject({ name: 'remote', url: 'https://git.example.com/c.git', branch: 'trunk' });
  });

  it('names every bad setting, and the variable it came from', () => {
    const err = errorOf(() =>
      loadSettings({ file: file(minimal + 'bogus: 1\n'), env: { CONFIG_SERVICE_SERVER_PORT: 'eighty', CONFIG_SERVICE_LOG_LEVEL: 'loud' } }),
    );
    expect(err.code).toBe('CFG_ERR_SETTINGS_INVALID');
    expect(err.message).toContain('server.port: Expected integer (from CONFIG_SERVICE_SERVER_PORT)');
    expect(err.message).toContain('log.level:');
    expect(err.message).toContain('(from CONFIG_SERVICE_LOG_LEVEL)');
    expect(err.message).toMatch(/bogus|Unexpected property/);
  });

  it('says each problem once, one line per setting, with "did you mean" for misspelt keys and the values a list allows', () => {
    const text = `
server:
  tls: { cert: pki/server.crt, key: pki/server.key, clientCA: pki/ca.crt }
reposotories:
  - name: config
    path: repo
log: { level: loud }
audit: { stroe: sqlite }
`;
    const err = errorOf(() => loadSettings({ file: file(text), env: { CONFIG_SERVICE_SERVER_PORT: 'eighty' } }));
    expect(err.message).toBe(
      [
        'Invalid service settings:',
        "  reposotories: unknown setting; did you mean 'repositories'?",
        "  server.tls.clientCA: unknown setting; did you mean 'clientCa'?",
        "  audit.stroe: unknown setting; did you mean 'store'?",
        '  server.port: Expected integer (from CONFIG_SERVICE_SERVER_PORT)',
        '  log.level: must be one of: fatal, error, warn, info, debug, trace, silent',
      ].join('\n'),
    );
  });

  it('reports a missing required setting once, and an unknown key far from any known one without a guess', () => {
    const err = errorOf(() => loadSettings({ file: file('server:\n  tls: { cert: a, key: b }\nrepositories: [{ name: config, path: repo }]\nfrobnicate: 1\n'), env: {} }));
    expect(err.message).toBe('Invalid service settings:\n  frobnicate: unknown setting\n  server.tls.clientCa: required, not set');
  });

  it.each([
    ['user info in the URL', '{ name: c, url: "http://bot:tok@git.example.com/c.git" }', "user info in the URL"],
    ["'auth'", '{ name: c, url: "http://git.example.com/c.git", auth: { username: bot, passwordEnv: GIT_TOKEN } }', "'auth'"],
  ])('refuses credentials (%s) over a plain http:// URL unless allowInsecureHttp is set', (_name, entry, what) => {
    const text = `server:\n  tls: { cert: a, key: b, clientCa: c }\nrepositories: [${entry}]\n`;
    const err = errorOf(() => loadSettings({ file: file(text), env: {} }));
    expect(err.message).toBe(
      `Invalid service settings:\n  repositories.0.url: a plain http:// URL would send the credentials (${what}) unencrypted; use https://, or set repositories.0.allowInsecureHttp: true for a Git server on this host or behind an encrypted tunnel`,
    );
    const allowed = loadSettings({ file: file(text.replace(' }]', ', allowInsecureHttp: true }]')), env: {} });
    expect(allowed.repositories[0]!.allowInsecureHttp).toBe(true);
    // Without credentials, or over https, nothing is needed.
    expect(loadSettings({ file: file(`server:\n  tls: { cert: a, key: b, clientCa: c }\nrepositories: [{ name: c, url: "http://git.example.com/c.git" }]\n`), env: {} }).repositories).toHaveLength(1);
    expect(loadSettings({ file: file(text.replace('http://', 'https://')), env: {} }).repositories).toHaveLength(1);
  });

  it('takes audit.retentionDays as an optional integer >= 1 (absent: keep forever)', () => {
    expect(loadSettings({ file: file(minimal), env: {} }).audit.retentionDays).toBeUndefined();
    expect(loadSettings({ file: file(minimal + 'audit: { retentionDays: 90 }\n'), env: {} }).audit.retentionDays).toBe(90);
    expect(loadSettings({ file: file(minimal), env: { CONFIG_SERVICE_AUDIT_RETENTION_DAYS: '30' } }).audit.retentionDays).toBe(30);
    for (const bad of ['0', '-3']) {
      const err = errorOf(() => loadSettings({ file: file(minimal + `audit: { retentionDays: ${bad} }\n`), env: {} }));
      expect(err.code).toBe('CFG_ERR_SETTINGS_INVALID');
      expect(err.message).toContain('audit.retentionDays');
    }
  });

  it('refuses a repository with both or neither of path and url', () => {
    const both = errorOf(() => loadSettings({ env: {}, overrides: { server: { tls: { cert: 'a', key: 'b', clientCa: 'c' } }, repositories: [{ name: 'x', path: '/r', url: 'https://h/r.git' }] } }));
    expect(both.message).toContain("repositories.0: set exactly one of 'path' or 'url'");
  });

  describe('several repositories (SPEC §4)', () => {
    const tls = { cert: 'c', key: 'k', clientCa: 'ca' };
    const load = (repositories: unknown[], more: Record<string, unknown> = {}) => loadSettings({ env: {}, baseDir: dir, overrides: { server: { tls }, repositories, ...more } });

    it('takes a list with apps globs and one template entry; git timeouts have defaults', () => {
      const s = load([
        { name: 'team-a', url: 'https://git.example/a.git', apps: ['orders', 'pay-*'] },
        { name: 'team-b', path: 'b', apps: ['billing'] },
        { name: 'per-app', url: 'https://git.example/config/{app}.git', apps: ['svc-*'], maxMirrors: 5 },
      ]);
      expect(s.repositories.map((r) => r.name)).toEqual(['team-a', 'team-b', 'per-app']);
      expect(s.git).toEqual({ connectTimeoutMs: 10000, idleTimeoutMs: 60000, syncTimeoutMs: 120000, retryMinMs: 1000, retryMaxMs: 300000, staleAfterMs: 0 });
    });

    it('refuses two entries that claim one application, naming both, the globs and an example', () => {
      const err = errorOf(() => load([
        { name: 'team-a', url: 'https://git.example/a.git', apps: ['orders', 'pay-*'] },
        { name: 'team-b', url: 'https://git.example/b.git', apps: ['*-eu'] },
      ]));
      expect(err.code).toBe('CFG_ERR_SETTINGS_INVALID');
      expect(err.message).toContain("repositories: 'team-a' (apps 'pay-*') and 'team-b' (apps '*-eu') both claim applications, e.g. 'pay-eu'; an application must belong to one repository");
      // An entry without apps claims every application.
      expect(errorOf(() => load([{ name: 'a', path: 'a' }, { name: 'b', path: 'b', apps: ['orders'] }])).message).toContain(
        "'a' (apps '*' (no 'apps': every application)) and 'b' (apps 'orders') both claim applications, e.g. 'orders'",
      );
      expect(errorOf(() => load([{ name: 'a', path: 'a', apps: ['orders'] }, { name: 'b', path: 'b', apps: ['orders'] }])).message).toContain("e.g. 'orders'");
    });

    it('refuses a second template, {app} outside the path, template-only settings on a static entry, timeouts not below the deadline', () => {
      const msg = errorOf(() =>
        load(
          [
            { name: 't1', url: 'https://git.example/{app}.git', apps: ['a-*'] },
            { name: 't2', url: 'https://{app}.git.example/c.git', apps: ['b-*'] },
            { name: 's', url: 'https://git.example/s.git', apps: ['c'], maxMirrors: 3 },
          ],
          { git: { idleTimeoutMs: 200000 } },
        ),
      ).message;
      expect(msg).toContain("repositories.1.url: only one entry may be a template with '{app}'");
      expect(msg).toContain("repositories.1.url: '{app}' must appear once, in the path");
      expect(msg).toContain("repositories.2.maxMirrors: only for the template entry (a url with '{app}')");
      expect(msg).toContain('git.idleTimeoutMs: must be below git.syncTimeoutMs (120000)');
    });
  });

  it('names the file and the YAML error position when the settings file does not parse', () => {
    const err = errorOf(() => loadSettings({ file: file('server: [\n'), env: {} }));
    expect(err.code).toBe('CFG_ERR_SETTINGS_INVALID');
    expect(err.message).toMatch(/s-[a-z0-9]+\.yml: .*line 2/);
  });

  it('derives one variable per leaf setting from the schema', () => {
    const names = listEnvSettings().map((s) => s.name);
    expect(names).toContain('CONFIG_SERVICE_SERVER_TLS_CLIENT_CA');
    expect(names).toContain('CONFIG_SERVICE_REPOSITORIES');
    expect(names).toContain('CONFIG_SERVICE_MANAGEMENT_PORT');
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('documents: and webhooks: settings', () => {
  it('default to the document limits of docs/configuration.md and a 10-minute delivery window', () => {
    const s = loadSettings({ file: file(minimal) });
    expect(s.documents).toEqual({
      maxBytes: 16_777_216,
      maxDepth: 64,
      maxKeys: 100_000,
      maxAliases: 1_000,
      parseTimeoutMs: 20_000,
      workerThresholdBytes: 16_384,
      workers: 2,
      workerMemoryMb: 1_024,
    });
    expect(s.webhooks).toEqual({ deliveryWindowMs: 600_000 });
  });

  it('refuses a depth the parser cannot hold and names the variable', () => {
    const err = errorOf(() => loadSettings({ file: file(minimal), env: { CONFIG_SERVICE_DOCUMENTS_MAX_DEPTH: '1000' } }));
    expect(err.message).toBe('Invalid service settings:\n  documents.maxDepth: Expected integer to be less or equal to 256 (from CONFIG_SERVICE_DOCUMENTS_MAX_DEPTH)');
  });
});

describe('loadDocumentSettings (config-service validate)', () => {
  it('reads only documents: from the file (other sections may name missing files), then CONFIG_SERVICE_DOCUMENTS_*', () => {
    const f = file('server:\n  tls: { cert: /missing.crt }\ndocuments:\n  maxKeys: 10\n  maxAliases: 3\n');
    expect(loadDocumentSettings({ file: f, env: { CONFIG_SERVICE_DOCUMENTS_MAX_ALIASES: '7' } })).toMatchObject({ maxKeys: 10, maxAliases: 7, maxDepth: 64 });
    expect(loadDocumentSettings({})).toMatchObject({ maxKeys: 100_000, maxAliases: 1_000 });
  });

  it('names a bad limit by setting and variable', () => {
    const err = errorOf(() => loadDocumentSettings({ file: file('documents:\n  maxKeys: 0\n'), env: { CONFIG_SERVICE_DOCUMENTS_WORKERS: 'many' } }));
    expect(err.code).toBe('CFG_ERR_SETTINGS_INVALID');
    expect(err.message).toBe(
      'Invalid service settings:\n  documents.maxKeys: Expected integer to be greater or equal to 1\n  documents.workers: Expected integer (from CONFIG_SERVICE_DOCUMENTS_WORKERS)',
    );
  });
});
