/**
 * Drives the `yaml` library's public Lexer → Parser (CST) → Composer pipeline one lexical
 * token at a time, so that nesting and size are bounded BEFORE the composer recurses and
 * before memory grows with the input (issue 7). Internal to `src/config/`.
 *
 * Why by hand: `parseAllDocuments` builds the whole syntax tree first. Its Parser keeps
 * one stack entry per open collection and closes them through nested generators (a
 * dedent after 300,000 levels of `- - -` overflows the call stack), and its Composer
 * recurses once per level (`composeNode` → `resolveBlockMap` → `composeNode` ...). Here
 * the Parser's public `stack` is read after every token, so a document nested deeper than
 * `maxDepth` stops at the token that opens the level too many, whatever the syntax
 * (flow `[[[`/`{{{`, compact `- - -`, indentation).
 */
import { Composer, CST, Lexer, LineCounter, Parser, type Document, type DocumentOptions, type ParseOptions, type SchemaOptions } from 'yaml';
import { limitError, type DocumentLimits } from './limits.js';

/** Parser stack entries that are collections (one nesting level each). */
const COLLECTIONS: ReadonlySet<string> = new Set(['block-map', 'block-seq', 'flow-collection']);

/**
 * Lexical tokens that start a node: scalars (a plain scalar is its `\x1f` marker; a block
 * scalar is counted by its marker, not its header), aliases, flow collections, and
 * sequence item indicators (an empty item has no other token). A key or list item needs
 * at most two of them (`k: v`, `- v`), and a document root that is no collection one, which
 * is given back once its document is composed. The composer hands a document over when
 * the next one starts, so at most two roots are not given back yet: the first
 * `2 × maxKeys + 4` of them hold more than `maxKeys` keys.
 */
const NODE_TOKENS: ReadonlySet<string> = new Set(['scalar', 'single-quoted-scalar', 'double-quoted-scalar', 'alias', 'flow-map-start', 'flow-seq-start', 'seq-item-ind']);

/**
 * Every lexical token becomes an object of the lossless syntax tree (comments, line breaks
 * and indentation too), about 150 bytes each: a file of `#` lines or `,,,,` would need
 * gigabytes. A typical key line is 7 to 12 tokens; more than this many tokens per allowed
 * key is refused.
 */
export const TOKENS_PER_KEY = 20;

/** One composed document, handed to the caller as soon as it is complete. */
export interface StreamDocument {
  readonly doc: Document.Parsed;
  /** 0-based index in the stream (empty documents counted). */
  readonly index: number;
  /**
   * Set when reading stopped early (the node count proved too many keys, or too many
   * tokens): the document ends at this offset, errors at or after it come from the cut,
   * and the caller must only look for an error before it or the exact key that crossed
   * `maxKeys` (then stop).
   */
  readonly cutAt?: number;
}

/** Options of {@link composeBounded}. */
export interface BoundedComposeOptions {
  readonly document: string;
  readonly limits: Pick<DocumentLimits, 'maxDepth' | 'maxKeys'>;
  readonly yaml: ParseOptions & DocumentOptions & SchemaOptions;
  readonly lineCounter: LineCounter;
  /** Called with each document as soon as it is composed; may throw to stop reading. */
  readonly onDocument: (d: StreamDocument) => void;
}

/** Where one lexical token starts, as a limit position. */
function positionOf(document: string, lineCounter: LineCounter, offset: number): { document: string; line: number; column: number } {
  const p = lineCounter.linePos(offset);
  return { document, line: p.line, column: p.col };
}

/**
 * Lexes, parses and composes `text`, calling `onDocument` with each document.
 *
 * @returns how many documents were composed, and the stream-level errors of an empty
 *   stream (`Composer.streamInfo()`).
 * @throws CFG_ERR_DOCUMENT_LIMIT_EXCEEDED (422) when collections nest deeper than
 *   `limits.maxDepth` (at the start of the collection one level too deep); when the node
 *   count proves more than `limits.maxKeys` keys, or there are more than
 *   {@link TOKENS_PER_KEY} × `maxKeys` tokens, and `onDocument` reported nothing earlier
 *   (at the token where the count crossed); and whatever `onDocument` throws.
 */
export function composeBounded(text: string, opts: BoundedComposeOptions): { documents: number; streamErrors: ReadonlyArray<{ code: string; pos: [number, number] }> } {
  const { document, limits, lineCounter } = opts;
  const parser = new Parser(lineCounter.addNewLine);
  const composer = new Composer(opts.yaml);
  // The parser calls onNewLine(0) only from parse(); next() is driven by hand here.
  lineCounter.addNewLine(0);
  const nodeBudget = 2 * limits.maxKeys + 4;
  // Stack: the document, then one entry per open collection, then maybe one scalar.
  const stackBudget = limits.maxDepth + 1;
  const tokenBudget = TOKENS_PER_KEY * limits.maxKeys;
  let documents = 0;
  let nodes = 0;
  let tokens = 0;
  let cutAt: number | undefined;
  let cutBy: 'nodes' | 'tokens' = 'nodes';
  let afterScalarMarker = false;

  const take = (doc: Document.Parsed): void => {
    const index = documents++;
    // A root that is not a collection counted one node that is no key: give it back, so
    // thousands of `--- ~` documents are not taken for keys.
    const root = doc.contents as { items?: unknown } | null;
    if (cutAt === undefined && root !== null && root.items === undefined) nodes = Math.max(0, nodes - 1);
    opts.onDocument(cutAt === undefined ? { doc, index } : { doc, index, cutAt });
  };

  for (const lexeme of new Lexer().lex(text)) {
    const at = parser.offset; // where this token starts
    if (++tokens > tokenBudget) {
      cutAt = at;
      cutBy = 'tokens';
      break;
    }
    if (afterScalarMarker) {
      // The source of a plain or block scalar follows its marker: not a token type of its own.
      afterScalarMarker = false;
    } else {
      const type = CST.tokenType(lexeme);
      if (type === 'scalar') afterScalarMarker = true;
      if (type !== null && NODE_TOKENS.has(type) && ++nodes > nodeBudget) {
        cutAt = at;
        break;
      }
    }
    for (const token of parser.next(lexeme)) for (const doc of composer.next(token)) take(doc);
    if (parser.stack.length > stackBudget) {
      let depth = 0;
      for (const t of parser.stack) {
        // Named at the start of the collection one level too deep (its `[`, `{`, first
        // `-` or first key): the parser may open it a token later.
        if (COLLECTIONS.has(t.type) && ++depth > limits.maxDepth) {
          throw limitError(positionOf(document, lineCounter, t.offset), 'maxDepth', limits.maxDepth, 'nesting', '(maps and lists inside each other)');
        }
      }
    }
  }
  for (const token of parser.end()) for (const doc of composer.next(token)) take(doc);
  for (const doc of composer.end(false, cutAt ?? text.length)) take(doc);
  if (cutAt !== undefined) {
    // onDocument found no error before the cut and no exact crossing: name the cut.
    const at = positionOf(document, lineCounter, cutAt);
    if (cutBy === 'tokens') throw limitError(at, 'maxKeys', limits.maxKeys, 'the number of YAML tokens', '(comments, indentation and line breaks included)', TOKENS_PER_KEY);
    throw limitError(at, 'maxKeys', limits.maxKeys, 'the number of keys', '(map keys and list items)');
  }
  return { documents, streamErrors: composer.streamInfo().errors };
}
