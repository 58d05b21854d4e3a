/**
 * Renders a merged configuration in the output formats of SPEC §8. Every format writes
 * the same text for a value (`confirm=yes`, `legacy=true`, exact number digits).
 */
import { Document, Scalar as YamlScalar, visit, type ScalarTag, type Schema } from 'yaml';
import { CFG_ERR_UNRENDERABLE, withData } from '../errors.js';
import { quoteKey } from './document-error.js';
import { envName, type EnvNaming } from './env-names.js';
import { compareStrings } from './paths.js';
import { flattenProperties, toTree, type FlatProperty } from './tree.js';
import type { Format, MergedConfig, NumberLiteral, TreeValue } from './types.js';
import { isNumberLiteral } from './values.js';

export { envName, ENV_NAME_PATTERN, type EnvNaming } from './env-names.js';

/** Options of {@link render}. */
export interface RenderOptions {
  /** Environment naming for `env` and `dotenv` (SPEC §8); `standard` by default. */
  readonly envNaming?: EnvNaming;
}

function unrenderable(message: string, keys: readonly string[]): Error {
  return withData(new CFG_ERR_UNRENDERABLE(message), { keys: [...keys] });
}

// ---------------------------------------------------------------- json

function jsonValue(v: TreeValue, indent: string): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (isNumberLiteral(v)) return v.text;
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x: TreeValue) => inner + jsonValue(x, inner)).join(',\n')}\n${indent}]`;
  }
  const map = v as { readonly [k: string]: TreeValue };
  const keys = Object.keys(map).sort(compareStrings);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${jsonValue(map[k] as TreeValue, inner)}`).join(',\n')}\n${indent}}`;
}

/**
 * JSON text of one value: strings JSON-escaped, booleans, numbers as their exact digits
 * (a {@link NumberLiteral}'s `text`, never rounded through a double), lists and maps
 * with 2-space indent and sorted keys. For callers that write their own JSON envelope
 * around configuration values (the Spring Environment route).
 */
export function renderJsonValue(value: TreeValue): string {
  return jsonValue(value, '');
}

/**
 * JSON text of the tree: 2-space indent, keys sorted, numbers as their exact digits
 * (never rounded through a double), trailing newline (RFC 8259).
 */
function renderJson(config: MergedConfig): string {
  return `${jsonValue(toTree(config), '')}\n`;
}

// ---------------------------------------------------------------- yaml

/** Writes a NumberLiteral as its digits, untagged (the text is a float/int in YAML 1.1 and 1.2). */
const numberLiteralTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:float',
  default: true,
  identify: (v: unknown) => isNumberLiteral(v),
  resolve: (s: string) => s,
  stringify: (item) => (item as { value: NumberLiteral }).value.text,
};

let resolvers: ReadonlyArray<{ test?: RegExp }> | undefined;

/**
 * The implicit-type patterns of YAML 1.2 core and YAML 1.1 (the `yaml` library's own
 * schemas, timestamps included): a string matching any must be quoted, so that readers
 * of either version (SnakeYAML in Spring among them) get a string back.
 */
function implicitResolvers(): ReadonlyArray<{ test?: RegExp }> {
  if (resolvers === undefined) {
    const schemas: Schema[] = [
      new Document(null, { version: '1.2' }).schema,
      new Document(null, { version: '1.1', merge: true }).schema,
    ];
    resolvers = schemas.flatMap((s) => s.tags.filter((t) => t.tag !== 'tag:yaml.org,2002:str' && t.test instanceof RegExp));
  }
  return resolvers;
}

function needsQuotes(s: string): boolean {
  return implicitResolvers().some((t) => t.test !== undefined && t.test.test(s)) || s === '=';
}

/**
 * YAML text of the tree through the `yaml` library: keys sorted, strings quoted wherever a
 * YAML 1.1 or 1.2 reader could take them for another type (`on`, `yes`, `0640`, `0o640`,
 * `2010-09-09`, `~`, `1e3`), numbers with their exact digits, no line folding.
 */
function renderYaml(config: MergedConfig): string {
  const doc = new Document(toTree(config), {
    version: '1.2',
    customTags: [numberLiteralTag],
    sortMapEntries: (a, b) => compareStrings(String((a.key as YamlScalar).value), String((b.key as YamlScalar).value)),
  });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && needsQuotes(node.value) && node.type !== YamlScalar.BLOCK_LITERAL) {
        node.type = YamlScalar.QUOTE_DOUBLE;
      }
    },
  });
  return doc.toString({ lineWidth: 0, minContentWidth: 0 });
}

// ---------------------------------------------------------------- properties

const HEX = '0123456789ABCDEF';

/**
 * `java.util.Properties.saveConvert` (Java 17), with `escUnicode = true`: `\` doubled;
 * tab, LF, CR, FF as `\t \n \r \f`; `= : # !` escaped; space escaped everywhere in a key
 * and at the start of a value; every other character outside 0x20-0x7E as `\uXXXX`
 * (UTF-16 units, so astral characters become surrogate pairs).
 */
function saveConvert(s: string, escapeSpace: boolean): string {
  let out = '';
  for (let x = 0; x < s.length; x++) {
    const c = s.charCodeAt(x);
    const ch = s[x] as string;
    if (c > 61 && c < 127) {
      out += c === 92 ? '\\\\' : ch;
      continue;
    }
    switch (ch) {
      case ' ':
        out += x === 0 || escapeSpace ? '\\ ' : ' ';
        break;
      case '\t':
        out += '\\t';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\f':
        out += '\\f';
        break;
      case '=':
      case ':':
      case '#':
      case '!':
        out += `\\${ch}`;
        break;
      default:
        if (c < 0x20 || c > 0x7e) {
          out += `\\u${HEX[(c >> 12) & 0xf]}${HEX[(c >> 8) & 0xf]}${HEX[(c >> 4) & 0xf]}${HEX[c & 0xf]}`;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

/** `.properties` text: one `key=value` line per flattened name, sorted, pure ASCII. */
function renderProperties(config: MergedConfig): string {
  return flattenProperties(config)
    .map((p) => `${saveConvert(p.name, true)}=${saveConvert(p.value, false)}\n`)
    .join('');
}

// ---------------------------------------------------------------- env, dotenv

/** Names every flattened property, refusing collisions, unnamable keys and NUL values. */
function namedProperties(config: MergedConfig, naming: EnvNaming): Array<FlatProperty & { env: string }> {
  const byName = new Map<string, string>();
  const out: Array<FlatProperty & { env: string }> = [];
  for (const p of flattenProperties(config)) {
    const env = envName(p.name, naming);
    if (env === undefined) throw unrenderable(`key ${quoteKey(p.name)} has no letter or digit to form an environment name`, [p.name]);
    const other = byName.get(env);
    if (other !== undefined) {
      throw unrenderable(`keys ${quoteKey(other)} and ${quoteKey(p.name)} both map to the environment name ${env}`, [other, p.name]);
    }
    if (p.value.includes('\0')) throw unrenderable(`the value of ${quoteKey(p.name)} contains a NUL character, which no environment variable can hold`, [p.name]);
    byName.set(env, p.name);
    out.push({ ...p, env });
  }
  return out.sort((a, b) => compareStrings(a.env, b.env));
}

/**
 * The environment variables of a configuration, as `config-init exec` hands them to a
 * process: names per SPEC §8 (same rules and collision errors as the `env` format), sorted.
 *
 * @returns `[name, value]` pairs; values are the flattened texts.
 * @throws CFG_ERR_UNRENDERABLE (422) like {@link render} with `env`.
 */
export function envVariables(config: MergedConfig, naming: EnvNaming = 'standard'): Array<[string, string]> {
  return namedProperties(config, naming).map((p) => [p.env, p.value]);
}

/** POSIX shell: `export NAME='value'`, `'` written as `'\''`; nothing in a value is expanded. */
function renderEnv(config: MergedConfig, naming: EnvNaming): string {
  return namedProperties(config, naming)
    .map((p) => `export ${p.env}='${p.value.replace(/'/g, `'\\''`)}'\n`)
    .join('');
}

/**
 * The spelling that the `dotenv` npm parser (v16 `parse`) reads back exactly, tried in
 * this order:
 * 1. single quotes, 2. backticks: literal (multi-line allowed), but dotenv turns every CR
 *    into LF, so the value must hold no CR and not the quote character;
 * 3. double quotes, with LF/CR written `\n`/`\r` (dotenv turns those two escapes back and
 *    nothing else: `\\` and `\"` stay as they are), so the value must hold no `"` and not
 *    the two-character sequences `\n`/`\r`;
 * 4. unquoted: one line without `#`, without leading or trailing white space, not
 *    starting with a quote character.
 * A quoted value must not end in `\` (dotenv would take `\'` for an escaped quote).
 *
 * @returns the text after `NAME=`, or `undefined` when no spelling reads back exactly.
 */
function dotenvQuote(value: string): string | undefined {
  const quotable = !value.endsWith('\\');
  if (quotable && !value.includes('\r')) {
    if (!value.includes("'")) return `'${value}'`;
    if (!value.includes('`')) return `\`${value}\``;
  }
  if (quotable && !value.includes('"') && !/\\[nr]/.test(value)) return `"${value.replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
  if (value !== '' && !/[#\r\n]/.test(value) && value.trim() === value && !/^['"`]/.test(value)) return value;
  return undefined;
}

/** dotenv: `NAME=<spelling>` lines (see {@link dotenvQuote}), sorted by name. */
function renderDotenv(config: MergedConfig, naming: EnvNaming): string {
  return namedProperties(config, naming)
    .map((p) => {
      const quoted = dotenvQuote(p.value);
      if (quoted === undefined) {
        throw unrenderable(`the value of ${quoteKey(p.name)} cannot be written so that the dotenv parser reads it back exactly (all three quote characters together with CR, #, line breaks, backslash-n sequences, a trailing backslash or outer white space); use the env or json format`, [p.name]);
      }
      return `${p.env}=${quoted}\n`;
    })
    .join('');
}

/**
 * Renders a merged configuration (SPEC §8).
 *
 * - `json`, `yaml`: the nested tree ({@link toTree}), keys sorted, trailing newline.
 * - `properties`: flattened names, escaped like `java.util.Properties.store`, pure ASCII.
 * - `env`: `export NAME='value'` lines, safe to `.` in sh and bash for any value.
 * - `dotenv`: `NAME=<quoted>` lines read back exactly by the `dotenv` npm parser.
 *
 * @param config - the merge result (placeholders already resolved when wanted).
 * @param format - one of `FORMATS`.
 * @param options - `envNaming` for `env`/`dotenv` (`standard` by default).
 * @returns UTF-8 text (a JavaScript string; encode it as UTF-8).
 * @throws CFG_ERR_UNRENDERABLE (422) with `data.keys` when two keys map to one
 *   environment name, a key has no usable character for a name, a value holds NUL
 *   (env, dotenv), or a value fits no dotenv quoting. Messages name keys, never values.
 */
export function render(config: MergedConfig, format: Format, options: RenderOptions = {}): string {
  const naming = options.envNaming ?? 'standard';
  switch (format) {
    case 'json':
      return renderJson(config);
    case 'yaml':
      return renderYaml(config);
    case 'properties':
      return renderProperties(config);
    case 'env':
      return renderEnv(config, naming);
    case 'dotenv':
      return renderDotenv(config, naming);
  }
}
