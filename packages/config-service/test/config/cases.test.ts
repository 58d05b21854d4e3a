import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mergeSources, selectSources } from '../../src/config/merge.js';
import { parseDocument } from '../../src/config/parse.js';
import { render } from '../../src/config/render.js';
import { flatten } from '../../src/config/tree.js';
import type { MergedConfig, PropertySource } from '../../src/config/types.js';
import { configFor } from './helpers.js';

describe('case 08: .properties input, end to end', () => {
  const files = {
    'orders/application.properties': Buffer.concat([
      Buffer.from('city=B\\u00FCckeburg\ngreeting = Hello\\\n           World\npath=C:\\\\tmp\\\\x\ncolon\\:key=v1\nspaced\\ key=v2\ntag=caf', 'latin1'),
      Buffer.from([0xe9]),
      Buffer.from('\n'),
    ]),
    'orders/application-dev.properties': Buffer.from('tag=café\n', 'utf8'),
  };
  const expected = { city: 'Bückeburg', 'colon:key': 'v1', greeting: 'HelloWorld', path: 'C:\\tmp\\x', 'spaced key': 'v2', tag: 'café' };

  it.each([[[]], [['dev']]])('profiles %j', (profiles) => {
    const json = render(configFor(files, 'orders', profiles), 'json');
    expect(JSON.parse(json)).toEqual(expected);
    expect(json).not.toContain('\ufffd');
    expect(json).not.toContain('Ã');
  });
});

describe('case 12: empty documents, nulls, empty lists, BOM, CRLF', () => {
  const files = {
    'application.yml': new Uint8Array(0),
    'orders/application.yml': '# only a comment\n',
    'orders/application-dev.yml': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('server.port: 8081\nretries: []\nproxy: ~\n')]),
    'application-dev.properties': 'a=1\r\nmsg=hello \\\r\n   world\r\n',
  };
  const config = configFor({ ...files, 'application.yml': 'proxy: http://proxy\n' }, 'orders', ['dev']);
  const configEmpty = configFor(files, 'orders', ['dev']);

  it('json', () => {
    for (const c of [config, configEmpty]) {
      expect(render(c, 'json')).toBe('{\n  "a": "1",\n  "msg": "hello world",\n  "retries": [],\n  "server": {\n    "port": 8081\n  }\n}\n');
    }
  });
  it('properties and env', () => {
    expect(render(config, 'properties')).toBe('a=1\nmsg=hello world\nretries=\nserver.port=8081\n');
    expect(render(config, 'env')).toBe("export A='1'\nexport MSG='hello world'\nexport RETRIES=''\nexport SERVER_PORT='8081'\n");
  });
});

describe('case 17: the Spring Cloud Config sample repository (spring layout)', () => {
  const dir = new URL('./fixtures/spring-config-repo/', import.meta.url);
  const read = (name: string, profiles: readonly string[]): PropertySource[] =>
    selectSources(parseDocument({ path: name, bytes: readFileSync(new URL(name, dir)), commit: 'c17' }), profiles);
  /** application, foo, then per profile application-p, foo-p (files that exist in the fixture). */
  const configFor17 = (profiles: string[]): MergedConfig => {
    const names = ['application.yml', 'foo.properties'];
    for (const p of profiles) names.push(`application-${p}.yml`, `foo-${p}.yml`, `foo-${p}.properties`);
    const existing = new Set(['application.yml', 'application-dev.yml', 'foo.properties', 'foo-development.properties', 'foo-db.properties', 'foo-dev.yml']);
    return mergeSources(names.filter((n) => existing.has(n)).flatMap((n) => read(n, profiles)));
  };
  const get = (c: MergedConfig, name: string): string | undefined => flatten(c).find(([k]) => k === name)?.[1];

  it('development', () => {
    const c = configFor17(['development']);
    expect(get(c, 'foo')).toBe('from foo development');
    expect(get(c, 'bar')).toBe('spam');
    expect(get(c, 'democonfigclient.message')).toBe('hello spring io');
    expect(get(c, 'eureka.client.serviceUrl.defaultZone')).toBe('http://localhost:8761/eureka/');
    expect(get(c, 'info.description')).toBe('Spring Cloud Samples');
    expect(get(c, 'spring.cloud.config.uri')).toBeUndefined();
  });

  it('names the documents of application.yml as Spring Boot does', () => {
    const parsed = parseDocument({ path: 'application.yml', bytes: readFileSync(new URL('application.yml', dir)) });
    expect(parsed.sources.map((s) => [s.source.name, s.activation])).toEqual([
      ['application.yml (document #0)', undefined],
      ['application.yml (document #1)', 'cloud'],
      ['application.yml (document #2)', 'docker'],
    ]);
  });

  it('dev', () => {
    const c = configFor17(['dev']);
    expect(get(c, 'democonfigclient.message')).toBe('hello from dev profile');
    expect(get(c, 'my.prop')).toBe('from application-dev.yml');
  });

  it('cloud (placeholders are left for the resolver)', () => {
    const c = configFor17(['cloud']);
    expect(get(c, 'hystrix.command.default.execution.isolation.thread.timeoutInMilliseconds')).toBe('60000');
    expect(get(c, 'oauth2.resource.serviceId')).toBe('${PREFIX:}resource');
    expect(get(c, 'eureka.instance.preferIpAddress')).toBeUndefined();
    expect(get(c, 'spring.config.activate.on-profile')).toBeUndefined();
  });

  it('docker', () => {
    const c = configFor17(['docker']);
    expect(get(c, 'eureka.instance.preferIpAddress')).toBe('true');
    expect(get(c, 'spring.cloud.config.uri')).toBe('http://${CONFIGSERVER_1_PORT_8888_TCP_ADDR:localhost}:8888');
  });

  it('development,db', () => {
    const c = configFor17(['development', 'db']);
    expect(get(c, 'foo.db')).toBe('mycooldb');
    expect(get(c, 'foo')).toBe('from foo development');
  });
});
