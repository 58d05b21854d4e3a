/**
 * Round trip over a GENERATED corpus of awkward values (and, in an app of their own,
 * awkward keys), through the real service over mTLS and the real consumers of each format:
 * a number-preserving JSON reader, java.util.Properties (Java 17, from bytes and through
 * UTF-8), sh and bash sourcing the env format, the dotenv npm parser, and the bundled
 * config-init exec handing the variables to a child process.
 *
 * The corpus is deterministic (fast-check, fixed seeds) and written as YAML with the `yaml`
 * library's Document API; the test first proves that the YAML reads back to exactly the
 * corpus (YAML 1.2 core, the options the service reads with), so any difference downstream
 * is the service's or config-init's.
 *
 * Repository layout (folders, one app per folder, one client certificate per app):
 *   corpus/application.yml    every value under `corpus.k<i>[-suffix]`   json, properties, env (sh, bash), exec
 *   dotenv/application.yml    the dotenv-representable subset, same keys  dotenv
 *   keys/application.yml      awkward top-level keys (quoted in YAML)     json, properties
 *   undotenv/application.yml  one value no dotenv spelling can carry      dotenv → 422 naming its key
 *   nul/application.yml       one value holding NUL                       env, dotenv → 422; json, properties keep it
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dotenv from 'dotenv';
import fc from 'fast-check';
import { Document, parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet, makeCerts, makeGitRepo, runInit, startTestService, type ClientCert, type GitTestRepo, type TestPki, type TestService } from '#helpers';
import { javaLoad } from '../packages/config-service/test/config/java.ts';

// ------------------------------------------------------------------ corpus

/** A float written by its exact text (chosen so that `String(Number(text)) === text`). */
interface FloatText {
  readonly float: string;
}
/** A corpus value: strings, booleans, integers (bigint, any size) and floats. */
type Value = string | boolean | bigint | FloatText;

const isFloat = (v: Value): v is FloatText => typeof v === 'object';

/** The text every flat format must carry: strings as they are, `true`/`false`, exact digits. */
function flatText(v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  return v.float;
}

/** What the YAML document holds for a value (floats as JS numbers; yaml writes `String(n)`). */
const yamlValue = (v: Value): string | boolean | bigint | number => (isFloat(v) ? Number(v.float) : v);

/**
 * Strings excluded from the corpus, on purpose:
 * - NUL: no environment variable can hold it (the service answers 422; the `nul` app asserts that);
 * - `${`: the service resolves placeholders by default (`resolve=true`, as config-init asks), so
 *   the value would legitimately change;
 * - a `{cipher}` prefix: such a value is a secret envelope, decrypted or refused;
 * - lone surrogates: not representable in a UTF-8 file (fast-check's `binary` unit makes none).
 */
const servable = (s: string): boolean => !s.includes('\0') && !s.includes('${') && !s.startsWith('{cipher}') && !/\p{Cs}/u.test(s);

/** Characters and sequences that formats trip over (multi-character pieces included). */
const PIECES = [
  ' ', '  ', '\\', '\\n', '\\r', '\n', '\r', '\r\n', '\t', '\f', '\v', '#', '!', '=', ':', ': ', ' #', '$', '$(id)', '$HOME', '`', '`id`',
  '"', "'", "'\\''", 'é', '€', 'ß', '中文', '😀', '𝄞', '\u{10FFFD}', '\u00a0', '\u2028', '\u2029', '\u0085', '\ufeff', '\u200b',
  '\u0001', '\u001b', '\u007f', 'a', 'n', 'r', 'Z', '0', '-', '_', '.', '[', ']', '(', ')', ';', '&', '|', '*', '%', '@', '~', '<<', '?', ',',
] as const;

/** Words other readers take for another type (YAML 1.1 booleans, octal, dates, floats, null). */
const LOOKALIKES = [
  'on', 'off', 'On', 'OFF', 'yes', 'no', 'NO', 'Yes', 'y', 'n', 'Y', 'N', 'true', 'False', 'TRUE', 'null', 'Null', 'NULL', '~',
  '0640', '0o640', '0x1F', '0b101', '1e3', '1E3', '-1e-3', '1_000', '1:30', '190:20:30', '.5', '5.', '+1', '-0', '0.0', '.inf', '-.Inf', '.NaN',
  '2010-09-09', '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10 -5', '12345678901234567891', '<<', '=', '-', '- a', '? x', '&a', '*a',
  '!tag', '!!str', '%YAML', '@x', '|', '>', '{}', '[]', '---', '...', '#', '!', 'NaN', 'Infinity',
] as const;

/** Values that must be in the corpus whatever the generator draws. */
const FIXED: readonly Value[] = [
  '', ' ', '  lead', 'trail  ', ' both ', '\t', '\n', '\r\n', '\r', 'a\nb', 'a\r\nb', 'line\n', '\\', 'C:\\new\\table', 'ends\\', 'a\\nb (backslash n)',
  "'", '"', '`', "it's", 'say "hi"', "a'b\"c`d $(id)", "q'q\"q`q\r\n", '$(id)', '`id`', '$HOME', '$', '#comment', 'a #b', 'k=v', 'x: y', '!important', '=start',
  'on', 'NO', 'yes', 'off', 'y', '~', 'null', '0640', '0o640', '0x1F', '2010-09-09', '1e3', '1_000', '.inf', '12345678901234567891',
  '😀', 'a😀b', '𝄞', 'é', '中文', '\u00a0nbsp\u00a0', '\u2028', '\ufeffbom',
  12345678901234567891n, -12345678901234567891n, 2n ** 64n, -(2n ** 63n), 9007199254740993n, 0n, 640n, -1n,
  true, false, { float: '3.25' }, { float: '-0.5' }, { float: '1.0625' },
];

const text = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.constantFrom(...PIECES), { maxLength: 10 }).map((p) => p.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(...LOOKALIKES) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...PIECES), fc.constantFrom(...LOOKALIKES), fc.constantFrom(...PIECES)).map((p) => p.join('')) },
).filter(servable);

const floatText = fc
  .tuple(fc.boolean(), fc.integer({ min: 0, max: 999_999 }), fc.integer({ min: 1, max: 9999 }))
  .map(([neg, int, frac]) => `${neg ? '-' : ''}${int}.${String(frac).replace(/0+$/, '')}`)
  .filter((t) => String(Number(t)) === t);

const value: fc.Arbitrary<Value> = fc.oneof(
  { weight: 10, arbitrary: text },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -1000n, max: 1000n }) },
  { weight: 1, arbitrary: floatText.map((float): Value => ({ float })) },
);

/** Key suffix: only `-`, `_` and letters/digits, so every key names a distinct env variable. */
const suffix = fc.array(fc.constantFrom('-', '_', '--', 'a', 'B', 'x', 'Zz', '9', 'db', 'url'), { maxLength: 5 }).map((p) => p.join(''));

const GENERATED = 150;
const generated = fc.sample(fc.tuple(value, suffix), { numRuns: GENERATED, seed: 20240611 });

interface Entry {
  /** Key under `corpus` (`k<i>` or `k<i>-<suffix>`: the `-` after the index keeps env names distinct). */
  readonly key: string;
  /** Flattened property name: `corpus.<key>`. */
  readonly name: string;
  /** Environment name (SPEC §8 standard naming), computed independently of the service. */
  readonly env: string;
  readonly value: Value;
  readonly text: string;
}

const ENTRIES: readonly Entry[] = [...FIXED.map((v): [Value, string] => [v, '']), ...generated].map(([v, sfx], i) => {
  const key = sfx === '' ? `k${i}` : `k${i}-${sfx}`;
  const name = `corpus.${key}`;
  const env = name.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase().replace(/_+$/, '');
  return { key, name, env, value: v, text: flatText(v) };
});

/**
 * The dotenv subset. dotenv 16's `parse` turns every CR into LF before reading, takes `\'`
 * (`\"`, `` \` ``) for an escaped quote, expands only `\n`/`\r` and only inside double
 * quotes, and trims unquoted values and cuts them at `#`. So a value is representable iff
 * one of these spellings reads back exactly, and only those values go in the dotenv app:
 * - single quotes or backticks: no CR, not that quote character, no trailing `\`;
 * - double quotes (LF/CR written `\n`/`\r`): no `"`, no two-character `\n`/`\r`, no trailing `\`;
 * - unquoted: not empty, no `#`, CR or LF, no outer white space (String#trim), no leading quote.
 * Booleans and numbers always are.
 */
function dotenvRepresentable(s: string): boolean {
  const quotable = !s.endsWith('\\');
  if (quotable && !s.includes('\r') && (!s.includes("'") || !s.includes('`'))) return true;
  if (quotable && !s.includes('"') && !/\\[nr]/.test(s)) return true;
  return s !== '' && !/[#\r\n]/.test(s) && s.trim() === s && !/^['"`]/.test(s);
}
const DOTENV_ENTRIES = ENTRIES.filter((e) => dotenvRepresentable(e.text));

/** Awkward top-level keys: spaces, `:`, `=`, `#`, `!`, quotes, unicode, look-alikes. No `.`, `[`, `]`
 * (Spring's property-name syntax splits on them), no NUL, not empty. */
const KEY_PIECES = [' ', ':', '=', '#', '!', '\t', '\n', '\\', '"', "'", '`', '$', '-', '_', '/', '@', '%', '&', '*', '?', ',', '{', '}', 'é', '€', '中', '😀', '𝄞', '\u00a0', '\u2028', 'a', 'B', '0', '9'] as const;
const KEY_WORDS = ['on', 'NO', 'true', 'null', '~', '0640', '2010-09-09', '1e3', '12345678901234567891', '<<', '-', '?', '__proto__', 'constructor', ' ', 'odd key:x=y', '#hash', '!bang'] as const;
const awkwardKey = fc
  .oneof(
    fc.constantFrom(...KEY_WORDS),
    fc.array(fc.constantFrom(...KEY_PIECES), { minLength: 1, maxLength: 8 }).map((p) => p.join('')),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }),
  )
  .filter((k) => k !== '' && !/[.[\]\0]/.test(k) && servable(k));
const KEY_PAIRS: ReadonlyArray<readonly [string, Value]> = fc.sample(
  fc.uniqueArray(fc.tuple(awkwardKey, value), { minLength: 60, maxLength: 60, selector: ([k]) => k }),
  { numRuns: 1, seed: 7 },
)[0]!;

/** A value no dotenv spelling carries: all three quote characters, CR and `#`. */
const UNDOTENV = 'a\'b"c`d\r\n #x';
/** A value with NUL (allowed in YAML, JSON and properties; impossible in an environment). */
const WITH_NUL = 'a\0b';

/** YAML text of `tree` (Document API, YAML 1.2, no folding), verified to read back exactly. */
function yamlOf(tree: Map<string, unknown>): string {
  const doc = new Document(tree, { version: '1.2' });
  return doc.toString({ lineWidth: 0, minContentWidth: 0 });
}

const corpusTree = (entries: readonly Entry[]): Map<string, unknown> => new Map([['corpus', new Map(entries.map((e) => [e.key, yamlValue(e.value)]))]]);
const FILES: Record<string, string> = {
  'corpus/application.yml': yamlOf(corpusTree(ENTRIES)),
  'dotenv/application.yml': yamlOf(corpusTree(DOTENV_ENTRIES)),
  'keys/application.yml': yamlOf(new Map(KEY_PAIRS.map(([k, v]) => [k, yamlValue(v)]))),
  'undotenv/application.yml': yamlOf(new Map([['bad-value', UNDOTENV], ['fine', 'ok']])),
  'nul/application.yml': yamlOf(new Map([['with-nul', WITH_NUL], ['fine', 'ok']])),
};

// ------------------------------------------------------------------ readers and checks

/** A number as its exact JSON text. */
interface JsonNumber {
  readonly num: string;
}
type JsonValue = string | boolean | null | JsonNumber | JsonValue[] | Map<string, JsonValue>;

/** JSON reader that keeps every number's text (no rounding through a double) and builds Maps (no `__proto__` trouble). */
function parseJsonExact(src: string): JsonValue {
  let i = 0;
  const ws = (): void => {
    while (i < src.length && ' \t\n\r'.includes(src[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`JSON: ${what} at ${i}`);
  };
  const str = (): string => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(src.slice(i));
    if (!m) return fail('bad string');
    i += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const val = (): JsonValue => {
    ws();
    const c = src[i];
    if (c === '"') return str();
    if (c === '{') {
      i++;
      const map = new Map<string, JsonValue>();
      ws();
      if (src[i] === '}') return i++, map;
      for (;;) {
        ws();
        const k = str();
        ws();
        if (src[i++] !== ':') fail('expected :');
        if (map.has(k)) fail(`duplicate key ${JSON.stringify(k)}`);
        map.set(k, val());
        ws();
        const d = src[i++];
        if (d === '}') return map;
        if (d !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const list: JsonValue[] = [];
      ws();
      if (src[i] === ']') return i++, list;
      for (;;) {
        list.push(val());
        ws();
        const d = src[i++];
        if (d === ']') return list;
        if (d !== ',') fail('expected , or ]');
      }
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (src.startsWith(word, i)) return (i += word.length), v;
    }
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    return { num: m[0] };
  };
  const out = val();
  ws();
  if (i !== src.length) fail('trailing text');
  return out;
}

/** The JSON value a corpus value must come back as. */
const jsonOf = (v: Value): JsonValue => (typeof v === 'bigint' ? { num: v.toString() } : isFloat(v) ? { num: v.float } : v);

/** Code points of a value, for reports (`U+0027 U+1F600`). */
const codePoints = (v: unknown): string =>
  typeof v === 'string' ? [...v].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`).join(' ') || '(empty)' : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

/** Collects mismatches, each naming format, key, expected and actual code points. */
class Mismatches {
  readonly list: string[] = [];
  check(format: string, key: string, actual: unknown, expected: unknown): void {
    const same = typeof expected === 'object' && expected !== null ? JSON.stringify(actual) === JSON.stringify(expected) : actual === expected;
    if (!same) this.list.push(`${format} ${JSON.stringify(key)}: expected [${codePoints(expected)}] got [${actual === undefined ? 'missing' : codePoints(actual)}]`);
  }
  /** Every name in `actual` (restricted by `keep`) must be expected: no extra variables or properties. */
  noExtra(format: string, actual: Iterable<string>, expected: ReadonlySet<string>): void {
    for (const k of actual) if (!expected.has(k)) this.list.push(`${format}: unexpected ${JSON.stringify(k)}`);
  }
}

/** Sources `text` with `shell` (`set -a; . ./out.env; env -0`) and returns the resulting environment. */
function sourced(shell: 'sh' | 'bash', dir: string): Map<string, string> {
  const out = execFileSync(shell, ['-c', 'set -a; . ./out.env; env -0'], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const env = new Map<string, string>();
  for (const item of out.toString('utf8').split('\0')) {
    const eq = item.indexOf('=');
    if (eq > 0) env.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return env;
}

// ------------------------------------------------------------------ service

let pki: TestPki;
let repo: GitTestRepo;
let service: TestService;
const clients: Record<string, ClientCert> = {};
const tmpDirs: string[] = [];

beforeAll(async () => {
  pki = await makeCerts('roundtrip');
  for (const app of ['corpus', 'dotenv', 'keys', 'undotenv', 'nul']) clients[app] = await pki.client(app);
  repo = await makeGitRepo(FILES, { branch: 'main' });
  service = await startTestService({ pki, repository: { path: repo.dir, branch: 'main' }, logLevel: 'warn' });
});
afterAll(async () => {
  await service?.close();
  repo?.remove();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function config(app: string, format: string, headers: Record<string, string> = {}) {
  const client = clients[app]!;
  return httpsGet(service.apiUrl, `/v1/apps/${app}/config?${new URLSearchParams({ ref: 'main', format })}`, { ca: pki.ca.certPem, cert: client.cert, key: client.key, headers });
}

function tmp(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

// ------------------------------------------------------------------ tests

describe('the generated corpus', () => {
  it('is what the brief asks for, and each YAML file reads back to exactly it (YAML 1.2 core, as the service reads)', () => {
    const texts = ENTRIES.map((e) => e.text);
    expect(ENTRIES.length).toBe(FIXED.length + GENERATED);
    expect(new Set(ENTRIES.map((e) => e.env)).size).toBe(ENTRIES.length);
    for (const e of ENTRIES) expect(e.env, e.name).toMatch(/^CORPUS_K[0-9]+(_[A-Z0-9_]*[A-Z0-9])?$/);
    expect(ENTRIES.some((e) => typeof e.value === 'bigint' && e.value > 2n ** 64n)).toBe(true);
    expect(ENTRIES.filter((e) => typeof e.value === 'string' && /[\u{10000}-\u{10FFFF}]/u.test(e.value)).length).toBeGreaterThan(10);
    for (const needle of ["'", '"', '`', '$(id)', '\\', '\r\n', '\t', '#', '=', ':', '!']) expect(texts.some((t) => t.includes(needle)), needle).toBe(true);
    expect(KEY_PAIRS.length).toBe(60);

    const read = (file: string) => parseYaml(FILES[file]!, { version: '1.2', intAsBigInt: true, merge: true, uniqueKeys: true, mapAsMap: true }) as Map<string, unknown>;
    const back = (v: unknown): unknown => (typeof v === 'number' ? { float: String(v) } : v);
    for (const [file, entries] of [['corpus/application.yml', ENTRIES], ['dotenv/application.yml', DOTENV_ENTRIES]] as const) {
      const corpus = read(file).get('corpus') as Map<string, unknown>;
      expect(corpus.size).toBe(entries.length);
      for (const e of entries) expect(back(corpus.get(e.key)), `${file} ${e.key}`).toEqual(e.value);
    }
    const keys = read('keys/application.yml');
    expect(keys.size).toBe(KEY_PAIRS.length);
    for (const [k, v] of KEY_PAIRS) expect(back(keys.get(k)), JSON.stringify(k)).toEqual(v);
    expect(read('undotenv/application.yml').get('bad-value')).toBe(UNDOTENV);
    expect(read('nul/application.yml').get('with-nul')).toBe(WITH_NUL);
  });
});

describe('format=json', () => {
  it('gives every value of the corpus back exactly, big integers and float digits included', async () => {
    const res = await config('corpus', 'json');
    expect(res.status, res.body).toBe(200);
    const root = parseJsonExact(res.body) as Map<string, JsonValue>;
    expect([...root.keys()]).toEqual(['corpus']);
    const corpus = root.get('corpus') as Map<string, JsonValue>;
    const bad = new Mismatches();
    for (const e of ENTRIES) bad.check('json', e.name, corpus.get(e.key), jsonOf(e.value));
    bad.noExtra('json', corpus.keys(), new Set(ENTRIES.map((e) => e.key)));
    expect(bad.list).toEqual([]);
    expect(res.body).toContain('12345678901234567891');
  });

  it('gives every awkward key and its value back exactly', async () => {
    const res = await config('keys', 'json');
    expect(res.status, res.body).toBe(200);
    const root = parseJsonExact(res.body) as Map<string, JsonValue>;
    const bad = new Mismatches();
    for (const [k, v] of KEY_PAIRS) bad.check('json(keys)', k, root.get(k), jsonOf(v));
    bad.noExtra('json(keys)', root.keys(), new Set(KEY_PAIRS.map(([k]) => k)));
    expect(bad.list).toEqual([]);
  });
});

describe('format=properties read by java.util.Properties', () => {
  it('reads back every value (corpus) and every awkward key (keys), from bytes and through UTF-8', async () => {
    const [corpus, keys, nul] = await Promise.all([config('corpus', 'properties'), config('keys', 'properties'), config('nul', 'properties')]);
    for (const r of [corpus, keys, nul]) {
      expect(r.status, r.body).toBe(200);
      expect(/^[\x20-\x7e\n]*$/.test(r.body)).toBe(true);
    }
    const [readCorpus, readKeys, readNul] = javaLoad([corpus.body, keys.body, nul.body]);
    const bad = new Mismatches();
    for (const view of ['bytes', 'utf8'] as const) {
      const c = new Map(Object.entries(readCorpus![view]));
      for (const e of ENTRIES) bad.check(`properties/${view}`, e.name, c.get(e.name), e.text);
      bad.noExtra(`properties/${view}`, c.keys(), new Set(ENTRIES.map((e) => e.name)));
      const k = new Map(Object.entries(readKeys![view]));
      for (const [key, v] of KEY_PAIRS) bad.check(`properties(keys)/${view}`, key, k.get(key), flatText(v));
      bad.noExtra(`properties(keys)/${view}`, k.keys(), new Set(KEY_PAIRS.map(([key]) => key)));
      expect(readNul![view]).toEqual({ 'with-nul': WITH_NUL, fine: 'ok' });
    }
    expect(bad.list).toEqual([]);
  });
});

describe('format=env sourced by sh and bash', () => {
  it.each(['sh', 'bash'] as const)('%s: every variable holds exactly its value, and no other CORPUS_ variable appears', async (shell) => {
    const res = await config('corpus', 'env');
    expect(res.status, res.body).toBe(200);
    const dir = tmp('rt-env-');
    writeFileSync(path.join(dir, 'out.env'), res.body);
    const env = sourced(shell, dir);
    const bad = new Mismatches();
    for (const e of ENTRIES) bad.check(`env/${shell}`, e.env, env.get(e.env), e.text);
    bad.noExtra(`env/${shell}`, [...env.keys()].filter((n) => n.startsWith('CORPUS')), new Set(ENTRIES.map((e) => e.env)));
    expect(bad.list).toEqual([]);
  });

  it('a NUL value: env and dotenv answer 422 naming the key (never the value); json keeps it', async () => {
    for (const format of ['env', 'dotenv']) {
      const res = await config('nul', format);
      expect(res.status, format).toBe(422);
      const problem = res.json<{ code: string; detail: string }>();
      expect(problem.code).toBe('unrenderable');
      expect(problem.detail).toContain('"with-nul"');
      expect(problem.detail).toContain('NUL');
      expect(res.body).not.toContain('a\\u0000b');
    }
    const json = await config('nul', 'json');
    expect(json.status).toBe(200);
    expect(parseJsonExact(json.body)).toEqual(new Map([['fine', 'ok'], ['with-nul', WITH_NUL]]));
  });
});

describe('format=dotenv parsed by dotenv.parse', () => {
  it('reads back every value of the dotenv subset exactly', async () => {
    expect(DOTENV_ENTRIES.length).toBeGreaterThan(ENTRIES.length / 2);
    expect(DOTENV_ENTRIES.length).toBeLessThan(ENTRIES.length);
    const res = await config('dotenv', 'dotenv');
    expect(res.status, res.body).toBe(200);
    const parsed = new Map(Object.entries(dotenv.parse(res.body)));
    const bad = new Mismatches();
    for (const e of DOTENV_ENTRIES) bad.check('dotenv', e.env, parsed.get(e.env), e.text);
    bad.noExtra('dotenv', parsed.keys(), new Set(DOTENV_ENTRIES.map((e) => e.env)));
    expect(bad.list).toEqual([]);
  });

  it('a value with all three quote characters, CR and # → 422 naming its key, never the value', async () => {
    expect(dotenvRepresentable(UNDOTENV)).toBe(false);
    const res = await config('undotenv', 'dotenv');
    expect(res.status).toBe(422);
    const problem = res.json<{ code: string; detail: string }>();
    expect(problem.code).toBe('unrenderable');
    expect(problem.detail).toContain('"bad-value"');
    expect(problem.detail).not.toContain('"fine"');
    expect(res.body).not.toContain('c`d');
    // The same app renders for env: only dotenv is refused.
    expect((await config('undotenv', 'env')).status).toBe(200);
  });

  it('the whole corpus is refused for dotenv, naming a key whose value the filter above excludes', async () => {
    const res = await config('corpus', 'dotenv');
    expect(res.status).toBe(422);
    const problem = res.json<{ code: string; detail: string }>();
    expect(problem.code).toBe('unrenderable');
    const named = ENTRIES.filter((e) => problem.detail.includes(JSON.stringify(e.name)));
    expect(named.map((e) => e.name)).toHaveLength(1);
    expect(dotenvRepresentable(named[0]!.text)).toBe(false);
  });
});

describe('config-init exec', () => {
  it('hands the child exactly the configured value for every variable, and no other CORPUS_ variable', async () => {
    const client = clients.corpus!;
    const printEnv = 'const o = {}; for (const [k, v] of Object.entries(process.env)) if (k.startsWith("CORPUS")) o[k] = v; process.stdout.write(JSON.stringify(o));';
    const res = await runInit([
      'exec', '--server', service.apiUrl, '--app', 'corpus', '--cert', client.certFile, '--key', client.keyFile, '--ca', pki.caFile,
      '--termination-log', '', '--deadline', '10000', '--', process.execPath, '-e', printEnv,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const got = new Map(Object.entries(JSON.parse(res.stdout) as Record<string, string>));
    const bad = new Mismatches();
    for (const e of ENTRIES) bad.check('exec', e.env, got.get(e.env), e.text);
    bad.noExtra('exec', got.keys(), new Set(ENTRIES.map((e) => e.env)));
    expect(bad.list).toEqual([]);
  });
});
