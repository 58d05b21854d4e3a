import { describe, expect, it } from 'vitest';
import { helpText, OPTION_TABLE, parseCommandLine, type Options } from '../src/args.js';
import { UsageError } from '../src/errors.js';

const BASE = ['--server', 'https://config.example:8443', '--app', 'orders', '--cert', '/c.pem', '--key', '/k.pem'];

function opts(argv: string[], env: Record<string, string> = {}): Options {
  const cmd = parseCommandLine(argv, env);
  if (cmd.kind !== 'fetch') throw new Error(`expected fetch, got ${cmd.kind}`);
  return cmd.options;
}

describe('parseCommandLine: defaults', () => {
  it('fills every default', () => {
    const o = opts(BASE);
    expect(o.server.href).toBe('https://config.example:8443/');
    expect(o.app).toBe('orders');
    expect(o.profiles).toEqual([]);
    expect(o.ref).toBeUndefined();
    expect(o.caFile).toBeUndefined();
    expect(o.outputDir).toBe('/config');
    expect(o.formats).toEqual(['properties']);
    expect(o.fileMode).toBe(0o640);
    expect(o.timeoutMs).toBe(5000);
    expect(o.deadlineMs).toBe(60000);
    expect(o.allowEmpty).toBe(false);
    expect(o.logFormat).toBe('text');
    expect(o.terminationLog).toBe('/dev/termination-log');
    expect(o.dryRun).toBe(false);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('exec takes everything after -- verbatim as the command, flags included', () => {
    const cmd = parseCommandLine(['exec', ...BASE, '--allow-env', 'NODE_OPTIONS', '--', 'node', '-e', 'x', '--app', 'other', '--'], {});
    expect(cmd).toMatchObject({ kind: 'exec', command: ['node', '-e', 'x', '--app', 'other', '--'] });
    if (cmd.kind !== 'exec') throw new Error('not exec');
    expect(cmd.options.app).toBe('orders');
    expect(cmd.options.allowEnv).toEqual(['NODE_OPTIONS']);
    expect(Object.isFrozen(cmd.command)).toBe(true);
  });

  it('exec flags may come before or after the word exec', () => {
    const cmd = parseCommandLine([...BASE, 'exec', '--env-naming', 'spring', '--', '/bin/true'], {});
    expect(cmd).toMatchObject({ kind: 'exec', command: ['/bin/true'], options: { envNaming: 'spring' } });
  });

  it("accepts the explicit 'fetch' command", () => {
    expect(opts(['fetch', ...BASE]).app).toBe('orders');
  });
});

describe('parseCommandLine: flags and env fallbacks', () => {
  it.each<[string, string[], Record<string, string>, (o: Options) => unknown, unknown]>([
    ['profiles from a comma list', ['--profile', 'prod,eu'], {}, (o) => o.profiles, ['prod', 'eu']],
    ['profiles repeated', ['--profile', 'prod', '--profile', 'eu'], {}, (o) => o.profiles, ['prod', 'eu']],
    ['profiles from env', [], { CONFIG_INIT_PROFILES: 'prod, canary' }, (o) => o.profiles, ['prod', 'canary']],
    ['flag beats env (profiles)', ['--profile', 'dev'], { CONFIG_INIT_PROFILES: 'prod' }, (o) => o.profiles, ['dev']],
    ['ref with slashes', ['--ref', 'release/2025-11'], {}, (o) => o.ref, 'release/2025-11'],
    ['ref from env', [], { CONFIG_INIT_REF: 'v1.2.0' }, (o) => o.ref, 'v1.2.0'],
    ['ca from env', [], { CONFIG_INIT_CA: '/ca.pem' }, (o) => o.caFile, '/ca.pem'],
    ['output dir', ['--output-dir', '/out'], {}, (o) => o.outputDir, '/out'],
    ['output dir from env', [], { CONFIG_INIT_OUTPUT_DIR: '/env-out' }, (o) => o.outputDir, '/env-out'],
    ['formats list, de-duplicated', ['--format', 'json,yaml,json'], {}, (o) => o.formats, ['json', 'yaml']],
    ['formats repeated', ['--format', 'env', '--format', 'dotenv'], {}, (o) => o.formats, ['env', 'dotenv']],
    ['formats from env', [], { CONFIG_INIT_FORMATS: 'yaml,properties' }, (o) => o.formats, ['yaml', 'properties']],
    ['file mode 0600', ['--file-mode', '0600'], {}, (o) => o.fileMode, 0o600],
    ['file mode 644 without 0', ['--file-mode', '644'], {}, (o) => o.fileMode, 0o644],
    ['file mode 0o440', ['--file-mode', '0o440'], {}, (o) => o.fileMode, 0o440],
    ['file mode from env', [], { CONFIG_INIT_FILE_MODE: '0444' }, (o) => o.fileMode, 0o444],
    ['timeout in ms', ['--timeout', '1500'], {}, (o) => o.timeoutMs, 1500],
    ['timeout in s', ['--timeout', '2s'], {}, (o) => o.timeoutMs, 2000],
    ['deadline in m', ['--deadline', '2m'], {}, (o) => o.deadlineMs, 120000],
    ['deadline from env', [], { CONFIG_INIT_DEADLINE: '9000' }, (o) => o.deadlineMs, 9000],
    ['allow-empty flag', ['--allow-empty'], {}, (o) => o.allowEmpty, true],
    ['allow-empty env true', [], { CONFIG_INIT_ALLOW_EMPTY: 'true' }, (o) => o.allowEmpty, true],
    ['allow-empty env 0', [], { CONFIG_INIT_ALLOW_EMPTY: '0' }, (o) => o.allowEmpty, false],
    ['log format json', ['--log-format', 'json'], {}, (o) => o.logFormat, 'json'],
    ['log format from env', [], { CONFIG_INIT_LOG_FORMAT: 'json' }, (o) => o.logFormat, 'json'],
    ['termination log path', ['--termination-log', '/tmp/t'], {}, (o) => o.terminationLog, '/tmp/t'],
    ['termination log off', ['--termination-log='], {}, (o) => o.terminationLog, ''],
    ['termination log from env', [], { CONFIG_INIT_TERMINATION_LOG: '/tmp/e' }, (o) => o.terminationLog, '/tmp/e'],
    ['dry run', ['--dry-run'], {}, (o) => o.dryRun, true],
    ['env naming default', [], {}, (o) => o.envNaming, 'standard'],
    ['env naming spring', ['--env-naming', 'spring'], {}, (o) => o.envNaming, 'spring'],
    ['env naming from env', [], { CONFIG_INIT_ENV_NAMING: 'spring' }, (o) => o.envNaming, 'spring'],
    ['allow-env default', [], {}, (o) => o.allowEnv, []],
    ['allow-env list and repeat', ['--allow-env', 'NODE_OPTIONS,LD_PRELOAD', '--allow-env', 'PATH'], {}, (o) => o.allowEnv, ['NODE_OPTIONS', 'LD_PRELOAD', 'PATH']],
    ['allow-env from env', [], { CONFIG_INIT_ALLOW_ENV: 'JAVA_TOOL_OPTIONS' }, (o) => o.allowEnv, ['JAVA_TOOL_OPTIONS']],
    ['files default off', [], {}, (o) => o.files, false],
    ['files flag', ['--files'], {}, (o) => o.files, true],
    ['files from env', [], { CONFIG_INIT_FILES: 'yes' }, (o) => o.files, true],
    ['no fallback by default', [], {}, (o) => [o.fallbackDir, o.fallbackMaxAgeMs], [undefined, 86_400_000]],
    ['fallback dir and max age', ['--fallback-dir', '/fb', '--fallback-max-age', '2h'], {}, (o) => [o.fallbackDir, o.fallbackMaxAgeMs], ['/fb', 7_200_000]],
    ['fallback from env, max age in days', [], { CONFIG_INIT_FALLBACK_DIR: '/fb', CONFIG_INIT_FALLBACK_MAX_AGE: '7d' }, (o) => [o.fallbackDir, o.fallbackMaxAgeMs], ['/fb', 604_800_000]],
    ['timeout in h', ['--timeout', '1h'], {}, (o) => o.timeoutMs, 3_600_000],
    ['server with a path prefix', [], {}, (o) => o.server.pathname, '/'],
    ['empty env counts as unset', [], { CONFIG_INIT_OUTPUT_DIR: '' }, (o) => o.outputDir, '/config'],
  ])('%s', (_name, extra, env, get, expected) => {
    expect(get(opts([...BASE, ...extra], env))).toEqual(expected);
  });

  it('takes every required setting from the environment alone', () => {
    const o = opts([], {
      CONFIG_INIT_SERVER: 'https://cs.config.svc:8443/prefix/',
      CONFIG_INIT_APP: 'billing-api',
      CONFIG_INIT_CERT: '/tls/tls.crt',
      CONFIG_INIT_KEY: '/tls/tls.key',
    });
    expect(o.server.href).toBe('https://cs.config.svc:8443/prefix/');
    expect(o.app).toBe('billing-api');
    expect(o.certFile).toBe('/tls/tls.crt');
    expect(o.keyFile).toBe('/tls/tls.key');
  });

  it('lets the flag win over the environment', () => {
    const o = opts([...BASE], { CONFIG_INIT_APP: 'other', CONFIG_INIT_SERVER: 'https://other' });
    expect(o.app).toBe('orders');
    expect(o.server.host).toBe('config.example:8443');
  });
});

describe('parseCommandLine: usage errors name the flag and env var', () => {
  it.each<[string, string[], Record<string, string>, RegExp]>([
    ['unknown flag', ['--bogus'], {}, /Unknown option '--bogus'/],
    ['missing flag value', ['--app'], {}, /--app.*CONFIG_INIT_APP/],
    ['http server', ['--server', 'http://x'], {}, /--server \(env CONFIG_INIT_SERVER\): must be an https/],
    ['not a URL', ['--server', 'nope'], {}, /--server \(env CONFIG_INIT_SERVER\): not a URL/],
    ['credentials in URL', ['--server', 'https://u:p@x'], {}, /credentials/],
    ['query in URL', ['--server', 'https://x/?a=1'], {}, /query/],
    ['upper-case app', ['--app', 'Orders'], {}, /--app \(env CONFIG_INIT_APP\): 'Orders' is not a valid/],
    ['app with ..', ['--app', 'a..b'], {}, /--app.*not a valid/],
    ['app traversal', ['--app', '../etc'], {}, /--app.*not a valid/],
    ['app too long', ['--app', 'a'.repeat(64)], {}, /--app.*not a valid/],
    ['bad profile', ['--profile', 'prod,EU'], {}, /--profile \(env CONFIG_INIT_PROFILES\): 'EU'/],
    ['profile traversal via env', [], { CONFIG_INIT_PROFILES: '../x' }, /CONFIG_INIT_PROFILES/],
    ['ref with ..', ['--ref', 'a/../b'], {}, /--ref \(env CONFIG_INIT_REF\): the ref contains '\.\.'/],
    ['ref with space', ['--ref', 'a b'], {}, /--ref/],
    ['ref leading slash', ['--ref', '/main'], {}, /--ref/],
    ['ref .lock', ['--ref', 'main.lock'], {}, /\.lock/],
    ['unknown format', ['--format', 'xml'], {}, /--format \(env CONFIG_INIT_FORMATS\): unknown format 'xml'/],
    ['empty format list', ['--format', ','], {}, /--format.*at least one/],
    ['file mode not octal', ['--file-mode', '0999'], {}, /--file-mode \(env CONFIG_INIT_FILE_MODE\)/],
    ['file mode unreadable by owner', ['--file-mode', '0040'], {}, /owner must be able to read/],
    ['timeout not a number', ['--timeout', 'soon'], {}, /--timeout \(env CONFIG_INIT_TIMEOUT\)/],
    ['timeout zero', ['--timeout', '0'], {}, /--timeout/],
    ['deadline from env bad', [], { CONFIG_INIT_DEADLINE: '-5' }, /CONFIG_INIT_DEADLINE/],
    ['log format', ['--log-format', 'xml'], {}, /--log-format \(env CONFIG_INIT_LOG_FORMAT\)/],
    ['allow-empty env garbage', [], { CONFIG_INIT_ALLOW_EMPTY: 'maybe' }, /CONFIG_INIT_ALLOW_EMPTY/],
    ['unknown command', ['push'], {}, /unknown command 'push'/],
    ['exec without --', ['exec'], {}, /'exec' needs the command after '--'/],
    ['exec with -- but no command', ['exec', '--'], {}, /'exec' needs the command/],
    ['exec with an empty command', ['exec', '--', ''], {}, /command name after '--' is empty/],
    ['a command after -- without exec', ['--', 'true'], {}, /needs 'exec'/],
    ['fetch with a command', ['fetch', '--', 'true'], {}, /needs 'exec'/],
    ['two commands', ['exec', 'fetch', '--', 'true'], {}, /unexpected argument 'fetch'/],
    ['env naming', ['--env-naming', 'kebab'], {}, /--env-naming \(env CONFIG_INIT_ENV_NAMING\): expected standard or spring/],
    ['allow-env lower case', ['--allow-env', 'ld_preload'], {}, /--allow-env \(env CONFIG_INIT_ALLOW_ENV\): 'ld_preload' is not an environment variable name/],
    ['allow-env from env with a dash', [], { CONFIG_INIT_ALLOW_ENV: 'NODE-OPTIONS' }, /CONFIG_INIT_ALLOW_ENV/],
    ['files env garbage', [], { CONFIG_INIT_FILES: 'sure' }, /CONFIG_INIT_FILES/],
    ['fallback dir = output dir', ['--output-dir', '/out', '--fallback-dir', '/out/'], {}, /--fallback-dir \(env CONFIG_INIT_FALLBACK_DIR\): must differ from --output-dir/],
    ['fallback max age without dir', ['--fallback-max-age', '1h'], {}, /--fallback-max-age \(env CONFIG_INIT_FALLBACK_MAX_AGE\) needs --fallback-dir/],
    ['fallback max age bad', ['--fallback-dir', '/fb', '--fallback-max-age', 'old'], {}, /--fallback-max-age/],
    ['fallback max age above a year', ['--fallback-dir', '/fb', '--fallback-max-age', '366d'], {}, /between 1 ms and 8760 h/],
    ['fallback with exec', ['exec', '--fallback-dir', '/fb', '--', 'true'], {}, /not available with 'exec'/],
  ])('%s', (_name, extra, env, message) => {
    const run = (): unknown => parseCommandLine([...BASE, ...extra], env);
    expect(run).toThrow(UsageError);
    expect(run).toThrow(message);
  });

  it.each([
    ['server', /--server \(env CONFIG_INIT_SERVER\) is required/],
    ['app', /--app \(env CONFIG_INIT_APP\) is required/],
    ['cert', /--cert \(env CONFIG_INIT_CERT\) is required/],
    ['key', /--key \(env CONFIG_INIT_KEY\) is required/],
  ])('requires --%s', (flag, message) => {
    const argv = [...BASE];
    argv.splice(argv.indexOf(`--${flag}`), 2);
    expect(() => parseCommandLine(argv, {})).toThrow(message);
  });

  it('names every missing required setting at once', () => {
    expect(() => parseCommandLine(['--profile', 'prod'], {})).toThrow(
      new UsageError('--server (env CONFIG_INIT_SERVER), --app (env CONFIG_INIT_APP), --cert (env CONFIG_INIT_CERT) and --key (env CONFIG_INIT_KEY) are required'),
    );
    expect(() => parseCommandLine(['--app', 'orders', '--cert', 'c'], { CONFIG_INIT_SERVER: 'https://cs' })).toThrow(
      new UsageError('--key (env CONFIG_INIT_KEY) is required'),
    );
  });

  it('rejects a bad server from the environment', () => {
    expect(() => parseCommandLine(['--app', 'a', '--cert', 'c', '--key', 'k'], { CONFIG_INIT_SERVER: 'ftp://x' })).toThrow(
      /--server \(env CONFIG_INIT_SERVER\): must be an https/,
    );
  });

  it('is exit code 64', () => {
    try {
      parseCommandLine(['--bogus'], {});
    } catch (err) {
      expect((err as UsageError).code).toBe('CFG_INIT_ERR_USAGE');
    }
  });
});

describe('help and version', () => {
  it.each([['--help'], ['-h'], ['--version'], ['-v']])('%s needs no other setting', (flag) => {
    expect(parseCommandLine([flag], {}).kind).toBe(flag.includes('h') ? 'help' : 'version');
  });

  it('lists every flag with its env variable and default', () => {
    const text = helpText();
    for (const o of OPTION_TABLE) {
      expect(text).toContain(`--${o.flag}`);
      if (o.env) expect(text).toContain(o.env);
      if (o.default !== undefined && o.default !== '') expect(text).toContain(`default ${o.default}`);
    }
  });
});
