/**
 * `config-init exec`: the refused-variable check, the child environment, and starting the
 * command with signal forwarding (SPEC §7).
 *
 * The command is started directly (`shell: false`): no shell parses the configuration or
 * the command line, so no value is ever expanded or executed by config-init.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { ConfigInitError } from './errors.js';

/**
 * Environment variables that change how a process (or the interpreter or shell it runs)
 * loads or runs code. A configuration repository must not be able to set them: whoever may
 * edit YAML could otherwise run code in every pod of the application. They are refused
 * unless allowed by exact name (`--allow-env`). Variables already in config-init's own
 * environment (set by the pod spec) are passed through untouched.
 */
export const REFUSED_ENV_NAMES: readonly string[] = Object.freeze([
  // Which programs run at all.
  'PATH',
  // glibc / musl loader (every LD_* is refused, see REFUSED_ENV_PREFIXES); charset
  // conversion modules; tunables (CVE-2023-4911).
  'GCONV_PATH', 'GLIBC_TUNABLES',
  // OpenSSL configuration and engines/providers load shared objects.
  'OPENSSL_CONF', 'OPENSSL_ENGINES', 'OPENSSL_MODULES',
  // Node.js
  'NODE_OPTIONS', 'NODE_PATH', 'NODE_REPL_EXTERNAL_MODULE',
  // JVM (read by the java launcher itself), the classpath, and launch-script conventions.
  'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'CLASSPATH', 'JAVA_OPTS',
  // Python
  'PYTHONPATH', 'PYTHONSTARTUP', 'PYTHONHOME', 'PYTHONUSERBASE', 'PYTHONBREAKPOINT', 'PYTHONWARNINGS',
  // Perl, Ruby, Lua, PHP, Erlang
  'PERL5LIB', 'PERL5OPT', 'PERLLIB', 'PERL5DB', 'RUBYOPT', 'RUBYLIB', 'LUA_PATH', 'LUA_CPATH', 'PHPRC', 'PHP_INI_SCAN_DIR',
  'ERL_AFLAGS', 'ERL_ZFLAGS', 'ERL_LIBS',
  // .NET startup hooks and profilers
  'DOTNET_STARTUP_HOOKS', 'CORECLR_ENABLE_PROFILING', 'CORECLR_PROFILER', 'CORECLR_PROFILER_PATH', 'COR_ENABLE_PROFILING', 'COR_PROFILER', 'COR_PROFILER_PATH',
  // Shells: startup files, prompt and trace hooks, options
  'BASH_ENV', 'ENV', 'PS4', 'PROMPT_COMMAND', 'SHELLOPTS', 'BASHOPTS',
  // Git helpers and configuration from the environment
  'GIT_EXEC_PATH', 'GIT_SSH', 'GIT_SSH_COMMAND', 'GIT_ASKPASS', 'GIT_PROXY_COMMAND', 'GIT_EXTERNAL_DIFF', 'GIT_CONFIG_COUNT',
  'GIT_CONFIG_PARAMETERS', 'GIT_TEMPLATE_DIR',
]);

/** Whole families refused by prefix: the dynamic loaders of Linux (`LD_*`) and macOS (`DYLD_*`). */
export const REFUSED_ENV_PREFIXES: readonly string[] = Object.freeze(['LD_', 'DYLD_']);

/** Signals forwarded to the child while it runs (SPEC §7). */
export const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/** One forwarded signal. */
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/** Where signals come from: `process` in the CLI, an `EventEmitter` in tests. */
export interface SignalSource {
  /** Adds a listener for `signal`. */
  on(signal: ForwardedSignal, listener: () => void): unknown;
  /** Removes it again. */
  off(signal: ForwardedSignal, listener: () => void): unknown;
}

/** Whether `name` is on the refused list (by name or prefix). */
export function isRefusedEnvName(name: string): boolean {
  return REFUSED_ENV_NAMES.includes(name) || REFUSED_ENV_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * The configuration's variables that are refused and not allowed by name, sorted.
 *
 * @param env - the configuration's variables (only the names are looked at).
 * @param allowed - names allowed by `--allow-env` (exact, case-sensitive).
 */
export function refusedEnvNames(env: Readonly<Record<string, string>>, allowed: readonly string[]): string[] {
  return Object.keys(env)
    .filter((n) => isRefusedEnvName(n) && !allowed.includes(n))
    .sort();
}

/**
 * The child's environment: `base` (config-init's own environment, unset entries dropped)
 * with the configuration's variables over it. **The configuration wins** on a clash.
 */
export function childEnv(base: Readonly<Record<string, string | undefined>>, config: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  for (const [k, v] of Object.entries(config)) out[k] = v;
  return out;
}

/** How the command ended. */
export interface CommandOutcome {
  /** config-init's exit code: the child's code, or 128+n when it died from signal n. */
  exitCode: number;
  /** The child's own exit code (`null` when it died from a signal). */
  code: number | null;
  /** The signal that ended the child, if any. */
  signal: NodeJS.Signals | null;
  /** Signals forwarded to it, in order. */
  forwarded: ForwardedSignal[];
}

/** 128 + the number of `signal` (as shells report a death by signal); 128 if unknown. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Starts `command` (no shell, stdio inherited) with `env`, forwards
 * {@link FORWARDED_SIGNALS} from `signals` to it while it runs, and resolves when it exits.
 *
 * @param command - program and arguments; the program is looked up on `env.PATH` unless
 *   it contains a `/`.
 * @param env - the complete child environment (see {@link childEnv}).
 * @param signals - where to listen for signals (`process` in the CLI); none if omitted.
 * @param onSpawn - called with the child's pid once it runs.
 * @throws {@link ConfigInitError} `CFG_INIT_ERR_COMMAND_NOT_FOUND` (127) or
 *   `CFG_INIT_ERR_COMMAND_NOT_EXECUTABLE` (126) when it cannot be started.
 */
export function startCommand(
  command: readonly string[],
  env: Readonly<Record<string, string>>,
  signals?: SignalSource,
  onSpawn?: (pid: number) => void,
): Promise<CommandOutcome> {
  const [file = '', ...args] = command;
  return new Promise((resolve, reject) => {
    const forwarded: ForwardedSignal[] = [];
    const listeners = new Map<ForwardedSignal, () => void>();
    const detach = (): void => {
      for (const [sig, fn] of listeners) signals?.off(sig, fn);
      listeners.clear();
    };
    let spawned = false;
    const child = spawn(file, args, { env, stdio: 'inherit', shell: false });
    // Listen at once: a signal that arrives before the 'spawn' event is still forwarded
    // (kill on a child whose exec is under way is delivered once it exists).
    for (const sig of FORWARDED_SIGNALS) {
      const fn = (): void => {
        forwarded.push(sig);
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill(sig);
      };
      listeners.set(sig, fn);
      signals?.on(sig, fn);
    }
    child.once('spawn', () => {
      spawned = true;
      if (child.pid !== undefined) onSpawn?.(child.pid);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (spawned) return; // a failed kill() of a running child; 'exit' still follows
      detach();
      const code = err.code ?? 'ERROR';
      const notFound = code === 'ENOENT' || code === 'ENOTDIR';
      reject(
        new ConfigInitError(
          notFound ? 'CFG_INIT_ERR_COMMAND_NOT_FOUND' : 'CFG_INIT_ERR_COMMAND_NOT_EXECUTABLE',
          notFound
            ? `command '${file}' not found (${code}); exec starts it without a shell, so give a path or a program on PATH`
            : `command '${file}' cannot be executed (${code})`,
          { cause: err },
        ),
      );
    });
    child.once('exit', (code, signal) => {
      detach();
      resolve({ exitCode: code ?? (signal ? signalExitCode(signal) : 128), code, signal, forwarded });
    });
  });
}
