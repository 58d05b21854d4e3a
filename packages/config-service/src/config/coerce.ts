/**
 * `.properties` values typed by the application's schema (issue 11). `java.util.Properties`
 * has only strings, so without this the served type of a key would change with the layer
 * that set it (`max-items: 100` from `application.yml`, `"5"` from
 * `application-dev.properties`), and a schema with `type: integer` would refuse a valid
 * override. With a schema, a `.properties` value is converted to the type the schema
 * declares at its place, as Spring's binder converts it to the field's type:
 *
 * - `integer`: optional sign and decimal digits (`5`, `-3`, `007` → 7; exact beyond 2^53);
 * - `number`: a decimal number (`2.5`, `-1e3`, `.5`);
 * - `boolean`: `true` or `false` (exactly, as JSON writes them).
 *
 * Ajv decides which type applies (`coerceTypes`, run on a copy of the instance, so
 * `anyOf`, `oneOf`, `if`/`then` and `$ref` choose as they do when validating); a value is
 * taken over only when it came from a `.properties` document and is written as above
 * (Ajv would also turn `0x10` or ` 5` into numbers). Anything else stays a string, and
 * the schema check then refuses it with the usual 422 naming file and key. Values from
 * YAML and JSON are never converted: they have their types already. Without a schema
 * nothing changes: `.properties` values are strings.
 */
import { nestPaths } from './paths.js';
import { compile, schemaInstance, type AppSchema } from './schema-compile.js';
import type { MergedConfig, MergedProperty, PropertyValue, TreeValue } from './types.js';
import { floatLiteral, intLiteral } from './values.js';

const INTEGER = /^[+-]?[0-9]+$/;
const DECIMAL = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** A unique object per property, to find where `nestPaths` put each one in the tree. */
interface Marker {
  readonly marker: number;
}

/** Where each property's value sits in the nested tree (the keys from the root). */
function treeLocations(config: MergedConfig): Map<number, string[]> {
  const props = [...config.values()];
  const tree = nestPaths(props.map((p, i) => [p.path, { marker: i } as unknown as TreeValue]));
  const out = new Map<number, string[]>();
  const walk = (node: unknown, at: string[]): void => {
    if (typeof node !== 'object' || node === null) return;
    if (typeof (node as Marker).marker === 'number') {
      out.set((node as Marker).marker, at);
      return;
    }
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) walk(v, [...at, k]);
  };
  walk(tree, []);
  return out;
}

/** The value `text` becomes when the coerced copy holds `coerced` there; `undefined`: keep the string. */
function convert(text: string, coerced: unknown): TreeValue | undefined {
  if (typeof coerced === 'boolean') return text === 'true' || text === 'false' ? text === 'true' : undefined;
  if (typeof coerced !== 'number') return undefined;
  if (INTEGER.test(text)) return intLiteral(BigInt(text));
  if (DECIMAL.test(text)) return floatLiteral(Number(text), text.replace(/^\+/, '').replace(/^(-?)\./, '$10.')) ?? undefined;
  return undefined;
}

/** Walks a `.properties` value and the coerced copy side by side; returns the value with conversions (same object when none). */
function adopt(value: TreeValue, coerced: unknown): TreeValue {
  if (typeof value === 'string') return convert(value, coerced) ?? value;
  if (Array.isArray(value)) {
    if (!Array.isArray(coerced)) return value;
    let changed = false;
    const items = (value as readonly TreeValue[]).map((v, i) => {
      const next = adopt(v, coerced[i]);
      if (next !== v) changed = true;
      return next;
    });
    return changed ? items : value;
  }
  if (typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === undefined) {
    if (typeof coerced !== 'object' || coerced === null) return value;
    const map = value as { readonly [k: string]: TreeValue };
    let changed = false;
    const out = Object.fromEntries(
      Object.keys(map).map((k) => {
        const next = adopt(map[k] as TreeValue, (coerced as Record<string, unknown>)[k]);
        if (next !== map[k]) changed = true;
        return [k, next];
      }),
    );
    return changed ? out : value;
  }
  return value;
}

function holdsString(value: TreeValue): boolean {
  if (typeof value === 'string') return true;
  if (Array.isArray(value)) return (value as readonly TreeValue[]).some(holdsString);
  if (typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === undefined) return Object.values(value as Record<string, TreeValue>).some(holdsString);
  return false;
}

/**
 * Converts the `.properties` values of `config` to the types `schema` declares for them
 * (see the module comment). Never throws for a value that cannot be converted (it stays a
 * string for the schema check to report).
 *
 * @param config - the merged configuration (placeholders resolved when the request resolves them).
 * @param schema - the application's schema.
 * @returns `config` itself when nothing changed, else a copy with the converted values
 *   (origins and overridden origins kept).
 * @throws CFG_ERR_SCHEMA_INVALID (422) naming the schema file when it does not compile.
 */
export function coercePropertiesValues(config: MergedConfig, schema: AppSchema): MergedConfig {
  const candidates = [...config.values()].map((p, i) => [p, i] as const).filter(([p]) => p.origin.document.endsWith('.properties') && holdsString(p.value as TreeValue));
  if (candidates.length === 0) return config;
  const validate = compile(schema, true);
  const copy = schemaInstance(config);
  validate(copy); // converts `copy` in place; its verdict is the schema check's business
  const locations = treeLocations(config);
  const changed = new Map<MergedProperty, PropertyValue>();
  for (const [p, i] of candidates) {
    const at = locations.get(i);
    if (at === undefined) continue;
    let node: unknown = copy;
    for (const k of at) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[k] : undefined;
    const next = adopt(p.value as TreeValue, node);
    if (next !== p.value) changed.set(p, next as PropertyValue);
  }
  if (changed.size === 0) return config;
  const out = new Map<string, MergedProperty>();
  for (const [key, p] of config) {
    const value = changed.get(p);
    out.set(key, value === undefined ? p : { ...p, value });
  }
  return out;
}
