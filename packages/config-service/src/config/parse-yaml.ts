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
import { limitError, type DocumentLimits } from './limits.js';
import { nestPaths, parsePropertyName, type NameToken } from './paths.js';
import type { Origin, PropertyValue, Scalar, TreeValue } from './types.js';
import { floatLiteral, intLiteral, scalarText } from './values.js';
import { composeBounded } from './yaml-stream.js';
import { placeYamlError, YAML_ERROR_TEXT } from './yaml-errors.js';

/** One non-empty document of a YAML stream, as raw keys. */
export interface YamlDocumentKeys {
  readonly raws: RawEntry[];
}

const ERROR_TEXT = YAML_ERROR_TEXT;

/** Drops the YAML 1.1 timestamp type, so date-like values stay strings in every version. */
const withoutTimestamps = (tags: Tags): Tags => tags.filter((t) => typeof t === 'string' ? t !== 'timestamp' : t.tag !== 'tag:yaml.org,2002:timestamp');

type Pos = (offset: number) => { line: number; column: number };

/** Counters of one file, shared by the documents of a multi-document stream. */
class FileBudget {
  /** Keys (map keys and list items) as written. */
  written = 0;
  /** Keys visited while flattening, aliases and merge keys expanded. */
  expanded = 0;
  /** Aliases followed. */
  aliases = 0;

  constructor(
    readonly document: string,
    readonly limits: DocumentLimits,
    readonly pos: Pos,
  ) {}

  at(node: { range?: readonly number[] | null | undefined } | null | undefined): { document: string; line?: number; column?: number } {
    const offset = node?.range?.[0];
    return offset === undefined ? { document: this.document } : { document: this.document, ...this.pos(offset) };
  }
}

/**
 * Checks one composed document as written, in source order: a key given twice in one map
 * (a `Set` per map, so linear; the `yaml` library's own `uniqueKeys` check compares every
 * pair with every other), and the number of keys against `maxKeys`. Aliases are not
 * followed here.
 *
 * Two keys are the same when their scalar values are identical (`===`, the rule of the
 * `yaml` library's `uniqueKeys: true`; NaN never equals itself). Keys that are not
 * scalars (flow maps, aliases) are compared by identity, so never equal.
 *
 * @throws CFG_ERR_DOCUMENT_INVALID `duplicate key "<key>"` at the second key.
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED at the key or list item that goes over `maxKeys`.
 */
function checkWritten(node: unknown, budget: FileBudget): void {
  const count = (at: YamlNode | null | undefined, fallback: YamlNode): void => {
    if (++budget.written > budget.limits.maxKeys) {
      throw limitError(budget.at(at?.range ? at : fallback), 'maxKeys', budget.limits.maxKeys, 'the number of keys', '(map keys and list items)');
    }
  };
  if (isMap(node)) {
    const seen = new Set<unknown>();
    for (const pair of node.items) {
      const key = pair.key as YamlNode | null;
      count(key ?? (pair.value as YamlNode | null), node);
      if (isYamlScalar(key)) {
        const v = key.value;
        if (typeof v !== 'number' || !Number.isNaN(v)) {
          if (seen.has(v)) throw documentError({ document: budget.document, ...budget.pos(key.range?.[0] ?? 0) }, `duplicate key ${quoteKey(String(key.source ?? v))}`);
          seen.add(v);
        }
      }
      checkWritten(key, budget);
      checkWritten(pair.value, budget);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      count(item as YamlNode | null, node);
      checkWritten(item, budget);
    }
  }
}

/**
 * Parses a YAML stream into its non-empty documents (Spring skips empty ones, and numbers
 * the rest). YAML 1.2 core schema unless a document starts with `%YAML 1.1`; duplicate
 * keys are errors (checked linearly, {@link checkWritten}); integers are read as bigint
 * (`intAsBigInt`); merge keys `<<` work. With `json`, the JSON schema is used and only
 * one document is allowed.
 *
 * Limits (per file, see {@link DocumentLimits}): nesting is checked on the syntax tree as
 * it is built (`composeBounded`), keys as written on each composed document, and keys,
 * alias expansions and property-path depth again while flattening.
 *
 * @param text - the decoded document text (BOM already removed).
 * @param document - the document path, for origins and messages.
 * @param commit - the commit, for origins.
 * @param limits - the limits in force.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) naming document, line and column (and the key
 *   for duplicates); never a value.
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) naming document, line and column, the
 *   setting and its value.
 */
export function readYaml(text: string, document: string, commit: string | undefined, json: boolean, limits: DocumentLimits): YamlDocumentKeys[] {
  const lineCounter = new LineCounter();
  const options: ParseOptions & DocumentOptions & SchemaOptions = {
    version: '1.2',
    // Checked by checkWritten, in linear time.
    uniqueKeys: false,
    intAsBigInt: true,
    merge: !json,
    ...(json ? { schema: 'json' as const } : { customTags: withoutTimestamps }),
  };
  const pos: Pos = (offset) => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const budget = new FileBudget(document, limits, pos);
  const out: YamlDocumentKeys[] = [];
  // A broken document may hold one parse error per token; each would capture a stack
  // trace that no one reads. Restored before returning (this runs synchronously).
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const { documents, streamErrors } = composeBounded(text, {
      document,
      limits,
      yaml: options,
      lineCounter,
      onDocument: ({ doc, index, cutAt }) => {
        if (json && index > 0) throw documentError({ document, ...pos(doc.range[0]) }, ERROR_TEXT.MULTIPLE_DOCS as string);
        const errors = cutAt === undefined ? doc.errors : doc.errors.filter((e) => e.pos[0] < cutAt);
        if (errors.length > 0) {
          const placed = placeYamlError(errors, doc, text, json ? 'JSON' : 'YAML');
          throw documentError({ document, ...pos(placed.offset) }, placed.text);
        }
        checkWritten(doc.contents, budget);
        // Reading stopped early; checkWritten found no key over the limit in this part.
        if (cutAt !== undefined) return;
        const keys = readDocument(doc, budget, commit);
        if (keys !== undefined) out.push(keys);
      },
    });
    // An empty stream (no document at all) may still carry stream-level errors.
    const err = streamErrors[0];
    if (documents === 0 && err !== undefined) throw documentError({ document, ...pos(err.pos[0]) }, `invalid YAML: ${ERROR_TEXT[err.code] ?? err.code}`);
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  return out;
}

/** Flattens one checked document; `undefined` for an empty or `~` document (Spring skips it). */
function readDocument(doc: Document.Parsed, budget: FileBudget, commit: string | undefined): YamlDocumentKeys | undefined {
  const walker = new Walker(doc, budget, commit);
  const root = walker.root();
  if (root === null) return undefined;
  if (!isMap(root)) {
    throw documentError({ document: budget.document, ...budget.pos((root as YamlNode).range?.[0] ?? 0) }, 'the document root must be a map of keys');
  }
  const raws: RawEntry[] = [];
  walker.collectMap(root, [], [], raws);
  return { raws };
}

/** A pair of a map after merge keys are applied, with the `<<` key that brought it. */
interface MergedPair {
  readonly pair: Pair;
  readonly via?: YamlNode;
}

/**
 * Flattens one document into raw keys, following aliases and merge keys, within the
 * file's budget: every alias followed counts against `maxAliases`, every key and list
 * item reached against `maxKeys` (after expansion), every property path against
 * `maxDepth`. Over a limit inside an alias expansion, the position named is the
 * outermost alias (or `<<` key) being expanded.
 */
class Walker {
  /** Aliases (and `<<` keys) being expanded, outermost first. */
  private readonly expanding: YamlNode[] = [];
  private readonly keyTexts = new WeakMap<Pair, string>();

  constructor(
    private readonly doc: Document.Parsed,
    private readonly budget: FileBudget,
    private readonly commit: string | undefined,
  ) {}

  /** The document's root with a root alias followed; `null` for an empty or `~` document. */
  root(): unknown {
    const root = this.resolve(this.doc.contents);
    if (root === null || root === undefined) return null;
    if (isYamlScalar(root) && (root.value === null || root.value === undefined)) return null;
    return root;
  }

  private origin(node: YamlNode | null | undefined): Origin {
    const base: Origin = this.budget.at(node);
    return this.commit === undefined ? base : { ...base, commit: this.commit };
  }

  private fail(node: YamlNode | null | undefined, what: string): Error {
    const o = this.budget.at(node);
    return documentError({ document: o.document, line: o.line, column: o.column }, what);
  }

  /** Where a limit crossed at `node` is reported: the outermost expansion, else the node. */
  private limitAt(node: YamlNode | null | undefined): ReturnType<FileBudget['at']> {
    return this.budget.at(this.expanding[0] ?? node);
  }

  /** Counts one key or list item reached (after expansion) against `maxKeys`. */
  private countKey(node: YamlNode | null | undefined, n = 1): void {
    const { limits } = this.budget;
    this.budget.expanded += n;
    if (this.budget.expanded > limits.maxKeys) {
      throw limitError(this.limitAt(node), 'maxKeys', limits.maxKeys, 'the number of keys after alias expansion', '(map keys and list items)');
    }
  }

  private resolve(node: unknown): unknown {
    if (!isAlias(node)) return node;
    const { limits } = this.budget;
    if (++this.budget.aliases > limits.maxAliases) {
      throw limitError(this.limitAt(node), 'maxAliases', limits.maxAliases, 'the number of alias expansions', '(alias bomb?)');
    }
    return node.resolve(this.doc);
  }

  /** Runs `fn` with `node` on the expansion stack when it is an alias (or, with `merge`, a `<<` key). */
  private within<T>(node: unknown, fn: () => T, merge = false): T {
    if (!(merge || isAlias(node))) return fn();
    this.expanding.push(node as YamlNode);
    try {
      return fn();
    } finally {
      this.expanding.pop();
    }
  }

  /**
   * The pairs of a map with merge keys (`<<`) applied: own keys win, then merged maps in
   * order. Pairs brought by a merge count as keys reached (they are copies).
   */
  private pairs(map: YAMLMap, depth = 0): MergedPair[] {
    if (depth > 64) throw this.fail(map, 'merge keys nested too deeply');
    const own: MergedPair[] = [];
    const merged: MergedPair[] = [];
    for (const pair of map.items) {
      if (isYamlScalar(pair.key) && typeof pair.key.value === 'symbol') {
        const mergeKey = pair.key as YamlNode;
        const v = this.resolve(pair.value);
        const sources = isSeq(v) ? v.items.map((i) => this.resolve(i)) : [v];
        for (const s of sources) {
          if (!isMap(s)) throw this.fail(mergeKey, 'merge key `<<` needs a map or a list of maps');
          const inner = this.within(mergeKey, () => this.pairs(s, depth + 1), true);
          this.within(mergeKey, () => this.countKey(mergeKey, inner.length), true);
          for (const p of inner) merged.push({ pair: p.pair, via: p.via ?? mergeKey });
        }
      } else {
        own.push({ pair });
      }
    }
    if (merged.length === 0) return own;
    const seen = new Set(own.map((p) => this.keyText(p.pair)));
    const out = [...own];
    for (const p of merged) {
      const k = this.keyText(p.pair);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(p);
      }
    }
    return out;
  }

  /** The key of a pair as text: strings as they are, other scalars in their string form. */
  private keyText(pair: Pair): string {
    const known = this.keyTexts.get(pair);
    if (known !== undefined) return known;
    const key = this.resolve(pair.key);
    let text: string;
    if (key === null || key === undefined) text = 'null';
    else if (!isYamlScalar(key)) throw this.fail(pair.key as YamlNode, 'a key must be a scalar (complex keys are not supported)');
    else {
      const s = this.scalar(key);
      text = s === null ? 'null' : scalarText(s);
    }
    this.keyTexts.set(pair, text);
    return text;
  }

  private tokensOf(pair: Pair, text: string): NameToken[] {
    const tokens = parsePropertyName(text);
    if (tokens.length === 0) throw this.fail(pair.key as YamlNode, `key ${quoteKey(text)} names no property`);
    return tokens;
  }

  /** Collects the leaves of a map as raw keys under `prefix` (maps nest; lists are one value). */
  collectMap(map: YAMLMap, prefix: readonly NameToken[], spelling: readonly string[], out: RawEntry[]): void {
    for (const { pair, via } of this.pairs(map)) {
      this.within(via, () => {
        if (via === undefined) this.countKey(pair.key as YamlNode);
        const keyText = this.keyText(pair);
        const tokens = [...prefix, ...this.tokensOf(pair, keyText)];
        if (typeof tokens[0] !== 'string') throw this.fail(pair.key as YamlNode, `key ${quoteKey(keyText)} starts with a list index`);
        const { limits } = this.budget;
        if (tokens.length > limits.maxDepth) {
          throw limitError(this.limitAt(pair.key as YamlNode), 'maxDepth', limits.maxDepth, 'the depth of this property path', '(map keys, dotted segments and list indices)');
        }
        const spelled = [...spelling, keyText];
        const value = this.resolve(pair.value);
        this.within(pair.value, () => {
          if (isMap(value)) {
            this.collectMap(value, tokens, spelled, out);
            return;
          }
          out.push({
            tokens,
            value: this.leaf(value),
            origin: this.origin(pair.key as YamlNode),
            spelling: spelled.map(quoteKey).join(' > '),
          });
        });
      }, via !== undefined);
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
    this.countKey(node as YamlNode);
    const n = this.resolve(node);
    return this.within(node, () => {
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
    });
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
