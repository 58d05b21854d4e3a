/**
 * `config-service validate` on working trees in temp folders (SPEC §9): the report of
 * `validateRepository` and the CLI's `runValidate` (output and exit code).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runValidate } from '../../src/cli/validate.js';
import { DirectorySource } from '../../src/validate/directory-source.js';
import { formatReport, validateRepository } from '../../src/validate/repository.js';
import { appBinding, encryptValue } from '../../src/secrets/envelope.js';
import { loadSettings } from '../../src/settings/load.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes `files` into a fresh temp folder and returns its path. */
function repo(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-validate-'));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

async function text(dir: string, layout: 'folders' | 'spring' = 'folders'): Promise<string> {
  return formatReport(await validateRepository(dir, { layout }), 'text');
}

const GOOD = {
  'application.yml': 'server:\n  port: 8080\ndb.host: shared-db\n',
  'application-prod.yml': 'db.host: prod-db\n',
  'orders/application.yml': 'db.url: jdbc:postgresql://${db.host}:5432/orders\nservers:\n  - host: a.example.com\n',
  'orders/application-prod.properties': 'db.pool=20\n',
  'orders/schema.json': JSON.stringify({ type: 'object', required: ['db'], properties: { server: { properties: { port: { type: 'integer' } } } } }),
  'orders/files/logback.xml': '<configuration/>\n',
  'billing/application.yml': '---\nspring.config.activate.on-profile: eu\nregion: eu-west-1\n',
  'README.md': '# config\n',
};

describe('validateRepository', () => {
  it('a good repository has no findings', async () => {
    const dir = repo(GOOD);
    const report = await validateRepository(dir);
    expect(report.findings).toEqual([]);
    expect(report.applications).toEqual(['billing', 'orders']);
    expect(report.profileSets).toEqual([[], ['eu'], ['prod']]);
    expect(await text(dir)).toBe('0 errors, 0 warnings; checked 5 documents, 2 applications, 3 profile sets\n');
    expect(await runValidate(dir, { layout: 'folders', format: 'text' })).toEqual({
      output: '0 errors, 0 warnings; checked 5 documents, 2 applications, 3 profile sets\n',
      exitCode: 0,
    });
  });

  it('broken YAML: file:line:col of the error, exit code 1', async () => {
    const dir = repo({ ...GOOD, 'orders/application-prod.yml': 'db:\n  pool: [1, 2\n' });
    const { output, exitCode } = await runValidate(dir, { layout: 'folders', format: 'text' });
    expect(output).toBe(
      'orders/application-prod.yml:1:1: warning: one layer has several documents: application-prod.properties overrides this one path by path (.properties beats .yml beats .yaml beats .json, Spring Boot\'s order)\n' +
        'orders/application-prod.yml:2:9: error: invalid YAML: a flow sequence ([) is not closed with ]\n' +
        '1 error, 1 warning; checked 6 documents, 2 applications, 3 profile sets\n',
    );
    expect(exitCode).toBe(1);
  });

  it('a duplicate key and two spellings of one path', async () => {
    const dir = repo({ 'application.yml': 'a: 1\nb: 2\na: 3\n', 'orders/application.yml': 'x.y: 1\nx:\n  y: 2\n' });
    expect(await text(dir)).toBe(
      'application.yml:3:1: error: duplicate key "a"\n' +
        'orders/application.yml:3:3: error: two spellings of one property path with different values: "x.y" (line 1, column 1) and "x" > "y" (line 3, column 3)\n' +
        '2 errors, 0 warnings; checked 2 documents, 1 application, 1 profile set\n',
    );
  });

  it('a missing placeholder is an error in the folders layout, for every request that hits it', async () => {
    const dir = repo({
      'application-prod.yml': 'url: http://${host.name}/x\n',
      'orders/application.yml': 'a: 1\n',
      'billing/application.yml': 'b: ${a:fine}\n',
    });
    expect(await text(dir)).toBe(
      "application-prod.yml:1:1: error: unresolvable placeholder 'host.name' in key 'url' [in billing/prod, orders/prod]\n" +
        '1 error, 0 warnings; checked 3 documents, 2 applications, 2 profile sets\n',
    );
    const warned = await validateRepository(dir, { unresolved: 'warning' });
    expect(warned.errors).toBe(0);
    expect(warned.warnings).toBe(1);
  });

  it('a placeholder cycle', async () => {
    const dir = repo({ 'orders/application.yml': 'a: ${b}\nb: x${a}\n' });
    expect(await text(dir)).toBe(
      "orders/application.yml:1:1: error: circular placeholder reference a -> b -> a in key 'a' [in orders]\n" +
        "orders/application.yml:2:1: error: circular placeholder reference b -> a -> b in key 'b' [in orders]\n" +
        '2 errors, 0 warnings; checked 1 document, 1 application, 1 profile set\n',
    );
  });

  it('environment names that collide (case 11)', async () => {
    const dir = repo({
      'orders/application.yml':
        'spring.datasource.url: jdbc:postgresql://db.example.com/orders\nservers:\n  - host: a.example.com\n  - host: b.example.com\nfeature-flags:\n  new-checkout: true\n  new_checkout: false\n',
    });
    expect(await text(dir)).toBe(
      'orders/application.yml:7:3: error: keys "feature-flags.new-checkout" and "feature-flags.new_checkout" both map to the environment name FEATURE_FLAGS_NEW_CHECKOUT [in orders]\n' +
        '1 error, 0 warnings; checked 1 document, 1 application, 1 profile set\n',
    );
  });

  it('a schema violation names the key and the rule, at the value’s position, never the value', async () => {
    const dir = repo({ ...GOOD, 'orders/application-prod.properties': 'server.port=eighty\n' });
    const out = await text(dir);
    expect(out).toBe(
      "orders/application-prod.properties:1:1: error: violates orders/schema.json at 'server.port': must be integer [in orders/prod]\n" +
        '1 error, 0 warnings; checked 5 documents, 2 applications, 3 profile sets\n',
    );
    expect(out).not.toContain('eighty');
  });

  it('a required property missing and an invalid schema file', async () => {
    const dir = repo({
      'orders/application.yml': 'a: 1\n',
      'orders/schema.json': '{"required": ["db"]}',
      'billing/application.yml': 'a: 1\n',
      'billing/schema.json': '{\n  "type": "object",\n  oops\n}\n',
    });
    expect(await text(dir)).toBe(
      'billing/schema.json:3:3: error: not valid JSON\n' +
        "orders/schema.json:1:1: error: violates orders/schema.json at '(root)': must have required property 'db' [in orders]\n" +
        '2 errors, 0 warnings; checked 2 documents, 2 applications, 1 profile set\n',
    );
  });

  it('symlinks are refused, never followed', async () => {
    const outside = repo({ 'secret.yml': 'password: hunter2\n' });
    const dir = repo({ 'orders/application.yml': 'a: 1\n' });
    symlinkSync(join(outside, 'secret.yml'), join(dir, 'orders', 'application-prod.yml'));
    mkdirSync(join(dir, 'orders', 'files'));
    symlinkSync(join(outside, 'secret.yml'), join(dir, 'orders', 'files', 'app.yml'));
    symlinkSync(outside, join(dir, 'billing'));
    const out = await text(dir);
    expect(out).toBe(
      'orders/application-prod.yml:1:1: error: "orders/application-prod.yml" is a symbolic link; symbolic links are never followed or served\n' +
        'orders/files/app.yml:1:1: error: a symbolic link; symbolic links are never followed or served\n' +
        '2 errors, 0 warnings; checked 2 documents, 1 application, 2 profile sets\n',
    );
    expect(out).not.toContain('hunter2');
  });

  it('spring layout: a non-object .json at the root is a warning; missing placeholders are warnings', async () => {
    const dir = repo({
      'application.yml': 'a: 1\n---\nspring.config.activate.on-profile: cloud\nuri: ${vcap.uri}\n',
      'foo.properties': 'foo=bar\n',
      'foo-dev.yml': 'foo: dev\n',
      'list.json': '[1, 2]\n',
    });
    expect(await text(dir, 'spring')).toBe(
      "application.yml:4:1: warning: unresolvable placeholder 'vcap.uri' in key 'uri' [in foo/cloud]\n" +
        "list.json:1:1: warning: the top level is not an object, so this is no configuration document: Spring Cloud Config serves such a file only as a plain-text resource, and configuration requests for application 'list' fail with 422 here\n" +
        '0 errors, 2 warnings; checked 4 documents, 2 applications, 3 profile sets\n',
    );
  });

  it('--profiles checks each profile alone and all together', async () => {
    const dir = repo({ 'orders/application-a.yml': 'x: ${y}\n', 'orders/application-b.yml': 'y: 1\n' });
    const report = await validateRepository(dir, { profiles: ['a', 'b'] });
    expect(report.profileSets).toEqual([[], ['a'], ['b'], ['a', 'b']]);
    expect(report.findings.map((f) => [f.message, f.contexts])).toEqual([["unresolvable placeholder 'y' in key 'x'", ['orders/a']]]);
  });

  it('--format json', async () => {
    const dir = repo({ 'orders/application.yml': 'a: ${b}\n' });
    const { output, exitCode } = await runValidate(dir, { layout: 'folders', format: 'json' });
    expect(exitCode).toBe(1);
    expect(JSON.parse(output)).toEqual({
      ok: false,
      errors: 1,
      warnings: 0,
      documents: 1,
      applications: ['orders'],
      profileSets: [[]],
      findings: [{ file: 'orders/application.yml', line: 1, column: 1, severity: 'error', check: 'placeholder', message: "unresolvable placeholder 'b' in key 'a'", contexts: ['orders'] }],
    });
  });
});

describe('validateRepository: secrets', () => {
  // Payloads written by hand in the documented layouts (no keys needed: validate never decrypts).
  const v1 = (id: string): string => `{cipher}{key:${id}}${Buffer.concat([Buffer.from([1, id.length]), Buffer.from(id), Buffer.from([0, 1, 7]), Buffer.alloc(28)]).toString('base64')}`;
  const v2 = (id: string, binding: string): string =>
    `{cipher}${Buffer.concat([Buffer.from([2, id.length]), Buffer.from(id), Buffer.from([binding.length]), Buffer.from(binding), Buffer.from([0, 1, 7]), Buffer.alloc(28)]).toString('base64')}`;

  it('folders: unbound values warn (or fail with unboundSecrets: error), values bound elsewhere fail, unreadable ones warn', async () => {
    const dir = repo({
      'application.yml': `shared:\n  a: '${v2('k1', 'shared')}'\n  b: '${v2('k1', 'app:orders')}'\n`,
      'orders/application.yml': `ok: '${v2('k1', 'app:orders')}'\nold: '${v1('k1')}'\nlist: [x, '${v1('k2')}']\nbad: '{cipher}not base64'\n`,
      'billing/application.properties': `copied=${v2('k1', 'app:orders')}\nshared=${v2('k1', 'shared')}\n`,
    });
    expect(await text(dir)).toBe(
      [
        "application.yml:3:3: error: the secret at key 'shared.b' (key id 'k1') is bound to another application (the value is bound to application 'orders'); it fails to decrypt here",
        "billing/application.properties:1:1: error: the secret at key 'copied' (key id 'k1') is bound to another application (the value is bound to application 'orders'); it fails to decrypt here",
        "billing/application.properties:2:1: error: the secret at key 'shared' (key id 'k1') is bound to another application (the value is bound to the shared documents); it fails to decrypt here",
        "orders/application.yml:2:1: warning: the secret at key 'old' (key id 'k1') is not bound to an application (envelope version 1), so a copy of it decrypts in any application's documents; bind it with 'config-service encrypt rebind'",
        "orders/application.yml:3:1: warning: the secret at key 'list[1]' (key id 'k2') is not bound to an application (envelope version 1), so a copy of it decrypts in any application's documents; bind it with 'config-service encrypt rebind'",
        "orders/application.yml:4:1: warning: the secret at key 'bad' cannot be decrypted by this service: the value is not a valid {cipher} envelope",
        '3 errors, 3 warnings; checked 3 documents, 2 applications, 1 profile set',
        '',
      ].join('\n'),
    );
    const strict = await validateRepository(dir, { unboundSecrets: 'error' });
    expect(strict.errors).toBe(5);
    expect(strict.findings.filter((f) => f.check === 'secret')).toHaveLength(6);
  });

  it('spring layout: <app>.yml and <app>-<profile>.yml take values bound to any application the name may mean', async () => {
    const dir = repo({
      'application.yml': `a: '${v2('k1', 'shared')}'\n`,
      'my-app.yml': `a: '${v2('k1', 'app:my-app')}'\n`,
      'my-app-dev.yml': `a: '${v2('k1', 'app:my-app')}'\nb: '${v2('k1', 'app:my')}'\nc: '${v2('k1', 'app:other')}'\n`,
    });
    expect(await text(dir, 'spring')).toBe(
      [
        "my-app-dev.yml:3:1: error: the secret at key 'c' (key id 'k1') is bound to another application (the value is bound to application 'other'); it fails to decrypt here",
        '1 error, 0 warnings; checked 3 documents, 1 application, 3 profile sets',
        '',
      ].join('\n'),
    );
  });
});

describe('DirectorySource', () => {
  it('reads like Git: blob ids, no .git, no way out of the root', async () => {
    const dir = repo({ 'a/b.yml': 'x: 1\n', '.git/config': '[core]\n', 'top.txt': 'hello\n' });
    const src = await DirectorySource.open(dir);
    const root = await src.readTree('c', '');
    expect([...(root?.keys() ?? [])]).toEqual(['a', 'top.txt']);
    // `git hash-object` of "hello\n"
    expect(root?.get('top.txt')).toEqual({ name: 'top.txt', type: 'blob', oid: 'ce013625030ba8dba906f756967f9e9ca394464a' });
    expect(new TextDecoder().decode((await src.readFileAt('c', 'a/b.yml'))?.bytes)).toBe('x: 1\n');
    for (const bad of ['../x', 'a/../top.txt', '/etc/passwd', 'a//b.yml', './top.txt', 'a\\b.yml']) expect(await src.readFileAt('c', bad)).toBeNull();
    expect(await src.readTree('c', '..')).toBeNull();
    expect(await src.listFiles('c', '')).toEqual([
      { path: 'a/b.yml', oid: expect.stringMatching(/^[0-9a-f]{40}$/), type: 'blob' },
      { path: 'top.txt', oid: 'ce013625030ba8dba906f756967f9e9ca394464a', type: 'blob' },
    ]);
  });

  it('never goes through a symlinked directory and refuses symlinked files and LFS pointers', async () => {
    const outside = repo({ 'secret.yml': 'password: x\n' });
    const dir = repo({ 'lfs.yml': 'version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n' });
    symlinkSync(outside, join(dir, 'linked'));
    symlinkSync(join(outside, 'secret.yml'), join(dir, 'file.yml'));
    const src = await DirectorySource.open(dir);
    expect((await src.readTree('c', ''))?.get('linked')?.type).toBe('symlink');
    expect(await src.readTree('c', 'linked')).toBeNull();
    expect(await src.readFileAt('c', 'linked/secret.yml')).toBeNull();
    await expect(src.readFileAt('c', 'file.yml')).rejects.toMatchObject({ code: 'CFG_ERR_UNSUPPORTED_ENTRY' });
    await expect(src.readFileAt('c', 'lfs.yml')).rejects.toMatchObject({ code: 'CFG_ERR_UNSUPPORTED_ENTRY', message: '"lfs.yml" is a Git LFS pointer file; LFS content is not served' });
  });
});

describe('validate --config --repository (several repositories, SPEC §4)', () => {
  const settings = loadSettings({
    env: {},
    baseDir: tmpdir(),
    overrides: {
      server: { tls: { cert: 'c', key: 'k', clientCa: 'ca' } },
      repositories: [
        { name: 'team-a', url: 'https://git.example/a.git', apps: ['orders'] },
        { name: 'team-b', url: 'https://git.example/b.git', apps: ['billing'], layout: 'folders' },
        { name: 'per-app', url: 'https://git.example/apps/{app}.git', apps: ['svc-*'] },
      ],
    },
  });

  it('checks only the applications the repository serves; the others get one routing warning each', async () => {
    const dir = repo({ 'orders/application.yml': 'a: ${missing}\n', 'billing/application.yml': 'b: 1\n', 'stray/application.yml': 'c: 1\n' });
    const { output, exitCode } = await runValidate(dir, { repository: 'team-b', format: 'text' }, settings);
    expect(exitCode).toBe(0);
    expect(output).toBe(
      "orders:1:1: warning: 'orders' is served from repository 'team-a', not from 'team-b'\n" +
        "stray:1:1: warning: no repositories[] entry claims 'stray': the service answers 404 for it\n" +
        '0 errors, 2 warnings; checked 3 documents, 3 applications, 1 profile set\n',
    );
    // The same checkout as team-a: orders is checked (and fails), billing is not.
    const asA = await runValidate(dir, { repository: 'team-a', format: 'text' }, settings);
    expect(asA.exitCode).toBe(1);
    expect(asA.output).toContain("billing:1:1: warning: 'billing' is served from repository 'team-b', not from 'team-a'");
    expect(asA.output).toContain("orders/application.yml:1:1: error: unresolvable placeholder 'missing' in key 'a' [in orders]");
  });

  it('a per-application repository serves its own application only; an unknown entry is a settings error', async () => {
    const dir = repo({ 'svc-one/application.yml': 'a: 1\n', 'svc-two/application.yml': 'b: 1\n' });
    const { output } = await runValidate(dir, { repository: 'per-app', app: 'svc-one', format: 'text' }, settings);
    expect(output).toContain("svc-two:1:1: warning: this is the repository of 'svc-one' ('per-app' holds one repository per application): 'svc-two' is not served from it");
    expect(output).not.toContain('svc-one:1:1');
    await expect(runValidate(dir, { repository: 'nope', format: 'text' }, settings)).rejects.toMatchObject({ code: 'CFG_ERR_SETTINGS_INVALID', message: expect.stringContaining("--repository: no repositories[] entry is named 'nope'") });
    await expect(runValidate(dir, { repository: 'team-a', format: 'text' })).rejects.toMatchObject({ code: 'CFG_ERR_SETTINGS_INVALID' });
  });
});

describe('validate and .properties values under a schema', () => {
  it('types a .properties override as the schema declares before checking it; a value that cannot be typed is an error at its line', async () => {
    const schema = JSON.stringify({ properties: { 'max-items': { type: 'integer' } } });
    const ok = repo({ 'orders/application.yml': 'max-items: 100\n', 'orders/application-dev.properties': 'max-items=5\n', 'orders/schema.json': schema });
    expect(await text(ok)).toBe('0 errors, 0 warnings; checked 2 documents, 1 application, 2 profile sets\n');
    const bad = repo({ 'orders/application.yml': 'max-items: 100\n', 'orders/application-dev.properties': '# items\nmax-items=five\n', 'orders/schema.json': schema });
    expect(await text(bad)).toBe(
      "orders/application-dev.properties:2:1: error: violates orders/schema.json at 'max-items': must be integer [in orders/dev]\n1 error, 0 warnings; checked 2 documents, 1 application, 2 profile sets\n",
    );
  });
});

describe('runValidate and the service\'s keys from --config', () => {
  it('checks key ids only when the settings name keys (the file, or CONFIG_SERVICE_SECRETS_KEYS)', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const value = encryptValue('s3cret', { id: 'k9', publicKey }, appBinding('orders'));
    const dir = repo({ 'orders/application.yml': `password: '${value}'\n` });
    const noKeys = join(repo({}), 'service.yml');
    writeFileSync(noKeys, 'documents: { maxKeys: 1000 }\n');
    expect(await runValidate(dir, { format: 'text', config: noKeys }, undefined, {})).toEqual({
      output: '0 errors, 0 warnings; checked 1 document, 1 application, 1 profile set\n',
      exitCode: 0,
    });
    const fromEnv = await runValidate(dir, { format: 'text', config: noKeys }, undefined, { CONFIG_SERVICE_SECRETS_KEYS: '[{ id: k1 }, { id: k2 }]' });
    expect(fromEnv.exitCode).toBe(1);
    expect(fromEnv.output).toContain("orders/application.yml:1:1: error: the secret at key 'password' names key id 'k9', which no configured key has (known: 'k1', 'k2'); it fails to decrypt");
  });
});
