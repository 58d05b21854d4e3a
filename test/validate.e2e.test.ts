/**
 * `config-service validate` as the built CLI (SPEC §9), and placeholders and schemas on
 * the real service over mTLS (SPEC §2.2, §2.4; case 17 on Spring Cloud Config's sample
 * repository, fixtures/spring-config-repo, Apache-2.0).
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, startTestService, type ClientCert, type GitTestRepo, type TestPki, type TestService } from '#helpers';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(here, '..', 'packages', 'config-service', 'dist', 'cli', 'main.js');
const SAMPLE = path.join(here, 'fixtures', 'spring-config-repo');

/** Runs the built CLI; returns its exit code and output. */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under `dir`, path → bytes. */
function readTreeFiles(dir: string, prefix = ''): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(full).isDirectory()) Object.assign(out, readTreeFiles(full, rel));
    else out[rel] = readFileSync(full);
  }
  return out;
}

const temps: string[] = [];
const services: TestService[] = [];
const repos: GitTestRepo[] = [];
let pki: TestPki;
let foo: ClientCert;
let orders: ClientCert;
let processor: ClientCert;

beforeAll(async () => {
  pki = await makeCerts('validate');
  foo = await pki.client('foo');
  orders = await pki.client('orders');
  processor = await pki.client('processor');
});

afterAll(async () => {
  for (const s of services) await s.close();
  for (const r of repos) r.remove();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('config-service validate (built CLI)', () => {
  it('case 17: the Spring Cloud Config sample in the spring layout has no errors (exit 0)', () => {
    const r = cli('validate', SAMPLE, '--layout', 'spring');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        "configserver.yml:8:7: warning: unresolvable placeholder 'spring.application.name' in key 'service.definition.metadata.uri' [in configserver/cloud]",
        "processor.yml:6:7: warning: unresolvable placeholder 'vcap.services.${PREFIX}mongodb.credentials.uri' in key 'spring.data.mongodb.uri' [in processor/cloud]",
        // Spring Cloud Config's own {cipher} format: its Spring clients decrypt it; this service cannot.
        "stores.yml:1:1: warning: the secret at key 'foo' cannot be decrypted by this service: the value is not a valid {cipher} envelope",
        "stores.yml:7:7: warning: unresolvable placeholder 'vcap.services.${PREFIX}mongodb.credentials.uri' in key 'spring.data.mongodb.uri' [in stores/cloud]",
        "test.json:1:1: warning: the top level is not an object, so this is no configuration document: Spring Cloud Config serves such a file only as a plain-text resource, and configuration requests for application 'test' fail with 422 here",
        '0 errors, 5 warnings; checked 19 documents, 12 applications, 8 profile sets',
        '',
      ].join('\n'),
    );
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/: error: /);
  });

  it('a broken repository: exact findings and exit 1', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-validate-e2e-'));
    temps.push(dir);
    const files: Record<string, string> = {
      'application.yml': 'db.host: shared-db\n',
      'application.properties': 'db.pool=5\n',
      'orders/application.yml': 'url: jdbc:postgresql://${db.hostname}/orders\nfeature-flags:\n  new-checkout: true\n  new_checkout: false\n',
      'orders/application-prod.yml': 'db:\n  pool: 1\n  pool: 2\n',
      'billing/application.yml': 'port: ${billing.port:eighty}\n',
      'billing/schema.json': '{"properties": {"port": {"type": "integer"}}}\n',
    };
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      writeFileSync(path.join(dir, p), c);
    }
    const r = cli('validate', dir);
    expect(r.stdout).toBe(
      [
        "application.yml:1:1: warning: one layer has several documents: application.properties overrides this one path by path (.properties beats .yml beats .yaml beats .json, Spring Boot's order)",
        "billing/application.yml:1:1: error: violates billing/schema.json at 'port': must be integer [in billing, billing/prod]",
        "orders/application-prod.yml:3:3: error: duplicate key \"pool\"",
        "orders/application.yml:1:1: error: unresolvable placeholder 'db.hostname' in key 'url' [in orders]",
        'orders/application.yml:4:3: error: keys "feature-flags.new-checkout" and "feature-flags.new_checkout" both map to the environment name FEATURE_FLAGS_NEW_CHECKOUT [in orders]',
        '4 errors, 1 warning; checked 5 documents, 2 applications, 2 profile sets',
        '',
      ].join('\n'),
    );
    expect(r.stdout).not.toContain('eighty');
    expect(r.status).toBe(1);
    const json = cli('validate', dir, '--format', 'json');
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, errors: 4, warnings: 1, documents: 5 });
  });

  it('usage errors exit 64', () => {
    expect(cli('validate', SAMPLE, '--layout', 'nested').status).toBe(64);
  });

  it('a profile name the service refuses (Prod) is refused with exit 64', () => {
    const r = cli('validate', SAMPLE, '--layout', 'spring', '--profiles', 'dev,Prod');
    expect(r.status).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "config-service: CFG_ERR_USAGE: --profiles: 'Prod' is not a profile name the service accepts (^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$, no '..'; profile names are lower case)\n",
    );
  });

  it('a missing directory and a folder without configuration are refused with exit 2, saying why', () => {
    const missing = path.join(os.tmpdir(), 'no-such-config-repo-4c1b');
    const gone = cli('validate', missing);
    expect(gone.status).toBe(2);
    expect(gone.stdout).toBe('');
    expect(gone.stderr).toBe(`config-service validate: ${missing} does not exist: nothing to validate\n`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-validate-empty-'));
    temps.push(dir);
    mkdirSync(path.join(dir, 'docs'));
    writeFileSync(path.join(dir, 'docs', 'README.md'), '# docs\n');
    writeFileSync(path.join(dir, 'package.json'), '{}\n');
    const empty = cli('validate', dir);
    expect(empty.status).toBe(2);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toBe(
      `config-service validate: ${dir} is not a configuration repository: it holds no configuration documents (application*.yml, .yaml, .json or .properties at the root or in an application folder) for layout 'folders'\n`,
    );
    // A spring-layout repository checked as folders gets a hint.
    writeFileSync(path.join(dir, 'orders.yml'), 'a: 1\n');
    const spring = cli('validate', dir);
    expect(spring.status).toBe(2);
    expect(spring.stderr).toContain("is it a 'spring' layout repository? add --layout spring");
  });

  it('every schema violation of an application is reported, not only the first', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-validate-schema-'));
    temps.push(dir);
    mkdirSync(path.join(dir, 'orders'));
    writeFileSync(path.join(dir, 'orders', 'application.yml'), 'port: high\nname: 7\nretries: -1\n');
    writeFileSync(
      path.join(dir, 'orders', 'schema.json'),
      JSON.stringify({ type: 'object', required: ['owner'], properties: { port: { type: 'integer' }, name: { type: 'string' }, retries: { type: 'integer', minimum: 0 } } }),
    );
    const r = cli('validate', dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(
      [
        "orders/application.yml:1:1: error: violates orders/schema.json at 'port': must be integer [in orders]",
        "orders/application.yml:2:1: error: violates orders/schema.json at 'name': must be string [in orders]",
        "orders/application.yml:3:1: error: violates orders/schema.json at 'retries': must be >= 0 [in orders]",
        "orders/schema.json:1:1: error: violates orders/schema.json at '(root)': must have required property 'owner' [in orders]",
        '4 errors, 0 warnings; checked 1 document, 1 application, 1 profile set',
        '',
      ].join('\n'),
    );
  });

  it.each([
    ['bad indentation', 'server:\n  port: 8080\n    host: x\n', "3:5: error: invalid YAML: bad indentation: this line is indented deeper than the key above it (or a key lacks its ':')"],
    ['an unclosed quote', 'a: 1\nb: "abc\nc: 2\n', '2:4: error: invalid YAML: a quoted value is not closed (its closing quote is missing)'],
    ['a tab as indentation', 'a:\n\tb: 1\n', '2:1: error: invalid YAML: tab characters must not be used for indentation'],
    ['a duplicate key', 'a: 1\nb: 2\na: 3\n', '3:1: error: duplicate key "a"'],
    ['an unclosed flow sequence', 'a: 1\nhosts: [x, y\nb: 3\n', '2:8: error: invalid YAML: a flow sequence ([) is not closed with ]'],
  ])('a YAML syntax error (%s) is reported at file:line:column of the fault', (_name, text, finding) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-validate-yaml-'));
    temps.push(dir);
    mkdirSync(path.join(dir, 'orders'));
    writeFileSync(path.join(dir, 'orders', 'application.yml'), text);
    const r = cli('validate', dir);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`orders/application.yml:${finding}\n1 error, 0 warnings; checked 1 document, 1 application, 1 profile set\n`);
  });

  it('{cipher} values are checked against the service\'s public keys (--public-key id=file, or --config secrets.keys), without a private key', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-validate-keys-'));
    temps.push(dir);
    const keys = path.join(dir, '..', `${path.basename(dir)}-keys`);
    temps.push(keys);
    expect(cli('encrypt', 'keygen', '--dir', keys, '--id', 'k1').status).toBe(0);
    expect(cli('encrypt', 'keygen', '--dir', keys, '--id', 'k9').status).toBe(0);
    const k1 = path.join(keys, 'k1.public.pem');
    const k9 = path.join(keys, 'k9.public.pem');
    const good = cli('encrypt', '--public-key', k1, '--key-id', 'k1', '--app', 'orders', '--value', 's3cret').stdout.trim();
    const unknown = cli('encrypt', '--public-key', k9, '--key-id', 'k9', '--app', 'orders', '--value', 's3cret').stdout.trim();
    // k1's public key under id k1 but written with a 2048-bit key: not what k1 wraps.
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(path.join(keys, 'other.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const other = cli('encrypt', '--public-key', path.join(keys, 'other.pem'), '--key-id', 'k1', '--app', 'orders', '--value', 's3cret').stdout.trim();
    expect(good).toMatch(/^\{cipher\}\{key:k1\}\{app:orders\}/);
    mkdirSync(path.join(dir, 'orders'));
    writeFileSync(path.join(dir, 'orders', 'application.yml'), `a: '${good}'\nb: '${unknown}'\nc: '${other}'\nd: '{cipher}not-base64!'\n`);
    const expected = [
      "orders/application.yml:2:1: error: the secret at key 'b' names key id 'k9', which no configured key has (known: 'k1'); it fails to decrypt",
      "orders/application.yml:3:1: error: the secret at key 'c' was not encrypted with the public key of 'k1' (its wrapped data key has 256 bytes, that key's modulus 384); it fails to decrypt",
      "orders/application.yml:4:1: error: the secret at key 'd' cannot be decrypted by this service: the value is not a valid {cipher} envelope",
      '3 errors, 0 warnings; checked 1 document, 1 application, 1 profile set',
      '',
    ].join('\n');
    const byKey = cli('validate', dir, '--public-key', `k1=${k1}`);
    expect(byKey.stdout).toBe(expected);
    expect(byKey.status).toBe(1);
    const settings = path.join(dir, '..', `${path.basename(dir)}-service.yml`);
    temps.push(settings);
    writeFileSync(settings, `secrets:\n  keys:\n    - id: k1\n      publicKeyFile: ${JSON.stringify(k1)}\n`);
    expect(cli('validate', dir, '--config', settings).stdout).toBe(expected);
    // Without keys, as before: only the unreadable envelope, as a warning.
    const none = cli('validate', dir);
    expect(none.status).toBe(0);
    expect(none.stdout).toContain("orders/application.yml:4:1: warning: the secret at key 'd' cannot be decrypted by this service");
  });

  it('encrypt refuses a key id that does not match the key given', () => {
    const keys = mkdtempSync(path.join(os.tmpdir(), 'cfg-encrypt-keys-'));
    temps.push(keys);
    cli('encrypt', 'keygen', '--dir', keys, '--id', 'k1');
    cli('encrypt', 'keygen', '--dir', keys, '--id', 'k2');
    const k1 = path.join(keys, 'k1.public.pem');
    const named = cli('encrypt', '--public-key', k1, '--key-id', 'k2', '--app', 'orders', '--value', 'x');
    expect(named.status).toBe(1);
    expect(named.stdout).toBe('');
    expect(named.stderr).toBe(
      `config-service: CFG_ERR_INVALID_REQUEST: Invalid request: --public-key ${k1} is the key of 'k1' (its file name says so), not of 'k2': a value labelled 'k2' would not decrypt; use --key-id k1, or the public key of 'k2'\n`,
    );
    // With the service's settings, whatever the file is called.
    writeFileSync(path.join(keys, 'service.yml'), 'secrets:\n  keys:\n    - { id: k1, publicKeyFile: k1.public.pem }\n    - { id: k2, publicKeyFile: k2.public.pem }\n');
    writeFileSync(path.join(keys, 'renamed.pem'), readFileSync(k1));
    const configured = cli('encrypt', '--config', path.join(keys, 'service.yml'), '--public-key', path.join(keys, 'renamed.pem'), '--key-id', 'k2', '--app', 'orders', '--value', 'x');
    expect(configured.status).toBe(1);
    expect(configured.stderr).toContain(`--public-key ${path.join(keys, 'renamed.pem')} is not the key of 'k2' in secrets.keys (${path.join(keys, 'k2.public.pem')}); the value would not decrypt`);
    const unknownId = cli('encrypt', '--config', path.join(keys, 'service.yml'), '--key-id', 'k3', '--app', 'orders', '--value', 'x');
    expect(unknownId.stderr).toContain("--key-id k3: the service has no key with this id (secrets.keys: 'k1', 'k2')");
    // --config alone picks the configured key file.
    const ok = cli('encrypt', '--config', path.join(keys, 'service.yml'), '--key-id', 'k2', '--app', 'orders', '--value', 'x');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^\{cipher\}\{key:k2\}\{app:orders\}/);
  });
});

describe('placeholders and schemas on GET /v1/apps/{app}/config', () => {
  async function serve(files: Record<string, string | Uint8Array>, layout: 'folders' | 'spring') {
    const repo = await makeGitRepo(files, { branch: 'main' });
    repos.push(repo);
    const service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main', layout } });
    services.push(service);
    const config = (cert: ClientCert, app: string, query: Record<string, string>) =>
      httpsGet(service.apiUrl, `/v1/apps/${app}/config?${new URLSearchParams({ ref: 'main', ...query })}`, { ca: pki.ca.certPem, cert: cert.cert, key: cert.key });
    return { repo, service, config };
  }

  /** The value at a flattened name in a `properties` body (no escapes in these values other than `\:`). */
  function props(body: string): Record<string, string> {
    return Object.fromEntries(
      body
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1).replace(/\\(.)/g, '$1')];
        }),
    );
  }

  it('case 17: CONFIG(foo, cloud) resolves the cloud document’s placeholders against the merged configuration only', async () => {
    const { config } = await serve(readTreeFiles(SAMPLE), 'spring');
    // Names the sample uses as environment variables; the service's own environment must not count.
    process.env['PREFIX'] = 'env-';
    process.env['APPLICATION_DOMAIN'] = 'env.example';
    try {
      const res = await config(foo, 'foo', { profile: 'cloud', format: 'json' });
      expect(res.status).toBe(200);
      const json = res.json<Record<string, any>>();
      expect(json.spring.cloud.config.uri).toBe('http://user:password@configserver.cfapps.io');
      expect(json.oauth2.client.clientId).toBe('');
      expect(json.oauth2.client.tokenUri).toBe('');
      expect(json.oauth2.resource.serviceId).toBe('resource');
      expect(json.oauth2.resource.tokenInfoUri).toBe('');
      expect(json.eureka.instance.hostname).toBe('localhost');
      expect(json.eureka.client.serviceUrl.defaultZone).toBe('http://user:password@eureka.cfapps.io/eureka/');
      expect(json.hystrix.command.default.execution.isolation.thread.timeoutInMilliseconds).toBe(60000);
      expect(json.application.domain).toBe('cfapps.io');
      expect(json.foo).toBe('from foo props');
      expect(json.eureka.instance.preferIpAddress).toBeUndefined();

      const p = props((await config(foo, 'foo', { profile: 'cloud', format: 'properties' })).body);
      expect(p['eureka.client.serviceUrl.defaultZone']).toBe('http://user:password@eureka.cfapps.io/eureka/');
      expect(p['spring.cloud.config.uri']).toBe('http://user:password@configserver.cfapps.io');
    } finally {
      delete process.env['PREFIX'];
      delete process.env['APPLICATION_DOMAIN'];
    }
  });

  it('case 17: CONFIG(foo, docker) resolves the docker document’s defaults', async () => {
    const { config } = await serve(readTreeFiles(SAMPLE), 'spring');
    const json = (await config(foo, 'foo', { profile: 'docker', format: 'json' })).json<Record<string, any>>();
    expect(json.spring.cloud.config.uri).toBe('http://localhost:8888');
    expect(json.eureka.instance.preferIpAddress).toBe(true);
    expect(json.eureka.client.serviceUrl.defaultZone).toBe('http://localhost:8761/eureka/');
  });

  it('resolve=false serves placeholders as written; the two answers are cached apart', async () => {
    const { config } = await serve(readTreeFiles(SAMPLE), 'spring');
    const resolved = await config(foo, 'foo', { profile: 'cloud', format: 'json' });
    const raw = await config(foo, 'foo', { profile: 'cloud', format: 'json', resolve: 'false' });
    const again = await config(foo, 'foo', { profile: 'cloud', format: 'json', resolve: 'true' });
    expect(raw.status).toBe(200);
    expect(raw.json<Record<string, any>>().oauth2.resource.serviceId).toBe('${PREFIX:}resource');
    expect(raw.json<Record<string, any>>().spring.cloud.config.uri).toBe(
      '${vcap.services.${PREFIX:}configserver.credentials.uri:http://user:password@${PREFIX:}configserver.${application.domain:cfapps.io}}',
    );
    expect(again.body).toBe(resolved.body);
    expect(raw.headers['etag']).not.toBe(resolved.headers['etag']);
    expect(again.headers['etag']).toBe(resolved.headers['etag']);
    expect((await config(foo, 'foo', { resolve: 'maybe' })).status).toBe(400);
  });

  it('an unresolvable placeholder is 422 placeholder naming file, line, key and placeholder', async () => {
    const { config } = await serve(readTreeFiles(SAMPLE), 'spring');
    const res = await config(processor, 'processor', { profile: 'cloud', format: 'json' });
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json<{ code: string; detail: string }>()).toMatchObject({
      code: 'placeholder',
      detail: "processor.yml:6:7: unresolvable placeholder 'vcap.services.${PREFIX}mongodb.credentials.uri' in key 'spring.data.mongodb.uri'",
    });
    // The same request without resolution is served as written.
    expect((await config(processor, 'processor', { profile: 'cloud', format: 'json', resolve: 'false' })).status).toBe(200);
  });

  it('a schema violation is 422 schema_violation naming key and rule, never the value', async () => {
    const { config } = await serve(
      {
        'application.yml': 'server.port: 8080\n',
        'orders/application.yml': 'name: orders\n',
        'orders/application-dev.yml': 'server.port: ${dev.port:eighty-eighty}\n',
        'orders/schema.json': '{"type": "object", "properties": {"server": {"properties": {"port": {"type": "integer"}}}}}\n',
      },
      'folders',
    );
    expect((await config(orders, 'orders', { format: 'json' })).json()).toEqual({ name: 'orders', server: { port: 8080 } });
    const bad = await config(orders, 'orders', { profile: 'dev', format: 'json' });
    expect(bad.status).toBe(422);
    expect(bad.json<{ code: string; detail: string }>()).toMatchObject({
      code: 'schema_violation',
      detail: "orders/schema.json: at 'server.port': must be integer (set in orders/application-dev.yml:1:1)",
    });
    expect(bad.body).not.toContain('eighty');
  });
});
