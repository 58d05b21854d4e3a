/**
 * `config-service injector` settings: file, then CONFIG_SERVICE_INJECTOR_* variables;
 * defaults from the schema; every bad setting named by path (and variable).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInjectorSettings } from '../../src/injector/settings.js';

function file(text: string): string {
  const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'injector-settings-')), 'injector.yml');
  writeFileSync(f, text);
  return f;
}

const MINIMAL = ['server:', '  tls: { cert: tls/tls.crt, key: tls/tls.key, clientCa: tls/ca.crt }', 'configInit:', '  image: registry.example.com/config-init:1', '  serverUrl: https://config-service.svc', ''].join('\n');

describe('loadInjectorSettings', () => {
  it('fills the defaults and resolves TLS paths against the file', () => {
    const f = file(MINIMAL);
    const s = loadInjectorSettings({ file: f, env: {} });
    expect(s.server).toEqual({ host: '0.0.0.0', port: 8443, tls: { cert: path.join(path.dirname(f), 'tls/tls.crt'), key: path.join(path.dirname(f), 'tls/tls.key'), clientCa: path.join(path.dirname(f), 'tls/ca.crt') } });
    expect(s.annotationPrefix).toBe('config-service.example');
    expect(s.identity).toEqual({ source: 'csi', csiDriver: 'spiffe.csi.cert-manager.io', secretName: '{app}-config-client-tls', mountPath: '/var/run/config-service/identity' });
    expect(s.defaults).toEqual({ mountPath: '/config', formats: ['properties'], fsGroup: 10001 });
    expect(s.configInit).toEqual({ image: 'registry.example.com/config-init:1', serverUrl: 'https://config-service.svc', imagePullPolicy: 'IfNotPresent', logFormat: 'json', healthPort: 8787, resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '128Mi' } } });
  });

  it('CONFIG_SERVICE_INJECTOR_* variables win over the file; lists and maps as YAML', () => {
    const s = loadInjectorSettings({
      file: file(MINIMAL),
      env: { CONFIG_SERVICE_INJECTOR_CONFIG_INIT_IMAGE: 'other:2', CONFIG_SERVICE_INJECTOR_SERVER_PORT: '9443', CONFIG_SERVICE_INJECTOR_DEFAULTS_FORMATS: '[json, env]', CONFIG_SERVICE_INJECTOR_IDENTITY_SOURCE: 'secret' },
    });
    expect(s.configInit.image).toBe('other:2');
    expect(s.server.port).toBe(9443);
    expect(s.defaults.formats).toEqual(['json', 'env']);
    expect(s.identity.source).toBe('secret');
  });

  it('names every bad setting, and the variable it came from', () => {
    expect(() =>
      loadInjectorSettings({ file: file(MINIMAL.replace('https://config-service.svc', 'http://config-service.svc')), env: { CONFIG_SERVICE_INJECTOR_DEFAULTS_FORMATS: '[xml]' } }),
    ).toThrow(/configInit\.serverUrl: Expected string to match '\^https:\/\/'[\s\S]*defaults\.formats\.0: .* \(from CONFIG_SERVICE_INJECTOR_DEFAULTS_FORMATS\)/);
    expect(() => loadInjectorSettings({ file: file(`${MINIMAL}unknown: 1\n`), env: {} })).toThrow(/CFG_ERR_SETTINGS_INVALID|Unexpected property/);
  });
});
