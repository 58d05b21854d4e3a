/**
 * The data model of configuration: documents read as property sources, merged by
 * property path (SPEC §2.2), then rendered (SPEC §8).
 */

/**
 * A number exactly as the document meant it. Integers are kept as their canonical
 * decimal digits (`0640` → `"640"`, `0o640` → `"416"`, `12345678901234567891` stays
 * exact); floats keep a JSON-compatible spelling. Renderers print `text` as a number
 * token, so no value is rounded through a double.
 */
export interface NumberLiteral {
  readonly kind: 'number';
  readonly text: string;
}

/** A leaf value: strings, booleans and exact numbers. */
export type Scalar = string | boolean | NumberLiteral;

/**
 * A value held at one property path. A list is one value (SPEC §2.2: a higher layer's
 * list replaces the whole lower list), so list items may themselves be maps or lists.
 */
export type PropertyValue = Scalar | readonly TreeValue[];

/** Values inside a list: scalars, nested lists, or maps (sorted keys when rendered). */
export type TreeValue = Scalar | readonly TreeValue[] | { readonly [key: string]: TreeValue };

/** Where a value came from. */
export interface Origin {
  /** Document path inside the repository, `/`-separated (`orders/application-dev.yml`). */
  readonly document: string;
  /** 1-based line and column of the key, when the format tracks it. */
  readonly line?: number;
  readonly column?: number;
  /** Commit the document was read at. */
  readonly commit?: string;
}

/**
 * One property path: the list of map-key segments from the root. A segment may contain
 * dots (it came from a bracketed key like `"[app.example.com/source]"`).
 */
export type PropertyPath = readonly string[];

/** One entry of a property source: a path, its value (`null` = unset, SPEC §2.2), its origin. */
export interface PropertyEntry {
  readonly path: PropertyPath;
  readonly value: PropertyValue | null;
  readonly origin: Origin;
}

/**
 * One property source: the entries of one document (or one activated YAML sub-document),
 * in document order, each path at most once.
 */
export interface PropertySource {
  /** Display name, e.g. `orders/application-dev.yml` or `application.yml (document #1)`. */
  readonly name: string;
  readonly entries: readonly PropertyEntry[];
}

/** A merged property: the winning value, its origin and the origins it overrode. */
export interface MergedProperty {
  readonly path: PropertyPath;
  readonly value: PropertyValue;
  readonly origin: Origin;
  readonly overridden: readonly Origin[];
}

/** The merge result: properties keyed by {@link pathKey}, iteration order sorted by key. */
export type MergedConfig = ReadonlyMap<string, MergedProperty>;

/** Output formats of SPEC §8. */
export const FORMATS = ['json', 'yaml', 'properties', 'env', 'dotenv'] as const;
export type Format = (typeof FORMATS)[number];

/** Media types served for each format. */
export const MEDIA_TYPES: Readonly<Record<Format, string>> = {
  json: 'application/json; charset=utf-8',
  yaml: 'application/yaml; charset=utf-8',
  properties: 'text/x-java-properties; charset=utf-8',
  env: 'text/x-shellscript; charset=utf-8',
  dotenv: 'text/plain; charset=utf-8',
};

/** One property source read from a document, with its profile activation if it has one. */
export interface ParsedSource {
  readonly source: PropertySource;
  /**
   * The Spring profile expression of `spring.config.activate.on-profile` (or the older
   * `spring.profiles`); a list of profiles is joined as `(a) | (b)`. Absent when the
   * document applies unconditionally.
   */
  readonly activation?: string;
}

/** A parsed document: one source per (non-empty) YAML document, in file order. */
export interface ParsedDocument {
  readonly sources: readonly ParsedSource[];
}
