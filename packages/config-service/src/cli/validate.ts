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
import { loadDocumentSettings } from '../settings/load.js';

/** Options of {@link runValidate}, as the command line gives them. */
export interface ValidateCommandOptions {
  readonly layout: Layout;
  /** Comma-separated profile names; absent: every profile the repository names. */
  readonly profiles?: string;
  readonly format: 'text' | 'json';
  /** Severity of a placeholder without value and default; absent: by layout. */
  readonly unresolved?: Severity;
  /** The service settings file; only its `documents:` limits are read. */
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
export async function runValidate(dir: string, opts: ValidateCommandOptions, env: Readonly<Record<string, string | undefined>> = {}): Promise<{ output: string; exitCode: number }> {
  const profiles = opts.profiles?.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const parser = new DocumentParserPool(loadDocumentSettings({ ...(opts.config !== undefined && { file: opts.config }), env }));
  try {
    const report = await validateRepository(dir, {
      layout: opts.layout,
      ...(profiles !== undefined && profiles.length > 0 && { profiles }),
      ...(opts.unresolved !== undefined && { unresolved: opts.unresolved }),
      parse: parser.parse,
    });
    return { output: formatReport(report, opts.format), exitCode: report.errors > 0 ? 1 : 0 };
  } finally {
    await parser.close();
  }
}

/**
 * Adds `validate <repo-dir> [--layout folders|spring] [--profiles p1,p2] [--format text|json]
 * [--unresolved error|warning] [--config service.yml]` to the program.
 */
export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('Check a configuration repository (working tree) before merge: documents parse, no conflicts, placeholders resolve, schemas hold, environment names do not collide')
    .argument('<repo-dir>', 'the configuration repository (a checkout; .git is not needed)')
    .addOption(new Option('--layout <layout>', 'repository layout').choices(['folders', 'spring']).default('folders'))
    .option('--profiles <list>', 'comma-separated profiles to check (each alone, then all together); default: every profile the repository names')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--unresolved <severity>', 'severity of a placeholder without value and default (default: error for folders, warning for spring)').choices(['error', 'warning']))
    .option('-c, --config <file>', "the service settings file: its documents: limits apply (other sections are ignored); CONFIG_SERVICE_DOCUMENTS_* variables too")
    .action(async (dir: string, opts: ValidateCommandOptions) => {
      const { output, exitCode } = await runValidate(dir, opts, process.env);
      process.stdout.write(output);
      process.exitCode = exitCode;
    });
}
