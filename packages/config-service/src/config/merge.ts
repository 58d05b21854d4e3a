/**
 * Precedence and merging of property sources (SPEC §2.1, §2.2, §2.3).
 */
import { comparePaths, isStrictPrefix, pathKey } from './paths.js';
import { matchesProfiles } from './profiles.js';
import type { MergedConfig, MergedProperty, Origin, ParsedDocument, PropertySource } from './types.js';

export { pathKey } from './paths.js';

/**
 * Document extensions within one layer, lowest precedence first: `.properties` beats
 * `.yml`, which beats `.yaml`, which beats `.json` (SPEC §2, Spring Boot's loader order).
 */
export const EXTENSIONS_LOWEST_FIRST = ['.json', '.yaml', '.yml', '.properties'] as const;

/** One layer of SPEC §2.1: shared or application documents, without or with one profile. */
export interface Layer {
  readonly scope: 'shared' | 'app';
  readonly profile?: string;
}

/**
 * The layers for one request, lowest precedence first (SPEC §2.1, Spring Cloud Config's
 * order): `application`, `<app>/application`, then per profile in the caller's order
 * `application-<p>`, `<app>/application-<p>`. A profile named twice counts at its last
 * position (the later profile wins).
 *
 * @param app - the application name (not used in the result's shape; kept for callers' symmetry).
 * @param profiles - the profiles in request order.
 * @returns the layers, lowest first. Never throws.
 */
export function layerOrder(app: string, profiles: readonly string[]): Layer[] {
  void app;
  const unique = profiles.filter((p, i) => profiles.lastIndexOf(p) === i);
  const out: Layer[] = [{ scope: 'shared' }, { scope: 'app' }];
  for (const profile of unique) out.push({ scope: 'shared', profile }, { scope: 'app', profile });
  return out;
}

/**
 * The sources of one parsed file that apply for `profiles`, lowest precedence first
 * (SPEC §2.3): the documents without activation in file order (a later one overrides an
 * earlier one, as in Spring Boot), then the documents whose profile expression holds,
 * in file order, ranked above the unconditional ones.
 *
 * @param parsed - the result of `parseDocument`.
 * @param profiles - the active profiles.
 * @returns the sources to merge, lowest first.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) when an activation expression is malformed
 *   (`parseDocument` already refuses those, so only for hand-made input).
 */
export function selectSources(parsed: ParsedDocument, profiles: readonly string[]): PropertySource[] {
  const unconditional = parsed.sources.filter((s) => s.activation === undefined).map((s) => s.source);
  const activated = parsed.sources
    .filter((s) => s.activation !== undefined && matchesProfiles(s.activation, profiles))
    .map((s) => s.source);
  return [...unconditional, ...activated];
}

interface Slot {
  path: readonly string[];
  value: MergedProperty['value'];
  origin: Origin;
  overridden: Origin[];
}

/**
 * Merges property sources path by path (SPEC §2.2, Spring's property-source semantics).
 *
 * - A higher source wins at each path it sets; values at parent or child paths from lower
 *   sources stay (`logging.level.com.example` and `logging.level.com.example.db` both
 *   survive).
 * - A list is one value and replaces the lower value whole; lower values at paths under
 *   a path whose new value is a list are removed (a list has no child paths, as Spring
 *   Boot's binder sees it).
 * - `null` removes the path and every path under it from the lower sources; a higher
 *   source may set them again. Within one source, its removals apply before its values.
 * - Each result keeps its origin and the origins it overrode, nearest first.
 *
 * @param sources - lowest precedence first.
 * @returns the merged properties keyed by {@link pathKey}, in path order. Never throws.
 */
export function mergeSources(sources: readonly PropertySource[]): MergedConfig {
  const state = new Map<string, Slot>();
  const removeUnder = (prefix: readonly string[], inclusive: boolean): void => {
    for (const [k, slot] of state) {
      if (isStrictPrefix(prefix, slot.path) || (inclusive && comparePaths(prefix, slot.path) === 0)) state.delete(k);
    }
  };
  for (const source of sources) {
    for (const e of source.entries) {
      if (e.value === null) removeUnder(e.path, true);
      else if (Array.isArray(e.value)) removeUnder(e.path, false);
    }
    for (const e of source.entries) {
      if (e.value === null) continue;
      const k = pathKey(e.path);
      const lower = state.get(k);
      state.set(k, {
        path: e.path,
        value: e.value,
        origin: e.origin,
        overridden: lower === undefined ? [] : [lower.origin, ...lower.overridden],
      });
    }
  }
  const sorted = [...state.entries()].sort((a, b) => comparePaths(a[1].path, b[1].path));
  return new Map(sorted.map(([k, s]): [string, MergedProperty] => [k, { path: s.path, value: s.value, origin: s.origin, overridden: s.overridden }]));
}
