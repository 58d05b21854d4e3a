/**
 * Compiling application schemas (Ajv, draft-07 / 2019-09 / 2020-12 by `$schema`) and the
 * JSON instance they check. Shared by `schema.ts` (the check) and `coerce.ts` (the
 * `.properties` types). Internal to `src/config/`.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { LRUCache } from 'lru-cache';
import { CFG_ERR_SCHEMA_INVALID, withData } from '../errors.js';
import { toTree } from './tree.js';
import type { MergedConfig, TreeValue } from './types.js';
import { isNumberLiteral } from './values.js';

/** A schema file as read from the repository. */
export interface AppSchema {
  /** Blob id of the file (the compile cache key). */
  readonly oid: string;
  /** Path of the file in the repository (`orders/schema.json`), for messages. */
  readonly path: string;
  /** The parsed JSON (see `parseSchemaFile`). */
  readonly json: unknown;
}

type Compiled = { readonly validate: ValidateFunction } | { readonly reason: string };

const compiled = new LRUCache<string, Compiled>({ max: 1000 });

function newAjv(json: unknown, coerceTypes = false): Ajv {
  const dialect = typeof json === 'object' && json !== null ? (json as { $schema?: unknown }).$schema : undefined;
  const options = { allErrors: true, strict: false, validateFormats: false, logger: false as const, coerceTypes };
  if (typeof dialect === 'string' && dialect.includes('2020-12')) return new Ajv2020(options);
  if (typeof dialect === 'string' && dialect.includes('2019-09')) return new Ajv2019(options);
  return new Ajv(options);
}

/**
 * Compiles (or takes from the cache) the validator of `schema`.
 * @param coerce - a validator with Ajv's `coerceTypes`, which converts the data it checks
 *   in place (`coerce.ts` runs it on a copy).
 * @throws CFG_ERR_SCHEMA_INVALID (422) naming the schema file when it does not compile.
 */
export function compile(schema: AppSchema, coerce = false): ValidateFunction {
  const cacheKey = coerce ? `${schema.oid}\0coerce` : schema.oid;
  let entry = compiled.get(cacheKey);
  if (entry === undefined) {
    try {
      // One Ajv instance per schema: two versions of one schema may share an `$id`.
      entry = { validate: newAjv(schema.json, coerce).compile(schema.json as object | boolean) };
    } catch (err) {
      entry = { reason: (err as Error).message.split('\n')[0] ?? 'unknown error' };
    }
    compiled.set(cacheKey, entry);
  }
  if ('reason' in entry) throw withData(new CFG_ERR_SCHEMA_INVALID(`${schema.path}: not a usable JSON Schema: ${entry.reason}`), { schema: schema.path });
  return entry.validate;
}

/** Converts the tree for validation: exact number literals become JSON numbers. */
function toJson(value: TreeValue): unknown {
  if (isNumberLiteral(value)) return Number(value.text);
  if (typeof value !== 'object') return value;
  if (Array.isArray(value)) return (value as readonly TreeValue[]).map(toJson);
  const map = value as { readonly [k: string]: TreeValue };
  return Object.fromEntries(Object.keys(map).map((k) => [k, toJson(map[k] as TreeValue)]));
}

/**
 * The JSON instance that the schema sees for a configuration: {@link toTree}, numbers as
 * JSON numbers.
 */
export function schemaInstance(config: MergedConfig): Record<string, unknown> {
  return toJson(toTree(config)) as Record<string, unknown>;
}

