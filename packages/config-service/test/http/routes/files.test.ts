import { describe, expect, it } from 'vitest';
import { fileMediaType, parseFilePath } from '../../../src/http/routes/files.js';

describe('parseFilePath', () => {
  it.each([
    ['logback.xml', ['logback.xml']],
    ['conf/app.conf', ['conf', 'app.conf']],
    ['..%2Fx', ['..%2Fx']],
    ['.hidden', ['.hidden']],
    ['a..b', ['a..b']],
  ])('%j → %j', (raw, segments) => expect(parseFilePath(raw)).toEqual(segments));

  it.each(['', '..', '../x', 'a/../b', './a', 'a/.', 'a//b', '/a', 'a/', 'a\\b', '..\\x', 'a\u0000b', 'a\nb', 'a\u007fb', 'x'.repeat(1025)])(
    'refuses %j with CFG_ERR_INVALID_PATH',
    (raw) => {
      expect(() => parseFilePath(raw)).toThrow(expect.objectContaining({ code: 'CFG_ERR_INVALID_PATH', statusCode: 400 }));
    },
  );

  it('never quotes the path in the message', () => {
    expect(() => parseFilePath('../SECRET')).toThrow(expect.not.objectContaining({ message: expect.stringContaining('SECRET') }));
  });
});

describe('fileMediaType', () => {
  it.each([
    ['logback.xml', 'application/xml'],
    ['A.JSON', 'application/json'],
    ['app.yml', 'application/yaml'],
    ['app.properties', 'text/x-java-properties'],
    ['bin.dat', 'application/octet-stream'],
    ['Makefile', 'application/octet-stream'],
    ['.bashrc', 'application/octet-stream'],
  ])('%s → %s', (name, type) => expect(fileMediaType(name)).toBe(type));
});
