/**
 * `config-service validate <repo-dir>`: checks a configuration repository's working tree
 * before merge (SPEC §9). The checks are in `validate/repository.ts`; this file parses
 * the options, prints the report and sets the exit code (1 on errors, 0 otherwise;
 * usage errors are 64 through `main.ts`).
 *
 * Documents are parsed by the service's own `DocumentParserPool` with the service's
 * `documents:` limits (from `--config` and `CONFIG_SERVICE_DOCUMENTS_*`), large ones in
 * worker threads with the same deadline and heap limit, so a hostile file is a finding,
 * never a crash.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { Layout } from '../config/app-config.js';
import { formatReport, validateRepository, type Severity } from '../validate/repository.js';
import { DocumentParserPool } from '../document-parser.js';
import { ALL_APPS, isTemplateUrl, matchesAny } from '../git/app-patterns.js';
import type { KnownKeys } from '../config/validate-secrets.js';
import { CFG_ERR_SETTINGS_INVALID, CFG_ERR_USAGE } from '../errors.js';
import { NAME_PATTERN } from '../http/names.js';
import { loadDocumentSettings, loadSecretKeySettings, loadSettings, type SecretKeySettings } from '../settings/load.js';
import type { Settings } from '../settings/schema.js';

/** Options of {@link runValidate}, as the command line gives them. */
export interface ValidateCommandOptions {
  /** Default: the repository's `layout` with `--repository`, else `folders`. */
  readonly layout?: Layout;
  /** With `settings`: the `repositories[].name` this checkout is (several repositories). */
  readonly repository?: string;
  /** With a template `repository`: the application whose repository this checkout is. */
  readonly app?: string;
  /** Comma-separated profile names; absent: every profile the repository names. */
  readonly profiles?: string;
  readonly format: 'text' | 'json';
  /** Severity of a placeholder without value and default; absent: by layout. */
  readonly unresolved?: Severity;
  /** Severity of an unbound (version-1) secret; absent: warning. */
  readonly unboundSecrets?: Severity;
  /**
   * The service settings file: its `documents:` limits and `secrets.keys` ids apply (other
   * sections are ignored unless `repository` is given, which needs the `repositories:` list).
   */
  readonly config?: string;
  /** `<id>=<file>`: public keys (or private key PEMs, whose public half is used) of the service's key ids. */
  readonly publicKey?: readonly string[];
}

/** What {@link runValidate} decided: the report (stdout), a refusal (stderr) and the exit code. */
export interface ValidateOutcome {
  readonly output: string;
  /** Set when the directory could not be checked at all (exit code 2). */
  readonly error?: string;
  readonly exitCode: number;
}

/**
 * The keys `{cipher}` values are checked against: `--public-key id=file` entries (read
 * now; each must be an RSA public key) and the `secrets.keys` of `--config` (ids; their
 * key files are read when present, for the size check). `undefined` when neither names a key.
 *
 * @throws CFG_ERR_USAGE for a malformed `--public-key` or an unreadable key file it names.
 */
export function knownKeys(publicKeys: readonly string[] | undefined, configured: SecretKeySettings | undefined): KnownKeys | undefined {
  if ((publicKeys === undefined || publicKeys.length === 0) && configured === undefined) return undefined;
  const ids = new Set<string>();
  const modulusBytes = new Map<string, number>();
  const sizeOf = (pem: Buffer): number | undefined => {
    const key = createPublicKey(pem);
    const bits = key.asymmetricKeyType === 'rsa' ? key.asymmetricKeyDetails?.modulusLength : undefined;
    return bits === undefined ? undefined : Math.ceil(bits / 8);
  };
  for (const k of configured ?? []) {
    ids.add(k.id);
    for (const file of [k.publicKeyFile, k.privateKeyFile]) {
      if (file === undefined || modulusBytes.has(k.id)) continue;
      try {
        const size = sizeOf(readFileSync(file));
        if (size !== undefined) modulusBytes.set(k.id, size);
      } catch {
        // CI may not hold the service's key files: the id is enough.
      }
    }
  }
  for (const entry of publicKeys ?? []) {
    const m = /^([A-Za-z0-9._-]{1,64})=(.+)$/.exec(entry);
    if (m === null) throw new CFG_ERR_USAGE(`--public-key: '${entry}' is not <id>=<file> (the id as in secrets.keys[].id)`);
    const [, id, file] = m as unknown as [string, string, string];
    let size: number | undefined;
    try {
      size = sizeOf(readFileSync(file));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CFG_ERR_USAGE(`--public-key ${id}: ${code !== undefined ? `cannot read ${file} (${code})` : `${file} is not a PEM public key`}`);
    }
    if (size === undefined) throw new CFG_ERR_USAGE(`--public-key ${id}: ${file} is not an RSA key`);
    ids.add(id);
    modulusBytes.set(id, size);
  }
  return { ids, modulusBytes };
}

/** Why `dir` cannot be read as a working tree, or `undefined` when it can. */
async function unreadable(dir: string): Promise<string | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return `${dir} is not a directory`;
    await readdir(dir);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${dir} does not exist` : `${dir} cannot be read (${code ?? 'error'})`;
  }
}

/** Whether the root of `dir` holds `<name>.yml`-style documents other than `application*` (a `spring` layout). */
async function looksSpring(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.some((n) => /\.(ya?ml|properties)$/.test(n) && !n.startsWith('application'));
}

/**
 * Validates `dir` and renders the report.
 *
 * @param env - where `CONFIG_SERVICE_DOCUMENTS_*` limits are read from.
 * @returns the text for stdout and the exit code: 1 when there are errors, else 0.
 * @throws Error when `dir` cannot be read.
 * @throws CFG_ERR_SETTINGS_INVALID when the `documents:` limits are invalid.
 */
export async function runValidate(
  dir: string,
  opts: ValidateCommandOptions,
  settings?: Readonly<Settings>,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<ValidateOutcome> {
  const profiles = opts.profiles?.split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const p of profiles ?? []) {
    // The service's own rule (GET ...?profile=Prod is 400 there): a profile it refuses cannot be checked.
    if (!NAME_PATTERN.test(p) || p.includes('..')) throw new CFG_ERR_USAGE(`--profiles: '${p}' is not a profile name the service accepts (${NAME_PATTERN.source}, no '..'; profile names are lower case)`);
  }
  const routing = opts.repository === undefined ? undefined : servedBy(settings, opts.repository, opts.app);
  const layout = opts.layout ?? routing?.layout ?? 'folders';
  // The service's keys, when the settings name any (a settings file without keys checks no key ids).
  const configured = opts.config === undefined ? undefined : (settings?.secrets.keys ?? loadSecretKeySettings(opts.config, env));
  const keys = knownKeys(opts.publicKey, configured !== undefined && configured.length > 0 ? configured : undefined);
  const missing = await unreadable(dir);
  if (missing !== undefined) return { output: '', error: `${missing}: nothing to validate`, exitCode: 2 };
  const limits = settings?.documents ?? loadDocumentSettings({ ...(opts.config !== undefined && { file: opts.config }), env });
  const parser = new DocumentParserPool(limits);
  try {
    const report = await validateRepository(dir, {
      layout,
      ...(keys !== undefined && { keys }),
      ...(routing !== undefined && { notServed: routing.notServed }),
      ...(profiles !== undefined && profiles.length > 0 && { profiles }),
      ...(opts.unresolved !== undefined && { unresolved: opts.unresolved }),
      ...(opts.unboundSecrets !== undefined && { unboundSecrets: opts.unboundSecrets }),
      parse: parser.parse,
    });
    if (report.documents === 0 && report.schemas === 0) {
      const hint = layout === 'folders' && (await looksSpring(dir)) ? " (its root holds <app>.yml-style documents: is it a 'spring' layout repository? add --layout spring)" : '';
      return {
        output: '',
        error: `${dir} is not a configuration repository: it holds no configuration documents (application*.yml, .yaml, .json or .properties at the root or in an application folder${layout === 'spring' ? ', or <app>*.yml at the root' : ''}) for layout '${layout}'${hint}`,
        exitCode: 2,
      };
    }
    return { output: formatReport(report, opts.format), exitCode: report.errors > 0 ? 1 : 0 };
  } finally {
    await parser.close();
  }
}

/**
 * Which applications the service serves from repository `name` (SPEC §4): the first
 * `repositories[]` entry whose `apps` globs match an application serves it.
 * @throws CFG_ERR_SETTINGS_INVALID when no settings were given or no entry is named `name`
 */
export function servedBy(settings: Readonly<Settings> | undefined, name: string, app?: string): { layout: Layout; notServed: (a: string) => string | undefined } {
  if (settings === undefined) throw new CFG_ERR_SETTINGS_INVALID('  --repository: needs --config (the service settings naming the repositories)');
  const entry = settings.repositories.find((r) => r.name === name);
  if (entry === undefined) throw new CFG_ERR_SETTINGS_INVALID(`  --repository: no repositories[] entry is named '${name}'`);
  const template = entry.url !== undefined && isTemplateUrl(entry.url);
  return {
    layout: entry.layout,
    notServed: (a) => {
      const first = settings.repositories.find((r) => matchesAny(r.apps ?? ALL_APPS, a));
      if (first === undefined) return `no repositories[] entry claims '${a}': the service answers 404 for it`;
      if (first !== entry) return `'${a}' is served from repository '${first.name}', not from '${name}'`;
      if (template && app !== undefined && a !== app) return `this is the repository of '${app}' ('${name}' holds one repository per application): '${a}' is not served from it`;
      return undefined;
    },
  };
}

/**
 * Adds `validate <repo-dir> [--layout folders|spring] [--profiles p1,p2] [--format text|json]
 * [--unresolved error|warning] [--unbound-secrets error|warning]
 * [--config service.yml [--repository <name> [--app <name>]]]` to the program.
 */
export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('Check a configuration repository (working tree) before merge: documents parse, no conflicts, placeholders resolve, schemas hold, environment names do not collide')
    .argument('<repo-dir>', 'the configuration repository (a checkout; .git is not needed)')
    .addOption(new Option('--layout <layout>', 'repository layout (default: the repository\'s layout with --repository, else folders)').choices(['folders', 'spring']))
    .option('-c, --config <file>', 'the service settings file: its documents: limits apply (CONFIG_SERVICE_DOCUMENTS_* variables too); with --repository also its repositories: list')
    .option('--repository <name>', 'the repositories[] entry this checkout is: applications it does not serve are reported, not checked')
    .option('--app <name>', 'with a per-application (template) repository: the application it belongs to')
    .option('--profiles <list>', 'comma-separated profiles to check (each alone, then all together); default: every profile the repository names')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--unresolved <severity>', 'severity of a placeholder without value and default (default: error for folders, warning for spring)').choices(['error', 'warning']))
    .addOption(new Option('--unbound-secrets <severity>', 'severity of a {cipher} value not bound to an application (default: warning)').choices(['error', 'warning']))
    .option('--public-key <id=file...>', "the service's public key of key id <id> (PEM; a private key PEM works too): every {cipher} value must name a known key id and fit its key; repeatable")
    .action(async (dir: string, opts: ValidateCommandOptions) => {
      // The whole settings file only when --repository needs its repositories: list.
      const settings = opts.repository !== undefined && opts.config !== undefined ? loadSettings({ file: opts.config, env: process.env }) : undefined;
      const { output, error, exitCode } = await runValidate(dir, opts, settings, process.env);
      process.stdout.write(output);
      if (error !== undefined) process.stderr.write(`config-service validate: ${error}\n`);
      process.exitCode = exitCode;
    });
}
