/**
 * Settings errors as an operator reads them: one line per bad setting (TypeBox reports a
 * missing key twice, as "Expected required property" and "Expected string"), the values
 * a list allows, and "did you mean" for a misspelt key (`clientCA` → `clientCa`,
 * `reposotories` → `repositories`), by Levenshtein distance (fastest-levenshtein).
 */
import type { TSchema } from '@sinclair/typebox';
import { Value, ValuePointer, type ValueError } from '@sinclair/typebox/value';
import { distance } from 'fastest-levenshtein';

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  const?: unknown;
}

/** The schema at `segments` below `root` (array indices step into `items`). */
function schemaAt(root: TSchema, segments: readonly string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = root as SchemaNode;
  for (const seg of segments) {
    if (node === undefined) return undefined;
    node = /^\d+$/.test(seg) && node.items !== undefined ? node.items : node.properties?.[seg];
  }
  return node;
}

/**
 * The closest known key to `key`: the same letters in another case, else the nearest by
 * edit distance within a third of the key's length (at least 2, at most 3).
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.max(2, Math.floor(key.length / 3)));
  for (const k of known) {
    const d = distance(lower, k.toLowerCase());
    if (d <= bestDistance && (best === undefined || d < bestDistance)) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function dotted(prefix: string, segments: readonly string[]): string {
  const joined = segments.join('.');
  return [prefix, joined].filter((x) => x !== '').join('.') || '(top level)';
}

/**
 * Describes every validation error of `value` against `schema`, one line per setting:
 * `  <dotted.path>: <problem>` plus ` (from <VARIABLE>)` when an environment variable set it.
 *
 * - a missing key: `required, not set` (once, whatever else TypeBox says about it);
 * - an unknown key: `unknown setting; did you mean '<key>'?` when a known key of the same
 *   map is close, and then the missing key it stands for is not reported again;
 * - a value outside a list of literals: `must be one of: a, b, c`;
 * - anything else: TypeBox's first message for that path.
 *
 * @param envOf the variable that set the JSON-pointer path, if any.
 * @param prefix dotted path of `schema` inside the settings (`documents`).
 */
export function describeErrors(schema: TSchema, value: unknown, envOf: (pointer: string) => string | undefined, prefix = ''): string[] {
  const byPath = new Map<string, { error: ValueError; message: string }>();
  const unknown: Array<{ segments: string[]; error: ValueError }> = [];
  for (const error of Value.Errors(schema, value)) {
    const segments = error.path.split('/').slice(1);
    const node = schemaAt(schema, segments);
    const parent = schemaAt(schema, segments.slice(0, -1));
    const name = segments[segments.length - 1];
    if (name !== undefined && parent?.properties !== undefined && !(name in parent.properties) && !/^\d+$/.test(name)) {
      if (!unknown.some((u) => u.error.path === error.path)) unknown.push({ segments, error });
      continue;
    }
    if (byPath.has(error.path)) continue;
    const missing = name !== undefined && parent?.required?.includes(name) === true && ValuePointer.Get(value, error.path) === undefined;
    let message = error.message;
    if (missing) message = 'required, not set';
    else if (node?.anyOf !== undefined && node.anyOf.length > 0 && node.anyOf.every((b) => b.const !== undefined)) message = `must be one of: ${node.anyOf.map((b) => String(b.const)).join(', ')}`;
    byPath.set(error.path, { error, message });
  }
  const lines: string[] = [];
  const suggested = new Set<string>();
  const unknownLines: string[] = [];
  for (const { segments, error } of unknown) {
    const parentPath = segments.slice(0, -1);
    const known = Object.keys(schemaAt(schema, parentPath)?.properties ?? {});
    const guess = closestKey(segments[segments.length - 1]!, known);
    if (guess !== undefined) suggested.add(['', ...parentPath, guess].join('/'));
    const env = envOf(error.path);
    unknownLines.push(`  ${dotted(prefix, segments)}: unknown setting${guess === undefined ? '' : `; did you mean '${guess}'?`}${env ? ` (from ${env})` : ''}`);
  }
  for (const [pointer, { message }] of byPath) {
    if (suggested.has(pointer) && message === 'required, not set') continue;
    const env = envOf(pointer);
    lines.push(`  ${dotted(prefix, pointer.split('/').slice(1))}: ${message}${env ? ` (from ${env})` : ''}`);
  }
  return [...new Set([...unknownLines, ...lines])];
}
