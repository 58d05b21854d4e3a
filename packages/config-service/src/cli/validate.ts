/**
 * `config-service validate <repo-dir>`: checks a configuration repository's working tree
 * before merge (SPEC §9). The checks are in `config/validate-repo.ts`; this file parses
 * the options, prints the report and sets the exit code (1 on errors, 0 otherwise;
 * usage errors are 64 through `main.ts`).
 *
 * Documents are parsed by the service's own `DocumentParserPool` with the service's
 * `documents:` limits (from `--config` and `CONFIG_SERVICE_DOCUMENTS_*`), large ones in
 * worker threads with the same deadline and heap limit, so a hostile file is a finding,
 * never a crash.
 */
import { Option, type Command } from 'commander';
import type { Layout } from '../config/app-config.js';
import { formatReport, validateRepository, type Severity } from '../config/validate-repo.js';
import { DocumentParserPool } from '../document-parser.js';
import { ALL_APPS, isTemplateUrl, matchesAny } from '../git/app-patterns.js';
import { CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { loadDocumentSettings, loadSettings } from '../settings/load.js';
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
   * The service settings file: its `documents:` limits apply (other sections are ignored
   * unless `repository` is given, which needs the `repositories:` list).
   */
  readonly config?: string;
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
): Promise<{ output: string; exitCode: number }> {
  const profiles = opts.profiles?.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const routing = opts.repository === undefined ? undefined : servedBy(settings, opts.repository, opts.app);
  const limits = settings?.documents ?? loadDocumentSettings({ ...(opts.config !== undefined && { file: opts.config }), env });
  const parser = new DocumentParserPool(limits);
  try {
    const report = await validateRepository(dir, {
      layout: opts.layout ?? routing?.layout ?? 'folders',
      ...(routing !== undefined && { notServed: routing.notServed }),
      ...(profiles !== undefined && profiles.length > 0 && { profiles }),
      ...(opts.unresolved !== undefined && { unresolved: opts.unresolved }),
      ...(opts.unboundSecrets !== undefined && { unboundSecrets: opts.unboundSecrets }),
      parse: parser.parse,
    });
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
    .action(async (dir: string, opts: ValidateCommandOptions) => {
      // The whole settings file only when --repository needs its repositories: list.
      const settings = opts.repository !== undefined && opts.config !== undefined ? loadSettings({ file: opts.config, env: process.env }) : undefined;
      const { output, exitCode } = await runValidate(dir, opts, settings, process.env);
      process.stdout.write(output);
      process.exitCode = exitCode;
    });
}
