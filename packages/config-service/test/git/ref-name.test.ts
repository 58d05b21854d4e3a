import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { assertValidRef, refFormatViolation } from '../../src/git/ref-name.js';

const VALID = [
  'main',
  'feature/pay-42',
  'orders#1.4-ab12cd',
  'v1.2.0',
  'refs/heads/feature/pay-42',
  'refs/tags/v1.2.0',
  'release/2024.01/hotfix-1',
  'a.b',
  'x.locked',
  'a@b',
  'dev@',
  'café',
  'abcd',
  '0123456789abcdef0123456789abcdef01234567',
];

const INVALID: Array<[string, string]> = [
  ['feature/../x', "contains '..'"],
  ['refs/heads/../../config', "contains '..'"],
  ['..', "contains '..'"],
  ['a//b', "contains '//'"],
  ['x.lock', "has a component ending with '.lock'"],
  ['a/x.lock/b', "has a component ending with '.lock'"],
  ['a@{1}', "contains '@{'"],
  ['@', "is '@' alone"],
  ['/main', "begins with '/'"],
  ['main/', "ends with '/'"],
  ['main.', "ends with '.'"],
  ['.hidden', "has a component beginning with '.'"],
  ['a/.b', "has a component beginning with '.'"],
  ['a b', 'contains a space'],
  ['a\tb', 'contains a control character'],
  ['a\u007fb', 'contains a control character'],
  ['a~1', "contains '~'"],
  ['a^', "contains '^'"],
  ['a:b', "contains ':'"],
  ['a?', "contains '?'"],
  ['a*', "contains '*'"],
  ['a[b', "contains '['"],
  ['a\\b', "contains '\\'"],
  ['', 'is empty'],
  ['x'.repeat(256), 'is longer than 255 bytes'],
  ['é'.repeat(128), 'is longer than 255 bytes'],
];

describe('assertValidRef', () => {
  it.each(VALID)('accepts %j', (ref) => {
    expect(refFormatViolation(ref)).toBeNull();
    expect(() => assertValidRef(ref)).not.toThrow();
  });

  it.each(INVALID)('refuses %j (%s) with CFG_ERR_INVALID_REF 400', (ref, rule) => {
    expect(refFormatViolation(ref)).toBe(rule);
    let caught: unknown;
    try {
      assertValidRef(ref);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'CFG_ERR_INVALID_REF', statusCode: 400 });
    const shown = ref.length > 255 ? `${ref.slice(0, 255)}…` : ref;
    expect((caught as Error).message).toBe(`Invalid ref: ${JSON.stringify(shown)} ${rule}`);
  });

  it('agrees with `git check-ref-format --allow-onelevel` on every sample (length rule aside)', () => {
    const samples = [...VALID, ...INVALID.map(([r]) => r)].filter((r) => r !== '' && Buffer.byteLength(r) <= 255);
    for (const ref of samples) {
      let gitOk = true;
      try {
        execFileSync('git', ['check-ref-format', '--allow-onelevel', ref], { stdio: 'ignore' });
      } catch {
        gitOk = false;
      }
      expect([ref, refFormatViolation(ref) === null]).toEqual([ref, gitOk]);
    }
  });
});
