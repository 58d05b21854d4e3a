/**
 * Application globs of repositories[] (src/git/app-patterns.ts): the exact overlap check,
 * and the template URL helpers used to route webhooks.
 */
import { describe, expect, it } from 'vitest';
import { matchesGlob } from '../../src/auth/policy.js';
import { appFromTemplateUrl, commonMatch, expandTemplate, findOverlap, normalizeRemoteUrl } from '../../src/git/app-patterns.js';

describe('commonMatch', () => {
  it.each([
    ['pay-*', '*-eu', 'pay-eu'],
    ['*', '*', 'x'],
    ['orders', 'orders', 'orders'],
    ['orders', 'order?', 'orders'],
    ['*x*', '*y*', 'xy'],
    ['a*b', '*b', 'ab'],
    ['team-a-*', '*', 'team-a-'],
  ])('%s and %s both match %s', (a, b, want) => {
    const got = commonMatch(a, b);
    expect(got).toBe(want);
    expect(matchesGlob(a, got!)).toBe(true);
    expect(matchesGlob(b, got!)).toBe(true);
  });

  it.each([
    ['pay-*', 'pai-*'],
    ['a?c', 'abd'],
    ['orders', 'payments'],
    ['a*b', '*c'],
    ['??', '???'],
    ['x*', 'y*'],
  ])('%s and %s share no name', (a, b) => {
    expect(commonMatch(a, b)).toBeUndefined();
  });
});

describe('findOverlap', () => {
  it('names the first pair of entries in order, with the globs and an example', () => {
    expect(findOverlap([['orders', 'pay-*'], ['billing'], ['*-eu']])).toEqual({ first: 0, second: 2, firstGlob: 'pay-*', secondGlob: '*-eu', example: 'pay-eu' });
    expect(findOverlap([['orders'], ['billing'], ['svc-*']])).toBeUndefined();
    expect(findOverlap([['*'], ['orders']])).toMatchObject({ first: 0, second: 1, example: 'orders' });
  });
});

describe('template URLs', () => {
  it('expands {app} and finds the app of a webhook URL, whatever its spelling', () => {
    const t = 'https://git.example/config/{app}.git';
    expect(expandTemplate(t, 'orders')).toBe('https://git.example/config/orders.git');
    expect(appFromTemplateUrl(t, 'https://GIT.example/config/Orders')).toBe('orders');
    expect(appFromTemplateUrl(t, 'https://git.example:443/config/orders.git/')).toBe('orders');
    expect(appFromTemplateUrl(t, 'https://git.example/other/orders.git')).toBeUndefined();
    expect(appFromTemplateUrl(t, 'https://git.example/config/a/b.git')).toBeUndefined();
    expect(appFromTemplateUrl(t, 'not a url')).toBeUndefined();
  });

  it('normalizes: no credentials, no .git, no trailing slash, lower case', () => {
    expect(normalizeRemoteUrl('https://u:p@Host:443/A/b.git/')).toBe('https://host/a/b');
    expect(normalizeRemoteUrl('http://h:8080/x?y=1#z')).toBe('http://h:8080/x');
    expect(normalizeRemoteUrl('ssh://git@h/x')).toBeUndefined();
  });
});
