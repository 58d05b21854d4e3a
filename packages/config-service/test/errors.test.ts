import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, problemCode } from '../src/errors.js';

describe('error catalogue', () => {
  const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

  it.each(Object.entries(ERRORS))('%s: key equals code, and the code is documented with its problem code', (key, Ctor) => {
    const err = new Ctor('a', 'b');
    expect(err.code).toBe(key);
    expect(key.startsWith('CFG_ERR_')).toBe(true);
    expect(docs).toContain(`\`${key}\``);
    expect(docs).toContain(`\`${problemCode(key)}\``);
  });

  it('maps codes to stable problem codes', () => {
    expect(problemCode('CFG_ERR_APP_NOT_FOUND')).toBe('app_not_found');
    expect(problemCode('FST_ERR_SOMETHING')).toBe('internal');
  });
});
