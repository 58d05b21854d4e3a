/**
 * `config-init exec` against a real mTLS server: the environment map handed to a real
 * child process byte for byte, refused loader variables, exit codes, signal forwarding
 * (through an injected signal source, and through the real built bundle).
 */
import { execFileSync, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseCommandLine, type Options } from '../src/args.js';
import { childEnv, FORWARDED_SIGNALS, isRefusedEnvName, REFUSED_ENV_NAMES, refusedEnvNames, signalExitCode, type SignalSource } from '../src/exec.js';
import { runExec, sha256Hex, type ExecDeps, type RunResult } from '../src/index.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { configAnswer, envAnswer, problem, startServer, type TestServer } from './helpers/server.js';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(PKG, 'dist', 'config-init.mjs');
const COMMIT = 'c'.repeat(40);
const NODE = process.execPath;

/** Case 10's values, plus unicode, CR/LF and tabs. */
const VALUES: Record<string, string> = {
  DB_PASSWORD: 'pa$$word#1 x',
  WIN: 'C:\\new\\x',
  GREETING: 'it\'s "ok"',
  EMPTY: '',
  MIXED: 'a\'b"c`d $(id)',
  TLS_KEY: '-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n',
  UNICODE: 'Grüße, 東京 ✓ 😀',
  CONTROL: 'tab\there\r\nnext ${HOME} %PATH% \\n',
};

/** A child that writes JSON of the named variables (null when unset) to argv[1]. */
const PRINT_ENV = 'const [out, ...names] = process.argv.slice(1); const o = {}; for (const n of names) o[n] = process.env[n] ?? null; require("fs").writeFileSync(out, JSON.stringify(o));';

let certs: TestCerts;
let server: TestServer;
let work: string;
let logs: string;

beforeAll(async () => {
  certs = await makeCerts();
  server = await startServer(certs);
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  server.requests = [];
  work = await mkdtemp(join(tmpdir(), 'config-init-exec-'));
  logs = '';
});

function options(extra: string[] = []): Options {
  const cmd = parseCommandLine(
    ['exec', '--server', server.url, '--app', 'orders', '--profile', 'prod', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
      '--output-dir', join(work, 'config'), '--termination-log', '', '--deadline', '5000', ...extra, '--', 'unused'],
    {},
  );
  if (cmd.kind !== 'exec') throw new Error('not exec');
  return cmd.options;
}

function exec(opts: Options, command: string[], deps: ExecDeps = {}): Promise<RunResult> {
  return runExec(opts, command, { stderr: { write: (s: string) => (logs += s) }, ...deps });
}

async function waitForFile(path: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await stat(path).then(() => true, () => false)) return;
    if (Date.now() > until) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A child that traps `sig` and exits `exit`, after writing `ready`. */
const TRAP = (ready: string, exit: number, sig = 'SIGTERM'): string =>
  `process.on(${JSON.stringify(sig)}, () => process.exit(${exit})); require("fs").writeFileSync(${JSON.stringify(ready)}, "r"); setInterval(() => {}, 1000);`;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

describe('exec: the environment handed to the command', () => {
  it('gives the child every value byte for byte (quotes, $, backslashes, newlines, unicode, empty)', async () => {
    server.handler = () => envAnswer(VALUES, COMMIT);
    const out = join(work, 'env.json');
    const res = await exec(options(), [NODE, '-e', PRINT_ENV, out, ...Object.keys(VALUES)]);
    expect(res).toMatchObject({ exitCode: 0, commit: COMMIT });
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(VALUES);
    const req = server.requests[0];
    expect(req?.path).toBe('/v1/apps/orders/config');
    expect(req?.query.get('format')).toBe('env');
    expect(req?.query.get('profile')).toBe('prod');
    expect(req?.query.has('envNaming')).toBe(false);
    expect(req?.accept).toBe('application/json, application/problem+json;q=0.1');
    expect(server.requests).toHaveLength(1);
    // Logs name variables and hashes, never values.
    expect(logs).toContain('DB_PASSWORD');
    expect(logs).toContain(sha256Hex(JSON.stringify(VALUES)));
    for (const v of Object.values(VALUES).filter((x) => x.length > 3)) expect(logs).not.toContain(v);
  });

  it('merges over the current environment; the configuration wins', async () => {
    server.handler = () => envAnswer({ SHARED: 'from-config', ONLY_CONFIG: '1' }, COMMIT);
    const out = join(work, 'env.json');
    const res = await exec(options(), [NODE, '-e', PRINT_ENV, out, 'SHARED', 'ONLY_CONFIG', 'ONLY_BASE', 'UNSET'], {
      baseEnv: { SHARED: 'from-pod', ONLY_BASE: 'kept', UNSET: undefined, PATH: process.env.PATH },
    });
    expect(res.exitCode).toBe(0);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ SHARED: 'from-config', ONLY_CONFIG: '1', ONLY_BASE: 'kept', UNSET: null });
  });

  it('finds a bare program name on PATH without a shell, and passes arguments verbatim', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const out = join(work, 'args.json');
    const script = 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))';
    const res = await exec(options(), ['node', '-e', script, out, '$A', '`id`', '*', '; echo x'], { baseEnv: { PATH: process.env.PATH } });
    expect(res.exitCode).toBe(0);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(['$A', '`id`', '*', '; echo x']);
  });

  it('--env-naming spring asks the service for relaxed-binding names', async () => {
    server.handler = () => envAnswer({ FEATUREFLAGS_NEWCHECKOUT: 'true' }, COMMIT);
    const out = join(work, 'env.json');
    const res = await exec(options(['--env-naming', 'spring', '--ref', 'main']), [NODE, '-e', PRINT_ENV, out, 'FEATUREFLAGS_NEWCHECKOUT']);
    expect(res.exitCode).toBe(0);
    expect(server.requests[0]?.query.get('envNaming')).toBe('spring');
    expect(server.requests[0]?.query.get('ref')).toBe('main');
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ FEATUREFLAGS_NEWCHECKOUT: 'true' });
  });

  it("exits with the child's own exit code", async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const res = await exec(options(), [NODE, '-e', 'process.exit(3)']);
    expect(res.exitCode).toBe(3);
    expect(res.message).toBe(`command '${NODE}' exited with code 3`);
  });
});

describe('exec: refused variables', () => {
  it('refuses code-loading variables (exit 65), naming them but no value, and never starts the child', async () => {
    server.handler = () => envAnswer({ NODE_PATH: '/evil/node', PYTHONPATH: '/evil/py', LD_BIND_NOW: 'secret-ish', SAFE: 'ok' }, COMMIT);
    const marker = join(work, 'started');
    const tlog = join(work, 'termination-log');
    await writeFile(tlog, '');
    const res = await exec(options(['--termination-log', tlog]), [NODE, '-e', `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`]);
    expect(res.exitCode).toBe(65);
    expect(res.code).toBe('CFG_INIT_ERR_REFUSED_ENV');
    expect(res.message).toMatch(/the configuration sets LD_BIND_NOW, NODE_PATH, PYTHONPATH, which change how a process loads code; allow by name with --allow-env/);
    expect(await exists(marker)).toBe(false);
    expect(logs).not.toMatch(/evil|secret-ish/);
    expect(await readFile(tlog, 'utf8')).toMatch(/^config-init: exit 65 CFG_INIT_ERR_REFUSED_ENV: refusing to start the command: the configuration sets LD_BIND_NOW, NODE_PATH, PYTHONPATH/);
  });

  it('allows refused variables by exact name only', async () => {
    server.handler = () => envAnswer({ NODE_PATH: '/opt/node', PYTHONPATH: '/opt/py' }, COMMIT);
    const out = join(work, 'env.json');
    const partly = await exec(options(['--allow-env', 'NODE_PATH']), [NODE, '-e', PRINT_ENV, out, 'NODE_PATH']);
    expect(partly.exitCode).toBe(65);
    expect(partly.message).toMatch(/sets PYTHONPATH, which changes how/);
    expect(await exists(out)).toBe(false);

    const cmd = parseCommandLine(['exec', '--server', server.url, '--app', 'orders', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
      '--termination-log', '', '--', 'x'], { CONFIG_INIT_ALLOW_ENV: 'NODE_PATH,PYTHONPATH' });
    if (cmd.kind !== 'exec') throw new Error('not exec');
    const allowed = await exec(cmd.options, [NODE, '-e', PRINT_ENV, out, 'NODE_PATH', 'PYTHONPATH']);
    expect(allowed.exitCode).toBe(0);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ NODE_PATH: '/opt/node', PYTHONPATH: '/opt/py' });
  });

  it.each([
    'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'DYLD_INSERT_LIBRARIES', 'DYLD_LIBRARY_PATH', 'NODE_OPTIONS', 'NODE_PATH', 'JAVA_TOOL_OPTIONS',
    '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'PYTHONPATH', 'PYTHONSTARTUP', 'PYTHONHOME', 'PERL5LIB', 'PERL5OPT', 'RUBYOPT', 'RUBYLIB', 'BASH_ENV',
    'ENV', 'PS4', 'PROMPT_COMMAND', 'GCONV_PATH', 'GIT_EXEC_PATH', 'PATH', 'LD_ANYTHING_NEW', 'DYLD_FRAMEWORK_PATH',
  ])('%s is refused', (name) => {
    expect(isRefusedEnvName(name)).toBe(true);
  });

  it.each(['SERVER_PORT', 'DB_PASSWORD', 'LD', 'OLD_PRELOAD', 'MY_NODE_OPTIONS', 'HOME', 'JAVA_HOME', 'SPRING_PROFILES_ACTIVE'])('%s is not refused', (name) => {
    expect(isRefusedEnvName(name)).toBe(false);
  });

  it('lists refused names sorted, minus the allowed ones; the list has no duplicates', () => {
    expect(refusedEnvNames({ PS4: 'x', A: 'y', BASH_ENV: 'z', LD_PRELOAD: 'w' }, ['PS4'])).toEqual(['BASH_ENV', 'LD_PRELOAD']);
    expect(new Set(REFUSED_ENV_NAMES).size).toBe(REFUSED_ENV_NAMES.length);
  });

  it('childEnv drops unset entries and lets the configuration win', () => {
    expect(childEnv({ A: '1', B: undefined, C: 'base' }, { C: 'config', D: '' })).toEqual({ A: '1', C: 'config', D: '' });
  });
});

describe('exec: failures before the command starts', () => {
  it('a missing command → 127, like shells', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const res = await exec(options(), [join(work, 'no-such-program'), 'arg'], { baseEnv: { PATH: '/nonexistent' } });
    expect(res.exitCode).toBe(127);
    expect(res.code).toBe('CFG_INIT_ERR_COMMAND_NOT_FOUND');
    expect(res.message).toMatch(/not found \(ENOENT\); exec starts it without a shell/);
    const bare = await exec(options(), ['no-such-program-anywhere'], { baseEnv: { PATH: '/nonexistent' } });
    expect(bare.exitCode).toBe(127);
  });

  it('a command that is not executable → 126', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const file = join(work, 'not-executable.sh');
    await writeFile(file, '#!/bin/sh\nexit 0\n');
    await chmod(file, 0o644);
    const res = await exec(options(), [file]);
    expect(res.exitCode).toBe(126);
    expect(res.code).toBe('CFG_INIT_ERR_COMMAND_NOT_EXECUTABLE');
  });

  it.each<[string, number, () => ReturnType<typeof problem>, RegExp]>([
    ['422 name collision', 65, () => problem(422, 'env_name_collision', 'feature-flags.new-checkout and feature-flags.new_checkout both become FEATURE_FLAGS_NEW_CHECKOUT'), /HTTP 422 env_name_collision/],
    ['404', 66, () => problem(404, 'app_not_found', 'nope'), /HTTP 404/],
    ['403', 77, () => problem(403, 'forbidden', 'no'), /HTTP 403/],
    ['an old service that answers shell text', 65, () => configAnswer('env', "export A='1'\n", COMMIT), /expected application\/json; is config-service too old for exec\?/],
    ['a JSON array', 65, () => ({ status: 200, headers: { 'content-type': 'application/json', 'config-commit': COMMIT }, body: '["A"]' }), /body is not a JSON object/],
    ['a bad name', 65, () => envAnswer({ 'lower-case': 'x' }, COMMIT), /not an environment variable name: lower-case/],
    ['a number value', 65, () => envAnswer({ PORT: 8080 }, COMMIT), /value is not a string for PORT/],
    ['a NUL in a value', 65, () => envAnswer({ BAD: 'a\u0000b' }, COMMIT), /the value of BAD contains NUL/],
    ['an empty map', 65, () => envAnswer({}, COMMIT, 0), /configuration is empty/],
  ])('%s → %i and the child never starts', async (_name, exitCode, answer, message) => {
    server.handler = answer;
    const marker = join(work, 'started');
    const res = await exec(options(), [NODE, '-e', `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`]);
    expect(res.exitCode).toBe(exitCode);
    expect(res.message).toMatch(message);
    expect(await exists(marker)).toBe(false);
    expect(logs).not.toContain('a\u0000b');
  });

  it('--allow-empty starts the command with an empty configuration', async () => {
    server.handler = () => envAnswer({}, COMMIT, 0);
    const res = await exec(options(['--allow-empty']), [NODE, '-e', 'process.exit(0)']);
    expect(res.exitCode).toBe(0);
  });

  it('--dry-run prints names, sizes and hashes, never values, and starts nothing', async () => {
    server.handler = () => envAnswer(VALUES, COMMIT);
    let stdout = '';
    const marker = join(work, 'started');
    const res = await exec(options(['--dry-run']), [NODE, '-e', `require("fs").writeFileSync(${JSON.stringify(marker)}, "x")`], {
      stdout: { write: (s: string) => (stdout += s) },
    });
    expect(res.exitCode).toBe(0);
    const expected = Object.keys(VALUES)
      .sort()
      .map((n) => `env ${n}\t${Buffer.byteLength(VALUES[n] ?? '')} bytes\tsha256:${sha256Hex(VALUES[n] ?? '')}\n`)
      .join('');
    expect(stdout).toBe(`${expected}exec ${NODE}\t2 argument(s)\n`);
    for (const v of Object.values(VALUES).filter((x) => x.length > 3)) {
      expect(stdout).not.toContain(v);
      expect(logs).not.toContain(v);
    }
    expect(await exists(marker)).toBe(false);
  });
});

describe('exec: signals', () => {
  it('forwards a signal the child traps; the child exits 42 → exit 42', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const ready = join(work, 'ready');
    const signals = new EventEmitter();
    const pending = exec(options(), [NODE, '-e', TRAP(ready, 42)], { signals: signals as unknown as SignalSource });
    await waitForFile(ready);
    expect(signals.listenerCount('SIGTERM')).toBe(1);
    signals.emit('SIGTERM');
    const res = await pending;
    expect(res.exitCode).toBe(42);
    expect(logs).toMatch(/forwarded=SIGTERM/);
    // Listeners are removed once the child has exited.
    for (const sig of FORWARDED_SIGNALS) expect(signals.listenerCount(sig)).toBe(0);
  });

  it('a child that dies from an untrapped forwarded signal → 128+n', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const ready = join(work, 'ready');
    const signals = new EventEmitter();
    const pending = exec(options(), [NODE, '-e', `require("fs").writeFileSync(${JSON.stringify(ready)}, "r"); setInterval(() => {}, 1000);`], {
      signals: signals as unknown as SignalSource,
    });
    await waitForFile(ready);
    signals.emit('SIGHUP');
    const res = await pending;
    expect(res.exitCode).toBe(128 + constants.signals.SIGHUP);
    expect(res.exitCode).toBe(129);
  });

  it('a child killed by SIGKILL → 137', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const ready = join(work, 'ready');
    let pid = 0;
    const pending = exec(options(), [NODE, '-e', `require("fs").writeFileSync(${JSON.stringify(ready)}, "r"); setInterval(() => {}, 1000);`], {
      onSpawn: (p) => (pid = p),
    });
    await waitForFile(ready);
    process.kill(pid, 'SIGKILL');
    const res = await pending;
    expect(res.exitCode).toBe(137);
    expect(res.message).toMatch(/was killed by SIGKILL/);
  });

  it('signalExitCode follows os.constants.signals', () => {
    expect(signalExitCode('SIGKILL')).toBe(137);
    expect(signalExitCode('SIGTERM')).toBe(143);
    expect(signalExitCode('SIGINT')).toBe(130);
  });
});

describe('exec through the built bundle: real process signals', () => {
  beforeAll(() => {
    execFileSync(NODE, [join(PKG, 'build.mjs')], { cwd: PKG, stdio: 'inherit' });
  });

  function spawnBundle(command: string[]): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
    const child = spawn(
      NODE,
      [BIN, 'exec', '--server', server.url, '--app', 'orders', '--cert', certs.files.cert, '--key', certs.files.key, '--ca', certs.files.ca,
        '--termination-log', '', '--', ...command],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', FROM_POD: 'pod' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
    return { child, done };
  }

  it('stdout is inherited and the environment merged: the child prints the configuration', async () => {
    server.handler = () => envAnswer({ DB_PASSWORD: VALUES.DB_PASSWORD, FROM_POD: 'config' }, COMMIT);
    const { done } = spawnBundle([NODE, '-e', 'process.stdout.write(JSON.stringify({ a: process.env.DB_PASSWORD, b: process.env.FROM_POD }))']);
    const res = await done;
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ a: 'pa$$word#1 x', b: 'config' });
    expect(res.stderr).not.toContain('pa$$word');
  });

  it.each(FORWARDED_SIGNALS.map((s, i) => [s, 40 + i] as const))('%s sent to config-init reaches the child (it exits %i)', async (sig, exit) => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const ready = join(work, `ready-${sig}`);
    const { child, done } = spawnBundle([NODE, '-e', TRAP(ready, exit, sig)]);
    await waitForFile(ready);
    child.kill(sig);
    const res = await done;
    expect(res.code).toBe(exit);
    expect(res.signal).toBeNull();
    expect(res.stderr).not.toMatch(/Debugger listening/);
  });

  it('the child killed by SIGKILL → config-init exits 137', async () => {
    server.handler = () => envAnswer({ A: '1' }, COMMIT);
    const ready = join(work, 'ready-kill');
    const pidFile = join(work, 'pid');
    const { done } = spawnBundle([NODE, '-e', `const fs = require("fs"); fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); fs.writeFileSync(${JSON.stringify(ready)}, "r"); setInterval(() => {}, 1000);`]);
    await waitForFile(ready);
    process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
    const res = await done;
    expect(res.code).toBe(137);
  });
});
