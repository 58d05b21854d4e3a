/**
 * The two shapes every output is made from: the nested tree (JSON, YAML) and the
 * flattened names (properties, env, dotenv), SPEC §2.2 and §8.
 */
import { compareStrings, compareTokens, formatPropertyName, nestPaths, type NameToken } from './paths.js';
import type { MergedConfig, PropertyPath, TreeValue } from './types.js';
import { isScalar, scalarText } from './values.js';

/**
 * The nested tree of a merged configuration, keys sorted. Where one path is a value and
 * also a parent of another, the rest of the longer path is kept as one dotted key in the
 * deepest map that can hold it (SPEC §2.2):
 * `{"logging":{"level":{"com":{"example":"INFO","example.db":"DEBUG"}}}}`.
 *
 * @param config - the merge result.
 * @returns a plain object (own keys in sorted order; integer-like keys follow JavaScript's
 *   own ordering, so renderers sort keys themselves). Deterministic; never throws.
 */
export function toTree(config: MergedConfig): Record<string, TreeValue> {
  const pairs: Array<readonly [PropertyPath, TreeValue]> = [];
  for (const p of config.values()) pairs.push([p.path, p.value as TreeValue]);
  return nestPaths(pairs);
}

/** One flattened property with its name elements (for sorting and env naming). */
export interface FlatProperty {
  readonly tokens: readonly NameToken[];
  readonly name: string;
  readonly value: string;
}

function flattenValue(tokens: NameToken[], value: TreeValue, out: Array<{ tokens: NameToken[]; value: string }>): void {
  if (isScalar(value)) {
    out.push({ tokens, value: scalarText(value) });
  } else if (Array.isArray(value)) {
    // An empty list is one entry with an empty value (Spring's YamlProcessor does the same),
    // so it still replaces a lower list when read back.
    if (value.length === 0) out.push({ tokens, value: '' });
    value.forEach((item: TreeValue, i: number) => flattenValue([...tokens, { index: i }], item, out));
  } else {
    const map = value as { readonly [k: string]: TreeValue };
    const keys = Object.keys(map).sort(compareStrings);
    // An empty map inside a list keeps its index with an empty value.
    if (keys.length === 0) out.push({ tokens, value: '' });
    for (const k of keys) flattenValue([...tokens, k], map[k] as TreeValue, out);
  }
}

/**
 * The flattened properties with their name elements, sorted by {@link flatten}'s order.
 * Internal helper shared by the text renderers.
 */
export function flattenProperties(config: MergedConfig): FlatProperty[] {
  const out: Array<{ tokens: NameToken[]; value: string }> = [];
  for (const p of config.values()) flattenValue([...p.path], p.value as TreeValue, out);
  out.sort((a, b) => compareTokens(a.tokens, b.tokens));
  return out.map((e) => ({ tokens: e.tokens, name: formatPropertyName(e.tokens), value: e.value }));
}

/**
 * Spring-style flattened names and texts (`a.b`, `list[0]`, `list[0].host`,
 * `annotations[app.example.com/source]` for an element holding `.`, `[` or `]`).
 * Scalars are written as text (`true`/`false`, numbers with their exact digits); an
 * empty list is one entry with the value `""`; lists of maps are flattened fully.
 *
 * Order: element by element; keys by UTF-16 code units, list indices numerically and
 * before keys; a name sorts before the names under it.
 *
 * @param config - the merge result.
 * @returns `[name, value]` pairs. Deterministic; never throws.
 */
export function flatten(config: MergedConfig): Array<[name: string, value: string]> {
  return flattenProperties(config).map((p) => [p.name, p.value]);
}
