/**
 * Round trips through the real readers: java.util.Properties (Java 17), sh and bash, and
 * the dotenv npm parser; fixed cases and fast-check properties.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dotenv from 'dotenv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { mergeSources } from '../../src/config/merge.js';
import { loadProperties } from '../../src/config/parse-properties.js';
import { render } from '../../src/config/render.js';
import { flatten } from '../../src/config/tree.js';
import type { MergedConfig } from '../../src/config/types.js';
import { configOf } from './helpers.js';
import { javaLoad } from './java.js';

/** Awkward text: full Unicode, or a mix of the characters formats trip over. */
const awkward = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom(' ', '\\', '\n', '\r', '\t', '\f', '#', '!', '=', ':', '$', '`', '"', "'", 'é', '😀', 'a', 'n', 'r', '\u2028', '{', '}', '(', ')', ';', '&', '|', '*', '.', '[', ']', '0', '\u0001', '\u007f'),
    maxLength: 16,
  }),
);

/** A configuration with one top-level key per value: `v0`, `v1`, ... */
function configOfValues(values: readonly string[]): MergedConfig {
  return mergeSources([{ name: 't', entries: values.map((value, i) => ({ path: [`v${i}`], value, origin: { document: 't' } })) }]);
}

/** A configuration whose single-segment keys and values are the given pairs. */
function configOfPairs(pairs: ReadonlyArray<readonly [string, string]>): MergedConfig {
  return mergeSources([{ name: 't', entries: pairs.map(([k, value]) => ({ path: [k], value, origin: { document: 't' } })) }]);
}

/** Sources `file` with `shell` (`set -a; . file`) and returns the environment it ends with. */
function sourced(shell: 'sh' | 'bash', text: string): Map<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'env-'));
  writeFileSync(join(dir, 'out.env'), text);
  const out = execFileSync(shell, ['-c', 'set -a; . ./out.env; env -0'], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const env = new Map<string, string>();
  for (const item of out.toString('utf8').split('\0')) {
    const eq = item.indexOf('=');
    if (eq > 0) env.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return env;
}

describe('case 09: java.util.Properties reads the rendered properties back', () => {
  it('from the bytes and through a UTF-8 reader', () => {
    const config = configOf(
      '"odd key:x=y": v\nmotd: "line1\\nline2"\nindent: "  two leading spaces"\nwin-path: \'C:\\new\\table\'\nprice: "5€ #1 !"\nemoji: "ok 😀"\n',
    );
    const [read] = javaLoad([render(config, 'properties')]);
    const expected = { emoji: 'ok 😀', indent: '  two leading spaces', motd: 'line1\nline2', 'odd key:x=y': 'v', price: '5€ #1 !', 'win-path': 'C:\\new\\table' };
    expect(read?.bytes).toEqual(expected);
    expect(read?.utf8).toEqual(expected);
  });

  it('for random awkward keys and values (fast-check, 20 files of up to 60 keys)', () => {
    const configs = fc.sample(fc.uniqueArray(fc.tuple(awkward.filter((k) => k !== ''), awkward), { maxLength: 60, selector: ([k]) => k }), { numRuns: 20, seed: 42 });
    const merged = configs.map((pairs) => configOfPairs(pairs));
    const texts = merged.map((c) => render(c, 'properties'));
    for (const t of texts) expect(/^[\x20-\x7e\n]*$/.test(t)).toBe(true);
    const reads = javaLoad(texts);
    merged.forEach((c, i) => {
      const expected = Object.fromEntries(flatten(c));
      expect(reads[i]?.bytes).toEqual(expected);
      expect(reads[i]?.utf8).toEqual(expected);
    });
  });

  it('reads random .properties text exactly as Java does (fast-check, 40 files)', () => {
    const piece = fc.constantFrom('a', 'b', 'k.x', '[0]', '=', ':', ' ', '  ', '\t', '\f', '\\', '\\\\', '\n', '\r\n', '\r', '#', '!', 'é', '😀', '\\u00E9', '\\t', '\\n', '\\=', '\\ ', '\\:');
    const texts = fc.sample(fc.array(piece, { maxLength: 40 }).map((p) => p.join('')), { numRuns: 40, seed: 7 });
    const reads = javaLoad(texts);
    texts.forEach((text, i) => {
      const ours = Object.fromEntries(loadProperties(text, 't.properties').map((r) => [r.key, r.value]));
      expect(ours).toEqual(reads[i]?.utf8);
    });
  });
});

describe('case 10: env output sourced by sh and bash', () => {
  const config = configOf(
    'db:\n  password: "pa$$word#1 x"\nwin: \'C:\\new\\x\'\ngreeting: "it\'s \\"ok\\""\nempty: ""\nmixed: \'a\'\'b"c`d $(id)\'\ntls:\n  key: |\n    -----BEGIN PRIVATE KEY-----\n    MIIBfakeFAKEfake\n    -----END PRIVATE KEY-----\n',
  );
  const expected = {
    DB_PASSWORD: 'pa$$word#1 x',
    EMPTY: '',
    GREETING: 'it\'s "ok"',
    MIXED: 'a\'b"c`d $(id)',
    TLS_KEY: '-----BEGIN PRIVATE KEY-----\nMIIBfakeFAKEfake\n-----END PRIVATE KEY-----\n',
    WIN: 'C:\\new\\x',
  };

  it.each(['sh', 'bash'] as const)('%s gives every value byte for byte', (shell) => {
    const env = sourced(shell, render(config, 'env'));
    for (const [name, value] of Object.entries(expected)) expect(env.get(name)).toBe(value);
  });

  it.each(['sh', 'bash'] as const)('%s printenv NAME prints the value', (shell) => {
    const dir = mkdtempSync(join(tmpdir(), 'env-'));
    writeFileSync(join(dir, 'out.env'), render(config, 'env'));
    for (const [name, value] of Object.entries(expected)) {
      const out = execFileSync(shell, ['-c', `set -a; . ./out.env; printenv ${name}`], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toBe(`${value}\n`);
    }
  });

  it('dotenv reads the dotenv output back', () => {
    expect(dotenv.parse(render(config, 'dotenv'))).toEqual(expected);
  });
});

describe('fast-check: env and dotenv for awkward values', () => {
  const values = fc.array(awkward.map((s) => s.replace(/\0/g, '')), { minLength: 1, maxLength: 100 });

  it.each(['sh', 'bash'] as const)('%s sources every value byte for byte (100 values per file)', (shell) => {
    fc.assert(
      fc.property(values, (vals) => {
        const env = sourced(shell, render(configOfValues(vals), 'env'));
        vals.forEach((v, i) => expect(env.get(`V${i}`)).toBe(v));
      }),
      { numRuns: 25, seed: 1 },
    );
  });

  it('dotenv reads back every value it renders, and refuses only with CFG_ERR_UNRENDERABLE', () => {
    let rendered = 0;
    fc.assert(
      fc.property(values, (vals) => {
        const ok = vals.filter((v) => {
          try {
            render(configOfValues([v]), 'dotenv');
            return true;
          } catch (e) {
            expect((e as { code: string }).code).toBe('CFG_ERR_UNRENDERABLE');
            expect((e as Error).message).not.toContain(v === '' ? '\u0000' : v);
            return false;
          }
        });
        rendered += ok.length;
        const parsed = dotenv.parse(render(configOfValues(ok), 'dotenv'));
        expect(parsed).toEqual(Object.fromEntries(ok.map((v, i) => [`V${i}`, v])));
      }),
      { numRuns: 200, seed: 2 },
    );
    expect(rendered).toBeGreaterThan(1000);
  });
});

describe('fast-check: YAML output reads back under YAML 1.2 and 1.1', () => {
  const words = fc.constantFrom('on', 'off', 'yes', 'NO', 'y', 'n', '~', 'null', 'Null', '0640', '0o640', '0x1F', '1e3', '1_000', '1:30', '2010-09-09', '2001-12-14t21:59:43.10-05:00', '.inf', '-.NaN', '<<', '=', 'true', 'False', '', ' ', '- a', '? x', '#', '&a', '*a', '!tag', '%x', '@', '`', '|', '>', '"', "'");
  const text = fc.oneof(words, awkward);

  it('for random awkward keys and values', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(text.filter((k) => k !== ''), text), { maxLength: 30, selector: ([k]) => k }), (pairs) => {
        const config = configOfPairs(pairs);
        const out = render(config, 'yaml');
        const expected = Object.fromEntries(pairs);
        expect(parseYaml(out, { version: '1.2' })).toEqual(expected);
        expect(parseYaml(out, { version: '1.1' })).toEqual(expected);
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});
