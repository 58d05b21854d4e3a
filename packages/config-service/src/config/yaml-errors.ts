/**
 * Where a YAML syntax error is, as a person fixing the file looks for it. The `yaml`
 * library reports where it noticed the problem, which is often a line too early or too
 * late: a line indented too deep (`port: 8080` / `    host: x`) is reported at the value
 * above it (2:9) as a "multi-line implicit key"; an unclosed quote or flow collection at
 * the end of the input or on the next line. This module moves such errors to the line and
 * column where the fix goes, and words them for that place. Internal to `src/config/`.
 */
import { isScalar, visit, type Document, type YAMLError } from 'yaml';

/** Words of each `yaml` error code (a code not listed is shown as it is). */
export const YAML_ERROR_TEXT: Readonly<Record<string, string>> = {
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
  RESOURCE_EXHAUSTION: 'nested too deeply to read',
};

/** A syntax error placed for the reader: offset into the text and the words to show. */
export interface PlacedYamlError {
  /** Offset of the character to point at (its line and column are shown). */
  readonly offset: number;
  /** What is wrong, without position and never quoting a value. */
  readonly text: string;
}

/** Offset of the first character of the line holding `offset` that is not a space or a tab. */
function firstNonBlank(source: string, offset: number): number {
  let start = source.lastIndexOf('\n', Math.max(0, offset - 1)) + 1;
  if (offset < source.length && source[offset] === '\n' && offset > 0) start = source.lastIndexOf('\n', offset - 1) + 1;
  let i = start;
  while (i < source.length && (source[i] === ' ' || source[i] === '\t')) i++;
  return i < source.length && source[i] !== '\n' ? i : start;
}

/**
 * Picks the error of a document to report and places it (see the module comment).
 *
 * - A line indented deeper than the keys above it (`MULTILINE_IMPLICIT_KEY`, with or
 *   without `BLOCK_AS_IMPLICIT_KEY`): the first non-blank character of the line where the
 *   accidental key ends, "bad indentation: this line is indented deeper than the key
 *   above it".
 * - An unclosed quoted value (`MISSING_CHAR` at the end of a quoted scalar): its opening
 *   quote, "a quoted value is not closed".
 * - An unclosed flow sequence or map (`BAD_INDENT` / `MISSING_CHAR` naming `]` or `}`):
 *   its opening bracket, "a flow sequence ([) is not closed with ]".
 * - Other `BAD_INDENT`: the first non-blank character of its line.
 * - Anything else: where the library put it, in {@link YAML_ERROR_TEXT}'s words.
 *
 * @param errors - the document's errors (non-empty), in the library's order.
 * @param doc - the composed document (for the ranges of quoted scalars and flow collections).
 * @param source - the whole text the offsets point into.
 * @param kind - `YAML` or `JSON`, for the message.
 */
export function placeYamlError(errors: readonly YAMLError[], doc: Document.Parsed, source: string, kind: 'YAML' | 'JSON'): PlacedYamlError {
  const first = errors[0]!;
  const multiline = errors.find((e) => e.code === 'MULTILINE_IMPLICIT_KEY');
  if (multiline !== undefined && (first.code === 'MULTILINE_IMPLICIT_KEY' || first.code === 'BLOCK_AS_IMPLICIT_KEY')) {
    return { offset: firstNonBlank(source, multiline.pos[1] - 1), text: `invalid ${kind}: bad indentation: this line is indented deeper than the key above it (or a key lacks its ':')` };
  }
  if (first.code === 'MISSING_CHAR' || first.code === 'BAD_INDENT') {
    const closing = /end with a ([\]}])|Missing closing ([\]}])/.exec(first.message);
    if (closing !== null) {
      const bracket = closing[1] ?? closing[2];
      const open = bracket === ']' ? '[' : '{';
      let at: number | undefined;
      visit(doc, {
        Seq: (_k, node) => {
          if (open === '[' && node.flow === true && node.range !== undefined && node.range !== null && node.range[0] < first.pos[0] && source[node.range[0]] === '[') at = Math.max(at ?? -1, node.range[0]);
        },
        Map: (_k, node) => {
          if (open === '{' && node.flow === true && node.range !== undefined && node.range !== null && node.range[0] < first.pos[0] && source[node.range[0]] === '{') at = Math.max(at ?? -1, node.range[0]);
        },
      });
      const what = open === '[' ? 'flow sequence ([)' : 'flow map ({)';
      if (at !== undefined) return { offset: at, text: `invalid ${kind}: a ${what} is not closed with ${bracket}` };
    }
    if (first.code === 'MISSING_CHAR' && /quote/i.test(first.message)) {
      let at: number | undefined;
      visit(doc, {
        Scalar: (_k, node) => {
          if (!isScalar(node) || (node.type !== 'QUOTE_DOUBLE' && node.type !== 'QUOTE_SINGLE') || node.range === undefined || node.range === null) return;
          if (node.range[0] < first.pos[0] && node.range[1] >= first.pos[0] - 1) at = Math.max(at ?? -1, node.range[0]);
        },
      });
      if (at !== undefined) return { offset: at, text: `invalid ${kind}: a quoted value is not closed (its closing quote is missing)` };
    }
    if (first.code === 'BAD_INDENT') return { offset: firstNonBlank(source, first.pos[0]), text: `invalid ${kind}: ${YAML_ERROR_TEXT.BAD_INDENT}` };
  }
  return { offset: first.pos[0], text: `invalid ${kind}: ${YAML_ERROR_TEXT[first.code] ?? first.code}` };
}
