/**
 * Property paths: Spring's property-name syntax, path keys, ordering and nesting.
 *
 * Internal to `src/config/`; the public names are re-exported by `index.ts`.
 */
import type { PropertyPath, TreeValue } from './types.js';

/** One element of a property name as written: a map key or a list index (`[0]`). */
export type NameToken = string | { readonly index: number };

/**
 * Splits a property name into its elements, following Spring Boot's
 * `ConfigurationPropertyName` syntax: elements are separated by `.`, a bracketed
 * element `[...]` is one literal element that keeps its dots, and a bracketed
 * non-negative decimal integer (`[0]`) is a list index.
 *
 * Lenient where Spring would refuse: an unclosed `[` makes the rest of the name one
 * element, characters right after `]` start a new element, and empty elements
 * (`a..b`, a leading or trailing dot) are dropped.
 *
 * @param name - the name as written, e.g. `servers[0].host` or `annotations[app.example.com/x]`.
 * @returns the elements in order; an empty array when the name has no element.
 * Never throws.
 */
export function parsePropertyName(name: string): NameToken[] {
  const tokens: NameToken[] = [];
  let current = '';
  const flush = (): void => {
    if (current !== '') tokens.push(current);
    current = '';
  };
  let i = 0;
  while (i < name.length) {
    const c = name[i] as string;
    if (c === '.') {
      flush();
      i++;
    } else if (c === '[') {
      flush();
      const close = name.indexOf(']', i + 1);
      const inner = close < 0 ? name.slice(i + 1) : name.slice(i + 1, close);
      if (/^(0|[1-9][0-9]{0,8})$/.test(inner)) tokens.push({ index: Number(inner) });
      else if (inner !== '') tokens.push(inner);
      i = close < 0 ? name.length : close + 1;
    } else {
      current += c;
      i++;
    }
  }
  flush();
  return tokens;
}

/**
 * Writes property-name elements back as one name, the way Spring flattens them:
 * `a.b`, `list[0]`, `list[0].host`, and an element holding `.`, `[` or `]` in brackets
 * (`annotations[app.example.com/source]`).
 *
 * @param tokens - elements from the root.
 * @returns the flattened name. Never throws.
 */
export function formatPropertyName(tokens: readonly NameToken[]): string {
  let out = '';
  for (const t of tokens) {
    if (typeof t !== 'string') out += `[${t.index}]`;
    else if (/[.[\]]/.test(t) || t === '') out += `[${t}]`;
    else out += out === '' ? t : `.${t}`;
  }
  return out;
}

/**
 * The key of a property path in a {@link MergedConfig}: unambiguous for any segments
 * (a segment may contain dots), so `["a.b"]` and `["a","b"]` get different keys.
 *
 * @param path - the segments from the root.
 * @returns a string key (currently the JSON array text). Never throws.
 */
export function pathKey(path: PropertyPath): string {
  return JSON.stringify(path);
}

/** Orders two strings by UTF-16 code units (locale independent, deterministic). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders two paths segment by segment; a path sorts before every path under it. */
export function comparePaths(a: PropertyPath, b: PropertyPath): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareStrings(a[i] as string, b[i] as string);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/** Orders two flattened names element by element: indices numerically and before keys. */
export function compareTokens(a: readonly NameToken[], b: readonly NameToken[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as NameToken;
    const y = b[i] as NameToken;
    if (typeof x === 'string' && typeof y === 'string') {
      const c = compareStrings(x, y);
      if (c !== 0) return c;
    } else if (typeof x !== 'string' && typeof y !== 'string') {
      if (x.index !== y.index) return x.index - y.index;
    } else {
      return typeof x === 'string' ? 1 : -1;
    }
  }
  return a.length - b.length;
}

/** True when `prefix` is a strict prefix of `path`. */
export function isStrictPrefix(prefix: PropertyPath, path: PropertyPath): boolean {
  if (prefix.length >= path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== path[i]) return false;
  return true;
}

class MapNode {
  readonly children = new Map<string, MapNode | { readonly leaf: TreeValue }>();
}

/**
 * Builds a nested map from path/value pairs (SPEC §2.2, nested outputs). Where one path
 * is a value and also a parent of another, the rest of the longer path is kept as one
 * dotted key in the deepest map that can hold it
 * (`com.example = INFO`, `com.example.db = DEBUG` → `{com: {example: INFO, "example.db": DEBUG}}`).
 * Pairs are placed in path order, so the result does not depend on the input order.
 * Should even the dotted key be taken (by a literal key spelled the same), shallower
 * maps are tried; a pair that fits nowhere is left out.
 *
 * @param pairs - paths (non-empty) with their values.
 * @returns a plain object tree; own keys may be in any order (renderers sort them).
 * Never throws.
 */
export function nestPaths(pairs: ReadonlyArray<readonly [PropertyPath, TreeValue]>): Record<string, TreeValue> {
  const root = new MapNode();
  const sorted = [...pairs].filter(([p]) => p.length > 0).sort((x, y) => comparePaths(x[0], y[0]));
  for (const [path, value] of sorted) {
    const chain: MapNode[] = [root];
    let node = root;
    let i = 0;
    while (i < path.length - 1) {
      const seg = path[i] as string;
      let child = node.children.get(seg);
      if (child === undefined) {
        child = new MapNode();
        node.children.set(seg, child);
      }
      if (!(child instanceof MapNode)) break;
      node = child;
      chain.push(node);
      i++;
    }
    for (let j = i; j >= 0; j--) {
      const target = chain[j] as MapNode;
      const key = path.slice(j).join('.');
      if (!target.children.has(key)) {
        target.children.set(key, { leaf: value });
        break;
      }
    }
  }
  return toObject(root) ?? {};
}

function toObject(node: MapNode): Record<string, TreeValue> | undefined {
  const out: Array<[string, TreeValue]> = [];
  for (const [k, v] of node.children) {
    if (v instanceof MapNode) {
      const o = toObject(v);
      if (o !== undefined) out.push([k, o]);
    } else {
      out.push([k, v.leaf]);
    }
  }
  if (out.length === 0) return undefined;
  out.sort((a, b) => compareStrings(a[0], b[0]));
  // Object.fromEntries defines own data properties, so a key named `__proto__` is safe.
  return Object.fromEntries(out);
}
