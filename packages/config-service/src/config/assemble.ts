/**
 * Turns the raw keys of one document into property entries (SPEC §2.2): indexed names
 * (`list[0]`, `servers[0].host`) become one list value, and two spellings of one path with
 * different values are an error. Internal to `src/config/`.
 */
import { documentError, quoteKey } from './document-error.js';
import { formatPropertyName, pathKey, type NameToken } from './paths.js';
import type { Origin, PropertyEntry, PropertyValue, TreeValue } from './types.js';
import { valuesEqual } from './values.js';

/** One key/value as read from a document, before lists are assembled. */
export interface RawEntry {
  /** Elements of the full property name (map keys and list indices). */
  readonly tokens: readonly NameToken[];
  readonly value: PropertyValue | null;
  readonly origin: Origin;
  /** How the key was written, for messages (`"a.b"` or `"a" > "b"`). */
  readonly spelling: string;
}

type Slot =
  | { readonly kind: 'list'; readonly items: Map<number, Slot> }
  | { readonly kind: 'map'; readonly entries: Map<string, Slot> }
  | { readonly kind: 'leaf'; readonly raw: RawEntry };

function conflict(a: RawEntry, b: RawEntry): Error {
  const at = (r: RawEntry): string => `${r.spelling} (line ${r.origin.line ?? '?'}, column ${r.origin.column ?? '?'})`;
  return documentError(
    { document: b.origin.document, line: b.origin.line, column: b.origin.column },
    `two spellings of one property path with different values: ${at(a)} and ${at(b)}`,
  );
}

function insert(root: Slot, tokens: readonly NameToken[], raw: RawEntry): void {
  let slot = root;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as NameToken;
    const last = i === tokens.length - 1;
    const wantList = typeof t !== 'string';
    if (slot.kind === 'leaf') throw conflict(slot.raw, raw);
    if ((slot.kind === 'list') !== wantList) {
      throw documentError(
        { document: raw.origin.document, line: raw.origin.line, column: raw.origin.column },
        `key ${raw.spelling} mixes list indices and map keys at one path`,
      );
    }
    const container: Map<string | number, Slot> =
      slot.kind === 'list' ? (slot.items as Map<string | number, Slot>) : (slot.entries as Map<string | number, Slot>);
    const k = typeof t === 'string' ? t : t.index;
    const existing = container.get(k);
    if (last) {
      if (existing === undefined) container.set(k, { kind: 'leaf', raw });
      else if (existing.kind !== 'leaf') throw conflict(firstLeaf(existing) ?? raw, raw);
      else if (!valuesEqual(existing.raw.value, raw.value)) throw conflict(existing.raw, raw);
      return;
    }
    if (existing === undefined) {
      const next = tokens[i + 1] as NameToken;
      const created: Slot = typeof next === 'string' ? { kind: 'map', entries: new Map() } : { kind: 'list', items: new Map() };
      container.set(k, created);
      slot = created;
    } else {
      slot = existing;
    }
  }
}

function firstLeaf(slot: Slot): RawEntry | undefined {
  if (slot.kind === 'leaf') return slot.raw;
  const values = slot.kind === 'list' ? slot.items.values() : slot.entries.values();
  for (const v of values) {
    const r = firstLeaf(v);
    if (r !== undefined) return r;
  }
  return undefined;
}

function toTreeValue(slot: Slot, name: NameToken[], origin: Origin): TreeValue {
  if (slot.kind === 'leaf') return slot.raw.value ?? '';
  if (slot.kind === 'map') {
    const out: Array<[string, TreeValue]> = [];
    for (const [k, v] of slot.entries) out.push([k, toTreeValue(v, [...name, k], origin)]);
    return Object.fromEntries(out);
  }
  const size = slot.items.size;
  const items: TreeValue[] = [];
  for (let i = 0; i < size; i++) {
    const item = slot.items.get(i);
    if (item === undefined) {
      const raw = firstLeaf(slot) as RawEntry;
      throw documentError(
        { document: origin.document, line: raw.origin.line, column: raw.origin.column },
        `list ${quoteKey(formatPropertyName(name))} has no element [${i}] (indices must be 0, 1, 2, ...)`,
      );
    }
    items.push(toTreeValue(item, [...name, { index: i }], origin));
  }
  return items;
}

/**
 * Builds the entries of one document from its raw keys.
 *
 * - A name without index is one path; its value is kept as read (`null` = unset).
 * - Names with indices are grouped by the path before their first index and assembled
 *   into one list value (Spring Boot's binder reads `list[0]`, `list[1]` the same way);
 *   an element whose value is `null` becomes `""` (Spring's `YamlProcessor` flattening);
 *   a gap in the indices is an error, as Spring Boot's binder refuses unbound elements.
 * - One path set twice with equal values is kept once; with different values it is an
 *   error naming both spellings.
 *
 * @param raws - the raw keys in document order.
 * @returns entries in order of first appearance, each path once.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) for conflicting spellings, mixed list/map
 *   syntax at one path, or index gaps; the message names keys, lines and columns only.
 */
export function assembleEntries(raws: readonly RawEntry[]): PropertyEntry[] {
  type Pending = { path: string[]; value: PropertyValue | null; raw: RawEntry; slot?: Slot };
  const byKey = new Map<string, Pending>();
  const order: Pending[] = [];
  const put = (p: Pending): void => {
    const k = pathKey(p.path);
    const existing = byKey.get(k);
    if (existing === undefined) {
      byKey.set(k, p);
      order.push(p);
      return;
    }
    if (existing.slot !== undefined && p.slot !== undefined) return; // same list group
    if (existing.slot !== undefined || p.slot !== undefined) {
      const [a, b] = existing.raw.origin.line !== undefined && p.raw.origin.line !== undefined && existing.raw.origin.line > p.raw.origin.line ? [p, existing] : [existing, p];
      throw conflict(a.raw, b.raw);
    }
    if (!valuesEqual(existing.value, p.value)) throw conflict(existing.raw, p.raw);
  };

  for (const raw of raws) {
    const first = raw.tokens.findIndex((t) => typeof t !== 'string');
    if (first < 0) {
      put({ path: raw.tokens as string[], value: raw.value, raw });
      continue;
    }
    const prefix = raw.tokens.slice(0, first) as string[];
    const k = pathKey(prefix);
    let group = byKey.get(k);
    if (group === undefined || group.slot === undefined) {
      const slot: Slot = { kind: 'list', items: new Map() };
      const pending: Pending = { path: prefix, value: null, raw, slot };
      put(pending);
      group = pending;
    }
    insert(group.slot as Slot, raw.tokens.slice(first), raw);
  }

  return order.map((p) => ({
    path: p.path,
    value: p.slot !== undefined ? (toTreeValue(p.slot, [...p.path], p.raw.origin) as PropertyValue) : p.value,
    origin: p.raw.origin,
  }));
}
