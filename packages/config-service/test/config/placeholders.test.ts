/**
 * Placeholders (SPEC §2.2): `${key}`, `${key:default}`, nesting, escapes, cycles,
 * missing keys, list references, bounds. Semantics of Spring 6.2's PlaceholderParser.
 */
import { describe, expect, it } from 'vitest';
import { flatten, mergeSources } from '../../src/config/index.js';
import { MAX_PLACEHOLDER_CHAIN, resolvePlaceholders, type PlaceholderError } from '../../src/config/placeholders.js';
import type { MergedConfig, PropertySource } from '../../src/config/types.js';
import { configFor, configOf } from './helpers.js';

/** Resolves and flattens to `{ name: value }`. */
function resolved(config: MergedConfig): Record<string, string> {
  return Object.fromEntries(flatten(resolvePlaceholders(config)));
}

function failure(config: MergedConfig): PlaceholderError {
  try {
    resolvePlaceholders(config);
  } catch (err) {
    return err as PlaceholderError;
  }
  throw new Error('expected CFG_ERR_PLACEHOLDER');
}

/** A configuration of string properties from one source, no document parsing involved. */
function props(values: Record<string, string>, document = 'application.properties'): MergedConfig {
  const source: PropertySource = {
    name: document,
    entries: Object.entries(values).map(([k, v], i) => ({ path: k.split('.'), value: v, origin: { document, line: i + 1, column: 1 } })),
  };
  return mergeSources([source]);
}

describe('resolvePlaceholders: values', () => {
  it('resolves a plain reference and keeps text around it', () => {
    expect(resolved(props({ host: 'db.example.com', url: 'jdbc:postgresql://${host}:5432/orders' }))).toEqual({
      host: 'db.example.com',
      url: 'jdbc:postgresql://db.example.com:5432/orders',
    });
  });

  it('uses the default only when the key has no value; the first colon separates it', () => {
    expect(resolved(props({ a: '${missing:http://h:80/x}', b: '${present:unused}', present: 'yes' }))).toEqual({
      a: 'http://h:80/x',
      b: 'yes',
      present: 'yes',
    });
  });

  it('an empty default gives the empty string', () => {
    expect(resolved(props({ a: '[${x:}]', b: '${x:}' }))).toEqual({ a: '[]', b: '' });
  });

  it('resolves nested placeholders in the key, and in the default only when needed', () => {
    expect(resolved(props({ a: '${svc.${which:blue}.url:none}', 'svc.blue.url': 'http://blue', which: 'blue' }))).toEqual({
      a: 'http://blue',
      'svc.blue.url': 'http://blue',
      which: 'blue',
    });
    expect(resolved(props({ a: '${svc.${which:green}.url:fallback-${b}}', b: 'B' }))).toEqual({ a: 'fallback-B', b: 'B' });
    // The default is never resolved when the key has a value, so a broken default does no harm.
    expect(resolved(props({ a: '${k:${missing}}', k: 'v' }))).toEqual({ a: 'v', k: 'v' });
  });

  it('the SPEC example ${a.${b:x}.c:default}', () => {
    expect(resolved(props({ v: '${a.${b:x}.c:default}', 'a.x.c': 'found' }))).toEqual({ v: 'found', 'a.x.c': 'found' });
    expect(resolved(props({ v: '${a.${b:x}.c:default}', b: 'y' }))).toEqual({ v: 'default', b: 'y' });
  });

  it('resolves references in referenced values (chains)', () => {
    expect(resolved(props({ a: '${b}/a', b: '${c}/b', c: 'c' }))).toEqual({ a: 'c/b/a', b: 'c/b', c: 'c' });
  });

  it('\\${ is a literal ${, also inside a referenced value and a default', () => {
    expect(resolved(props({ a: 'cost: \\${price}', b: '${a}', c: '${none:\\${x}}' }))).toEqual({
      a: 'cost: ${price}',
      b: 'cost: ${price}',
      c: '${x}',
    });
  });

  it('text that is no placeholder stays as it is', () => {
    expect(resolved(props({ a: 'a ${ b', b: '$x {y} }', c: '\\:', d: '${' }))).toEqual({ a: 'a ${ b', b: '$x {y} }', c: '\\:', d: '${' });
  });

  it('\\: is a literal colon in a key', () => {
    expect(resolved(props({ a: '${x\\:y:dflt}', 'x:y': 'colon-key' }))).toEqual({ a: 'colon-key', 'x:y': 'colon-key' });
  });

  it('numbers and booleans are referenced as their text; the result is a string', () => {
    const config = resolvePlaceholders(configOf('port: 8080\nbig: 12345678901234567891\nf: 1.50\non: true\nurl: "http://h:${port}/${big}/${f}/${on}"\n'));
    expect(config.get('["url"]')?.value).toBe('http://h:8080/12345678901234567891/1.50/true');
    expect(config.get('["port"]')?.value).toEqual({ kind: 'number', text: '8080' });
    expect(resolvePlaceholders(configOf('port: 8080\np: ${port}\n')).get('["p"]')?.value).toBe('8080');
  });

  it('references list elements by index and resolves inside lists and maps in lists', () => {
    const config = resolvePlaceholders(
      configOf('hosts: [a.example.com, b.example.com]\nprimary: ${hosts[1]}\nservers:\n  - host: ${hosts[0]}\n    port: 1\n  - ${primary}\n'),
    );
    expect(Object.fromEntries(flatten(config))).toEqual({
      'hosts[0]': 'a.example.com',
      'hosts[1]': 'b.example.com',
      primary: 'b.example.com',
      'servers[0].host': 'a.example.com',
      'servers[0].port': '1',
      'servers[1]': 'b.example.com',
    });
  });

  it('a list or map as a whole cannot be referenced', () => {
    expect(resolved(configOf('hosts: [a]\nm: {k: v}\nx: ${hosts:none}\ny: ${m:none}\n'))).toEqual({ 'hosts[0]': 'a', 'm.k': 'v', x: 'none', y: 'none' });
  });

  it('references a bracketed key by its flattened name', () => {
    expect(resolved(configOf('annotations:\n  "[app.example.com/source]": git\nsrc: ${annotations[app.example.com/source]}\n'))).toEqual({
      'annotations[app.example.com/source]': 'git',
      src: 'git',
    });
  });

  it('resolves against the merged result (higher layers win), never the process environment', () => {
    process.env['CFG_TEST_PLACEHOLDER_ENV'] = 'from-env';
    try {
      const config = configFor(
        {
          'application.yml': 'db.host: shared\nurl: jdbc://${db.host}\nenv: ${CFG_TEST_PLACEHOLDER_ENV:not-env}\nhome: ${HOME:no-home}\n',
          'orders/application-dev.yml': 'db.host: dev-db\n',
        },
        'orders',
        ['dev'],
      );
      expect(resolved(config)).toEqual({ 'db.host': 'dev-db', url: 'jdbc://dev-db', env: 'not-env', home: 'no-home' });
    } finally {
      delete process.env['CFG_TEST_PLACEHOLDER_ENV'];
    }
  });

  it('keeps origins and overridden origins; untouched properties are the same objects', () => {
    const config = configFor({ 'application.yml': 'a: ${b}\nb: x\n', 'orders/application.yml': 'a: ${b}-${b}\n' }, 'orders');
    const out = resolvePlaceholders(config);
    const a = out.get('["a"]');
    expect(a?.value).toBe('x-x');
    expect(a?.origin).toEqual({ document: 'orders/application.yml', line: 1, column: 1, commit: 'c0ffee' });
    expect(a?.overridden).toEqual([{ document: 'application.yml', line: 1, column: 1, commit: 'c0ffee' }]);
    expect(out.get('["b"]')).toBe(config.get('["b"]'));
    expect([...out.keys()]).toEqual([...config.keys()]);
  });

  it('the Spring Cloud sample: nested defaults with colons in URLs', () => {
    const yaml = [
      'spring.cloud.config.uri: ${vcap.services.${PREFIX:}configserver.credentials.uri:http://user:password@${PREFIX:}configserver.${application.domain:cfapps.io}}',
      'oauth2.resource.tokenInfoUri: ${vcap.services.${OAUTH2_RESOURCE_SERVICEID:${oauth2.resource.serviceId:sso}}.credentials.tokenInfoUri:}',
      'oauth2.resource.serviceId: ${PREFIX:}resource',
      'application.domain: ${APPLICATION_DOMAIN:cfapps.io}',
      'eureka.password: password',
      'eureka.instance.hostname: ${vcap.application.uris[0]:localhost}',
      'eureka.client.serviceUrl.defaultZone: ${vcap.services.${PREFIX:}eureka.credentials.uri:http://user:${eureka.password:}@${PREFIX:}eureka.${application.domain:cfapps.io}}/eureka/',
      '',
    ].join('\n');
    expect(resolved(configOf(yaml))).toEqual({
      'application.domain': 'cfapps.io',
      'eureka.client.serviceUrl.defaultZone': 'http://user:password@eureka.cfapps.io/eureka/',
      'eureka.instance.hostname': 'localhost',
      'eureka.password': 'password',
      'oauth2.resource.serviceId': 'resource',
      'oauth2.resource.tokenInfoUri': '',
      'spring.cloud.config.uri': 'http://user:password@configserver.cfapps.io',
    });
  });
});

describe('resolvePlaceholders: errors', () => {
  it('a missing key without default names the placeholder, the key and its document position', () => {
    const err = failure(configOf('a:\n  b: "x-${x.y}"\n'));
    expect(err.code).toBe('CFG_ERR_PLACEHOLDER');
    expect(err.statusCode).toBe(422);
    expect(err.message).toBe("orders/application.yml:2:3 (commit c0ffee): unresolvable placeholder 'x.y' in key 'a.b'");
    expect(err.data).toEqual({ kind: 'missing', key: 'a.b', chain: ['a.b'], placeholder: 'x.y', document: 'orders/application.yml', line: 2, column: 3 });
  });

  it('a missing key reached through another key names the chain and the inner key’s document', () => {
    const config = configFor({ 'application.yml': 'b: ${c}\nc: ${x.y}\n', 'orders/application.yml': 'a: ${b}\n' }, 'orders');
    const err = failure(config);
    expect(err.message).toBe("application.yml:2:1 (commit c0ffee): unresolvable placeholder 'x.y' in key 'c' (reached from key 'a': a -> b -> c)");
    expect(err.data.chain).toEqual(['a', 'b', 'c']);
  });

  it('names a nested placeholder’s key as written, never a resolved value', () => {
    const err = failure(props({ secret: 's3cr3t', a: '${db.${secret}.url}' }));
    expect(err.message).toBe("application.properties:2:1: unresolvable placeholder 'db.${secret}.url' in key 'a'");
    expect(err.message).not.toContain('s3cr3t');
    // A nested default is a value too: left out.
    expect(failure(props({ a: '${db.${pw:hunter2}.url}' })).message).toBe("application.properties:1:1: unresolvable placeholder 'db.${pw}.url' in key 'a'");
  });

  it('a cycle names the chain', () => {
    expect(failure(props({ a: '${b}', b: '${a}' })).message).toBe("application.properties:1:1: circular placeholder reference a -> b -> a in key 'a'");
    expect(failure(props({ a: 'x${a:dflt}' })).message).toBe("application.properties:1:1: circular placeholder reference a -> a in key 'a'");
    const three = failure(props({ a: '${b}', b: '${c}', c: '${b}' }));
    expect(three.message).toBe("application.properties:1:1: circular placeholder reference a -> b -> c -> b in key 'a'");
    expect(three.data.kind).toBe('cycle');
  });

  it('a key referenced twice is no cycle', () => {
    expect(resolved(props({ a: '${b}${b}', b: '${c}-${c}', c: 'x' }))).toEqual({ a: 'x-xx-x', b: 'x-x', c: 'x' });
  });

  it('bounds long chains', () => {
    const values: Record<string, string> = {};
    for (let i = 0; i < MAX_PLACEHOLDER_CHAIN + 5; i++) values[`k${i}`] = `\${k${i + 1}}`;
    values[`k${MAX_PLACEHOLDER_CHAIN + 5}`] = 'end';
    const err = failure(props(values));
    expect(err.data.kind).toBe('depth');
    expect(err.data.key).toBe('k0');
  });

  it('bounds deep nesting', () => {
    const err = failure(props({ a: `${'${'.repeat(40)}x${'}'.repeat(40)}` }));
    expect(err.message).toBe("application.properties:1:1: placeholders in key 'a' nest deeper than 32 levels or chain more than 64 keys");
  });

  it('bounds exponential expansion', () => {
    const values: Record<string, string> = { k0: 'x'.repeat(1000) };
    for (let i = 1; i <= 12; i++) values[`k${i}`] = `\${k${i - 1}}\${k${i - 1}}`;
    const err = failure(props(values));
    expect(err.data.kind).toBe('size');
    expect(err.message).toBe("application.properties:12:1: the resolved value of key 'k11' exceeds 1048576 characters");
  });

  it('onError collects every problem and keeps those values as written', () => {
    const errors: string[] = [];
    const out = resolvePlaceholders(props({ a: '${x}', b: '${b}', c: '${d}', d: 'ok' }), { onError: (e) => errors.push(e.message) });
    expect(errors).toEqual([
      "application.properties:1:1: unresolvable placeholder 'x' in key 'a'",
      "application.properties:2:1: circular placeholder reference b -> b in key 'b'",
    ]);
    expect(Object.fromEntries(flatten(out))).toEqual({ a: '${x}', b: '${b}', c: 'ok', d: 'ok' });
  });
});
