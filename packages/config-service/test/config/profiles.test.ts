import { describe, expect, it } from 'vitest';
import { matchesProfiles } from '../../src/config/profiles.js';

describe('matchesProfiles (Spring Profiles.of)', () => {
  it.each([
    ['prod', ['prod'], true],
    ['prod', ['dev'], false],
    ['prod', [], false],
    ['!dev', ['prod'], true],
    ['!dev', ['dev'], false],
    ['!dev', [], true],
    ['prod & eu', ['prod', 'eu'], true],
    ['prod & eu', ['prod'], false],
    ['prod | qa', ['qa'], true],
    ['prod | qa', ['dev'], false],
    ['prod & (eu | us)', ['prod', 'us'], true],
    ['prod & (eu | us)', ['us'], false],
    ['(prod & eu) | dev', ['dev'], true],
    ['!(prod & eu)', ['prod'], true],
    ['!(prod & eu)', ['prod', 'eu'], false],
    ['a & b & c', ['a', 'b', 'c'], true],
    ['  prod  ', ['prod'], true],
    ['Prod', ['prod'], false],
  ] as const)('%s with %j is %s', (expr, active, expected) => {
    expect(matchesProfiles(expr, active)).toBe(expected);
  });

  it.each(['', '   ', 'a & b | c', 'a |', '& a', '()', 'a & !'])('refuses malformed %j', (expr) => {
    try {
      matchesProfiles(expr, ['a']);
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('CFG_ERR_DOCUMENT_INVALID');
      expect((e as Error).message).toBe('malformed profile expression');
    }
  });
});
