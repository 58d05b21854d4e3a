import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ConfigInitError, ERROR_EXIT_CODES, exitCodeFor, FetchError, PublishError, toConfigInitError, UsageError, type ErrorCode } from '../src/errors.js';

const DOC = new URL('../../../docs/config-init.md', import.meta.url);

describe('error catalogue', () => {
  it('maps every code to a sysexits code of SPEC §7 (or 70 for bugs, 126/127 for exec as shells do)', () => {
    for (const exit of Object.values(ERROR_EXIT_CODES)) expect([64, 65, 66, 69, 70, 73, 77, 126, 127]).toContain(exit);
  });

  it.each<[string, ConfigInitError, number]>([
    ['usage', new UsageError('x'), 64],
    ['bad request', new FetchError('CFG_INIT_ERR_BAD_REQUEST', 'x', { status: 400 }), 64],
    ['unrenderable', new FetchError('CFG_INIT_ERR_UNRENDERABLE', 'x', { status: 422 }), 65],
    ['empty', new FetchError('CFG_INIT_ERR_EMPTY_CONFIG', 'x'), 65],
    ['not found', new FetchError('CFG_INIT_ERR_NOT_FOUND', 'x', { status: 404 }), 66],
    ['unavailable', new FetchError('CFG_INIT_ERR_UNAVAILABLE', 'x'), 69],
    ['cannot write', new PublishError('x'), 73],
    ['not authorized', new FetchError('CFG_INIT_ERR_NOT_AUTHORIZED', 'x', { status: 403 }), 77],
    ['unsafe path', new FetchError('CFG_INIT_ERR_UNSAFE_PATH', 'x'), 65],
    ['refused env', new ConfigInitError('CFG_INIT_ERR_REFUSED_ENV', 'x'), 65],
    ['command not executable', new ConfigInitError('CFG_INIT_ERR_COMMAND_NOT_EXECUTABLE', 'x'), 126],
    ['command not found', new ConfigInitError('CFG_INIT_ERR_COMMAND_NOT_FOUND', 'x'), 127],
  ])('%s', (_name, err, exit) => {
    expect(exitCodeFor(err)).toBe(exit);
  });

  it('treats anything unexpected as a bug (70)', () => {
    expect(exitCodeFor(new TypeError('boom'))).toBe(70);
    expect(toConfigInitError(new TypeError('boom')).code).toBe('CFG_INIT_ERR_INTERNAL');
  });

  it('documents every code with its exit code in docs/config-init.md', async () => {
    const doc = await readFile(DOC, 'utf8');
    for (const [code, exit] of Object.entries(ERROR_EXIT_CODES) as [ErrorCode, number][]) {
      expect(doc, code).toMatch(new RegExp(`\\| \`${code}\` \\| ${exit} \\|`));
    }
  });
});
