/**
 * Environment variable names for flattened property names (SPEC §8).
 */
import { parsePropertyName } from './paths.js';

/** Naming styles: SPEC §8's standard rule, or Spring Boot's relaxed binding. */
export type EnvNaming = 'standard' | 'spring';

/** Every name this module returns matches this pattern. */
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]*$/;

function finish(name: string): string | undefined {
  const trimmed = name.replace(/_+$/, '');
  const fixed = /^[0-9]/.test(trimmed) ? `_${trimmed}` : trimmed;
  // `_` alone is the shell's last-argument variable; an empty name is not a name.
  if (fixed === '' || fixed === '_' || !ENV_NAME_PATTERN.test(fixed)) return undefined;
  return fixed;
}

/**
 * The environment name of a flattened property name.
 *
 * - `standard` (SPEC §8): each run of characters outside `[A-Za-z0-9]` becomes `_`, then
 *   upper case; so a list index `[n]` becomes `_n` (`server.port` → `SERVER_PORT`,
 *   `my-app.hosts[0]` → `MY_APP_HOSTS_0`, `servers[0].host` → `SERVERS_0_HOST`).
 * - `spring` (Spring Boot relaxed binding, "Binding From Environment Variables"): each
 *   element loses its dashes, elements and indices are joined by `_`, upper case
 *   (`feature-flags.new-checkout` → `FEATUREFLAGS_NEWCHECKOUT`, `my.list[0].a` →
 *   `MY_LIST_0_A`); other characters outside `[A-Za-z0-9]` become `_`.
 *
 * In both, trailing `_` are trimmed and a leading digit gets a `_` prefix.
 *
 * @param flatName - a name from `flatten`, e.g. `servers[0].host`.
 * @param naming - the style, `standard` by default.
 * @returns a name matching {@link ENV_NAME_PATTERN}, or `undefined` when the key has no
 *   letter or digit to make a name from (callers report it as unrenderable).
 */
export function envName(flatName: string, naming: EnvNaming = 'standard'): string | undefined {
  if (naming === 'standard') return finish(flatName.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase());
  const parts = parsePropertyName(flatName).map((t) =>
    typeof t === 'string' ? t.replace(/-/g, '').replace(/[^A-Za-z0-9]+/g, '_') : String(t.index),
  );
  return finish(parts.join('_').replace(/_+/g, '_').toUpperCase());
}
