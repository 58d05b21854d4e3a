/**
 * Reads YAML (and JSON, a YAML 1.2 subset) documents into raw property keys with the
 * `yaml` library (SPEC §2.3). Internal to `src/config/`.
 */
import {
  isAlias,
  isMap,
  isScalar as isYamlScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document,
  type Node as YamlNode,
  type Pair,
  type ParseOptions,
  type DocumentOptions,
  type SchemaOptions,
  type Scalar as YamlScalar,
  type Tags,
  type YAMLMap,
} from 'yaml';
import type { RawEntry } from './assemble.js';
import { documentError, quoteKey } from './document-error.js';
import { nestPaths, parsePropertyName, type NameToken } from './paths.js';
import type { Origin, PropertyValue, Scalar, TreeValue } from './types.js';
import { floatLiteral, intLiteral, scalarText } from './values.js';

/** Most alias expansions allowed per document (`yaml`'s `maxAliasCount`); defeats alias bombs. */
export const MAX_ALIAS_COUNT = 100;

/** Most nodes visited per document while flattening (a second guard against expansion). */
const MAX_NODES = 1_000_000;

/** One non-empty document of a YAML stream, as raw keys. */
export interface YamlDocumentKeys {
  readonly raws: RawEntry[];
}

const ERROR_TEXT: Readonly<Record<string, string>> = {
  DUPLICATE_KEY: 'duplicate key',
  BAD_INDENT: 'bad indentation',
  MULTILINE_IMPLICIT_KEY: 'implicit keys must be on a single line',
  MISSING_CHAR: 'missing character',
  UNEXPECTED_TOKEN: 'unexpected token',
  BLOCK_AS_IMPLICIT_KEY: 'nested block as implicit key',
  TAB_AS_INDENT: 'tab characters must not be used for indentation',
  ALIAS_PROPS: 'alias with anchor or tag',
  BAD_ALIAS: 'bad alias',
  BAD_DIRECTIVE: 'bad directive',
  BAD_DQ_ESCAPE: 'bad escape in double-quoted scalar',
  BAD_SCALAR_START: 'bad scalar start',
  BLOCK_IN_FLOW: 'block collection inside flow collection',
  DUPLICATE_ANCHOR: 'duplicate anchor',
  IMPOSSIBLE: 'unparsable input',
  KEY_OVER_1024_CHARS: 'implicit key longer than 1024 characters',
  MISSING_ANCHOR: 'alias to an undefined anchor',
  MULTIPLE_ANCHORS: 'several anchors on one node',
  MULTIPLE_DOCS: 'several documents in one JSON file',
  MULTIPLE_TAGS: 'several tags on one node',
  NON_STRING_KEY: 'non-string key',
  TAG_RESOLVE_FAILED: 'value does not match its tag',
  BAD_COLLECTION_TYPE: 'bad collection type',
};

/** Drops the YAML 1.1 timestamp type, so date-like values stay strings in every version. */
const withoutTimestamps = (tags: Tags): Tags => tags.filter((t) => typeof t === 'string' ? t !== 'timestamp' : t.tag !== 'tag:yaml.org,2002:timestamp');

/**
 * Parses a YAML stream into its non-empty documents (Spring skips empty ones, and numbers
 * the rest). YAML 1.2 core schema unless a document starts with `%YAML 1.1`; duplicate
 * keys are errors (`uniqueKeys`); integers are read as bigint (`intAsBigInt`); merge
 * keys `<<` work; aliases are bounded by {@link MAX_ALIAS_COUNT}. With `json`, the JSON
 * schema is used and only one document is allowed.
 *
 * @param text - the decoded document text (BOM already removed).
 * @param document - the document path, for origins and messages.
 * @param commit - the commit, for origins.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) naming document, line and column (and the key
 *   for duplicates); never a value.
 */
export function readYaml(text: string, document: string, commit: string | undefined, json: boolean): YamlDocumentKeys[] {
  const lineCounter = new LineCounter();
  const options: ParseOptions & DocumentOptions & SchemaOptions = {
    version: '1.2',
    uniqueKeys: true,
    intAsBigInt: true,
    merge: !json,
    prettyErrors: false,
    lineCounter,
    ...(json ? { schema: 'json' as const } : { customTags: withoutTimestamps }),
  };
  const docs = parseAllDocuments(text, options);
  const pos = (offset: number): { line: number; column: number } => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if ('empty' in docs) {
    // An EmptyStream (no document at all) may still carry stream-level errors.
    const err = docs.errors[0];
    if (err !== undefined) throw documentError({ document, ...pos(err.pos[0]) }, `invalid YAML: ${ERROR_TEXT[err.code] ?? err.code}`);
    return [];
  }
  const list: Document.Parsed[] = docs;
  if (json && list.length > 1) {
    const second = list[1] as Document.Parsed;
    throw documentError({ document, ...pos(second.range[0]) }, ERROR_TEXT.MULTIPLE_DOCS as string);
  }

  const out: YamlDocumentKeys[] = [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err !== undefined) {
      const at = { document, ...pos(err.pos[0]) };
      if (err.code === 'DUPLICATE_KEY') {
        const key = findKeyAt(doc, err.pos[0]);
        throw documentError(at, key === undefined ? 'duplicate key' : `duplicate key ${quoteKey(key)}`);
      }
      throw documentError(at, `invalid ${json ? 'JSON' : 'YAML'}: ${ERROR_TEXT[err.code] ?? err.code}`);
    }
    let plain: unknown;
    try {
      plain = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      const excessive = e instanceof ReferenceError;
      throw documentError(
        { document, ...pos(doc.range[0]) },
        excessive ? `more than ${MAX_ALIAS_COUNT} alias expansions (alias bomb?)` : 'document cannot be read as data',
      );
    }
    if (plain === null || plain === undefined) continue; // empty or `~` document: Spring skips it
    const root = doc.contents;
    if (!isMap(root)) {
      throw documentError({ document, ...pos(root?.range[0] ?? 0) }, 'the document root must be a map of keys');
    }
    const walker = new Walker(doc, document, commit, pos);
    const raws: RawEntry[] = [];
    walker.collectMap(root, [], [], raws);
    out.push({ raws });
  }
  return out;
}

function findKeyAt(doc: Document.Parsed, offset: number): string | undefined {
  let found: string | undefined;
  const visit = (node: unknown): void => {
    if (found !== undefined) return;
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key;
        if (isYamlScalar(k) && k.range?.[0] === offset) {
          found = String(k.source ?? k.value);
          return;
        }
        visit(k);
        visit(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item);
    }
  };
  visit(doc.contents);
  return found;
}

class Walker {
  private nodes = 0;

  constructor(
    private readonly doc: Document.Parsed,
    private readonly document: string,
    private readonly commit: string | undefined,
    private readonly pos: (offset: number) => { line: number; column: number },
  ) {}

  private origin(node: YamlNode | null | undefined): Origin {
    const offset = node?.range?.[0];
    const base: Origin = offset === undefined ? { document: this.document } : { document: this.document, ...this.pos(offset) };
    return this.commit === undefined ? base : { ...base, commit: this.commit };
  }

  private fail(node: YamlNode | null | undefined, what: string): Error {
    const o = this.origin(node);
    return documentError({ document: this.document, line: o.line, column: o.column }, what);
  }

  private resolve(node: unknown): unknown {
    if (++this.nodes > MAX_NODES) throw this.fail(null, `more than ${MAX_NODES} nodes after alias expansion`);
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** The pairs of a map with merge keys (`<<`) applied: own keys win, then merged maps in order. */
  private pairs(map: YAMLMap, depth = 0): Pair[] {
    if (depth > 64) throw this.fail(map, 'merge keys nested too deeply');
    const own: Pair[] = [];
    const merged: Pair[] = [];
    for (const pair of map.items) {
      if (isYamlScalar(pair.key) && typeof pair.key.value === 'symbol') {
        const v = this.resolve(pair.value);
        const sources = isSeq(v) ? v.items.map((i) => this.resolve(i)) : [v];
        for (const s of sources) {
          if (!isMap(s)) throw this.fail(pair.key as YamlNode, 'merge key `<<` needs a map or a list of maps');
          merged.push(...this.pairs(s, depth + 1));
        }
      } else {
        own.push(pair);
      }
    }
    if (merged.length === 0) return own;
    const seen = new Set(own.map((p) => this.keyText(p)));
    const out = [...own];
    for (const p of merged) {
      const k = this.keyText(p);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(p);
      }
    }
    return out;
  }

  /** The key of a pair as text: strings as they are, other scalars in their string form. */
  private keyText(pair: Pair): string {
    const key = this.resolve(pair.key);
    if (key === null || key === undefined) return 'null';
    if (!isYamlScalar(key)) throw this.fail(pair.key as YamlNode, 'a key must be a scalar (complex keys are not supported)');
    const s = this.scalar(key);
    return s === null ? 'null' : scalarText(s);
  }

  private tokensOf(pair: Pair): NameToken[] {
    const text = this.keyText(pair);
    const tokens = parsePropertyName(text);
    if (tokens.length === 0) throw this.fail(pair.key as YamlNode, `key ${quoteKey(text)} names no property`);
    return tokens;
  }

  /** Collects the leaves of a map as raw keys under `prefix` (maps nest; lists are one value). */
  collectMap(map: YAMLMap, prefix: readonly NameToken[], spelling: readonly string[], out: RawEntry[]): void {
    for (const pair of this.pairs(map)) {
      const keyText = this.keyText(pair);
      const tokens = [...prefix, ...this.tokensOf(pair)];
      if (typeof tokens[0] !== 'string') throw this.fail(pair.key as YamlNode, `key ${quoteKey(keyText)} starts with a list index`);
      const spelled = [...spelling, keyText];
      const value = this.resolve(pair.value);
      if (isMap(value)) {
        this.collectMap(value, tokens, spelled, out);
        continue;
      }
      out.push({
        tokens,
        value: this.leaf(value),
        origin: this.origin(pair.key as YamlNode),
        spelling: spelled.map(quoteKey).join(' > '),
      });
    }
  }

  private leaf(node: unknown): PropertyValue | null {
    if (node === null || node === undefined) return null;
    if (isSeq(node)) return node.items.map((i) => this.item(i));
    if (isYamlScalar(node)) return this.scalar(node);
    throw this.fail(node as YamlNode, 'unsupported node type');
  }

  /** A list item: scalars, lists and maps; `null` becomes `""` (Spring's YamlProcessor). */
  private item(node: unknown): TreeValue {
    const n = this.resolve(node);
    if (isMap(n)) {
      const raws: RawEntry[] = [];
      this.collectMap(n, [], [], raws);
      const pairs: Array<readonly [string[], TreeValue]> = [];
      const seen = new Map<string, RawEntry>();
      for (const r of raws) {
        const path = r.tokens.map((t) => (typeof t === 'string' ? t : String(t.index)));
        const k = JSON.stringify(path);
        if (seen.has(k)) {
          const a = seen.get(k) as RawEntry;
          throw this.fail(null, `two spellings of one property path in a list item: ${a.spelling} and ${r.spelling}`);
        }
        seen.set(k, r);
        pairs.push([path, r.value ?? '']);
      }
      return nestPaths(pairs);
    }
    const v = this.leaf(n);
    return v ?? '';
  }

  private scalar(node: YamlScalar): Scalar | null {
    const v: unknown = node.value;
    if (v === null || v === undefined) return null;
    if (typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'bigint') return intLiteral(v);
    if (typeof v === 'number') {
      if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER && node.source !== undefined && /^[-+]?[0-9_:]+$/.test(node.source)) {
        return intLiteral(BigInt(v));
      }
      return floatLiteral(v, node.source) ?? node.source ?? String(v);
    }
    throw this.fail(node, 'unsupported value type (binary and other typed values cannot be served)');
  }
}
