import { describe, expect, it } from 'vitest';
import { redactSecrets, splitCredentials } from '../../src/git/credentials.js';

describe('splitCredentials', () => {
  it('takes user and password out of the URL', () => {
    expect(splitCredentials('https://deploy-bot:S3cr3t-T0ken-xyz@git.example.test/platform/config.git')).toEqual({
      url: 'https://git.example.test/platform/config.git',
      username: 'deploy-bot',
      password: 'S3cr3t-T0ken-xyz',
    });
  });

  it('percent-decodes the password', () => {
    expect(splitCredentials('https://deploy-bot:p%40ss%2Fw0rd@git.example.test:8443/c.git')).toEqual({
      url: 'https://git.example.test:8443/c.git',
      username: 'deploy-bot',
      password: 'p@ss/w0rd',
    });
  });

  it('handles a token as user name only, and an empty user', () => {
    expect(splitCredentials('https://ghp_TOKEN123@github.example/o/r.git')).toEqual({
      url: 'https://github.example/o/r.git',
      username: 'ghp_TOKEN123',
    });
    expect(splitCredentials('https://:tok@h/r.git')).toEqual({ url: 'https://h/r.git', password: 'tok' });
  });

  it('leaves a URL without userinfo unchanged (an @ in the path is not userinfo)', () => {
    expect(splitCredentials('https://git.example.test/a@b/c.git')).toEqual({ url: 'https://git.example.test/a@b/c.git' });
    expect(splitCredentials('http://127.0.0.1:8080/config.git')).toEqual({ url: 'http://127.0.0.1:8080/config.git' });
  });
});

describe('redactSecrets', () => {
  it('replaces the secret, its URL-encoded forms and base64(user:password)', () => {
    const secrets = ['p@ss/w0rd', 'deploy-bot:p@ss/w0rd'];
    const b64 = Buffer.from('deploy-bot:p@ss/w0rd').toString('base64');
    const text = `a p@ss/w0rd b p%40ss%2Fw0rd c p%40ss%2fw0rd d Basic ${b64} e`;
    expect(redactSecrets(text, secrets)).toBe('a *** b *** c *** d Basic *** e');
  });

  it('replaces any URL userinfo', () => {
    expect(redactSecrets('GET https://u:whatever@h/x.git failed; see http://a@b/c', [])).toBe(
      'GET https://***@h/x.git failed; see http://***@b/c',
    );
  });

  it('replaces the longer secret first and ignores empty secrets', () => {
    expect(redactSecrets('tok tok-long', ['', 'tok', 'tok-long'])).toBe('*** ***');
  });
});
