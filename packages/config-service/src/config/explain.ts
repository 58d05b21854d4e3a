/**
 * `explain=true` (SPEC §5.1): the merged configuration together with, for every property,
 * where its value came from and the values it overrode in lower layers, so an engineer
 * can see why a key has the value it has. Secrets are always masked here, whoever asks:
 * an explanation is for reading precedence, not for reading secrets.
 */
import { REDACTED } from '../secrets/apply.js';
import { isCipherText } from '../secrets/envelope.js';
import { formatPropertyName, pathKey } from './paths.js';
import { renderJsonValue } from './render.js';
import { toTree } from './tree.js';
import type { MergedConfig, MergedProperty, Origin, PropertySource, PropertyValue, TreeValue } from './types.js';
import { isNumberLiteral } from './values.js';

const originKey = (o: Origin): string => `${o.document}\0${o.line ?? ''}\0${o.column ?? ''}`;

/** Masks every `{cipher}` string inside a value. */
function mask(value: PropertyValue | TreeValue): TreeValue {
  if (isCipherText(value)) return REDACTED;
  if (Array.isArray(value)) return value.map((v: TreeValue) => mask(v));
  if (value !== null && typeof value === 'object' && !isNumberLiteral(value)) {
    return Object.fromEntries(Object.entries(value as Record<string, TreeValue>).map(([k, v]) => [k, mask(v)]));
  }
  return value as TreeValue;
}

function originJson(o: Origin, commit: string): TreeValue {
  return {
    document: o.document,
    ...(o.line !== undefined && { line: { kind: 'number', text: String(o.line) } }),
    ...(o.column !== undefined && { column: { kind: 'number', text: String(o.column) } }),
    commit,
  };
}

/**
 * Builds the `explain=true` JSON body:
 * `{ "config": <the tree of format=json>, "properties": { "<flattened name>": { "value",
 * "origin": { document, line, column, commit }, "overridden": [{ "value", "origin" }] } } }`,
 * overridden values highest first (`{ "unset": true, "origin" }` for a lower `null`).
 * `{cipher}` values are `"<redacted>"` everywhere.
 *
 * @param merged the merge result to explain (placeholders resolved when the request asks)
 * @param sources the property sources it was merged from (lowest first), for the values
 *   of overridden origins
 * @param commit the commit everything was read at
 * @returns UTF-8 JSON text with a trailing newline; numbers keep their exact digits
 */
export function explainConfig(merged: MergedConfig, sources: readonly PropertySource[], commit: string): string {
  const valueAt = new Map<string, PropertyValue | null>();
  for (const source of sources) for (const e of source.entries) valueAt.set(`${pathKey(e.path)}\0${originKey(e.origin)}`, e.value);
  const properties: Record<string, TreeValue> = {};
  const masked = new Map<string, MergedProperty>();
  for (const [key, p] of merged) {
    masked.set(key, { ...p, value: mask(p.value) as PropertyValue });
    properties[formatPropertyName(p.path)] = {
      value: mask(p.value),
      origin: originJson(p.origin, commit),
      overridden: p.overridden.map((o): TreeValue => {
        const lower = valueAt.get(`${key}\0${originKey(o)}`);
        const origin = originJson(o, commit);
        if (lower === null) return { unset: true, origin };
        return lower === undefined ? { origin } : { value: mask(lower), origin };
      }),
    };
  }
  return `${renderJsonValue({ config: toTree(masked), properties })}\n`;
}
