/**
 * `config-service validate`: every template of an application rendered for one profile set
 * (issue 12, docs/templates.md). Pure over the repository source it is handed, like
 * `validate/repository.ts`, which calls it once per application and profile set.
 *
 * Templates see the configuration as the service would give it to a caller allowed
 * `secrets:read`, except that `{cipher}` values stay as written (validate has no keys):
 * syntax, variables, filters, partials and bounds are checked; nothing is decrypted.
 */
import type { AppConfigReader } from './app-config.js';
import { DEFAULT_TEMPLATE_LIMITS, isPartial, renderTemplate, templateData, type TemplateFile, type TemplateLimits } from './templates.js';
import type { MergedConfig } from './types.js';

/** A template problem: where (template file, line, column) and what, never a value. */
export interface TemplateProblem {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** `template` (render), `entry` (symlink, LFS pointer). */
  readonly check: 'template' | 'entry';
  readonly message: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Renders every template (partials aside) of `app` for `profiles` at `commit` over `config`.
 * @returns the problems found, at most one per template; `[]` when the application has no templates.
 */
export async function templateProblems(
  reader: AppConfigReader,
  source: { readFileAt(commit: string, path: string): Promise<{ bytes: Uint8Array } | null> },
  commit: string,
  app: string,
  profiles: readonly string[],
  config: MergedConfig,
  limits: TemplateLimits = DEFAULT_TEMPLATE_LIMITS,
): Promise<TemplateProblem[]> {
  const entries = await reader.listOverlay(commit, app, profiles, 'templates').catch(() => []);
  if (entries.length === 0) return [];
  const problems: TemplateProblem[] = [];
  const files = new Map<string, TemplateFile>();
  for (const e of entries) {
    try {
      const file = await source.readFileAt(commit, e.source);
      if (file === null) continue;
      files.set(e.path, { text: UTF8.decode(file.bytes), source: e.source });
    } catch (err) {
      const entry = (err as { code?: string }).code === 'CFG_ERR_UNSUPPORTED_ENTRY';
      problems.push({ file: e.source, line: 1, column: 1, check: entry ? 'entry' : 'template', message: entry ? (err as Error).message : 'not UTF-8 text' });
    }
  }
  const data = templateData(config);
  for (const name of files.keys()) {
    if (isPartial(name)) continue;
    try {
      await renderTemplate(name, files, data, limits);
    } catch (err) {
      const e = err as Error & { data?: { template?: string; line?: number; column?: number } };
      const file = e.data?.template ?? files.get(name)?.source ?? name;
      const prefix = `${file}:${e.data?.line ?? 1}:${e.data?.column ?? 1}: `;
      problems.push({ file, line: e.data?.line ?? 1, column: e.data?.column ?? 1, check: 'template', message: e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message });
    }
  }
  return problems;
}
