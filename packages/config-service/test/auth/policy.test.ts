import { describe, expect, it } from 'vitest';
import {
  authorize,
  checkPolicySettings,
  matchesGlob,
  mayHoldScope,
  readableApps,
  type AccessRequest,
  type Decision,
  type PolicySettings,
  type Principal,
} from '../../src/auth/policy.js';

const OWN_ONLY: PolicySettings = { defaultOwnApp: true, grants: [] };
const NO_DEFAULT: PolicySettings = { defaultOwnApp: false, grants: [] };
const RULES: PolicySettings = {
  defaultOwnApp: false,
  grants: [
    { subjects: ['*'], apps: ['$self'], profiles: ['dev', 'test'], scopes: ['config:read', 'secrets:read'] },
    { subjects: ['*'], apps: ['$self'], profiles: ['prod'], scopes: ['config:read'] },
    { subjects: ['ops-*'], apps: ['*'], scopes: ['config:read', 'audit:read'] },
    { subjects: ['gateway'], apps: ['orders', 'billing-?'], profiles: ['prod*'], scopes: ['config:read'] },
    { subjects: ['ci'], kinds: ['jwt'], apps: ['*'], scopes: ['config:read', 'encrypt'] },
  ],
};

const cert = (subject: string): Principal => ({ kind: 'certificate', subject });
const jwt = (subject: string, scopes: Principal['scopes'], apps?: string[]): Principal => ({
  kind: 'jwt',
  subject,
  scopes,
  ...(apps ? { apps } : {}),
});

describe('authorize', () => {
  it.each<[string, PolicySettings, Principal, AccessRequest, Decision]>([
    // certificate identities, default policy
    ['own app, config', OWN_ONLY, cert('orders'), { scope: 'config:read', app: 'orders', profiles: ['dev', 'prod'] }, { allowed: true, rule: 'default:own-app' }],
    ['own app, secrets', OWN_ONLY, cert('orders'), { scope: 'secrets:read', app: 'orders', profiles: ['prod'] }, { allowed: true, rule: 'default:own-app' }],
    ['other app', OWN_ONLY, cert('orders'), { scope: 'config:read', app: 'billing', profiles: ['dev'] }, { allowed: false, rule: 'no-grant-for-app' }],
    ['own app, encrypt is not a default', OWN_ONLY, cert('orders'), { scope: 'encrypt', app: 'orders' }, { allowed: false, rule: 'no-grant-for-app' }],
    ['audit without grant', OWN_ONLY, cert('orders'), { scope: 'audit:read' }, { allowed: false, rule: 'no-grant-for-scope:audit:read' }],
    ['default off', NO_DEFAULT, cert('orders'), { scope: 'config:read', app: 'orders' }, { allowed: false, rule: 'no-grant-for-app' }],
    // profile restriction through $self grants
    ['$self dev', RULES, cert('orders'), { scope: 'config:read', app: 'orders', profiles: ['dev'] }, { allowed: true, rule: 'grant[0]' }],
    ['$self prod config', RULES, cert('orders'), { scope: 'config:read', app: 'orders', profiles: ['prod'] }, { allowed: true, rule: 'grant[1]' }],
    ['$self prod secrets', RULES, cert('orders'), { scope: 'secrets:read', app: 'orders', profiles: ['prod'] }, { allowed: false, rule: 'profile-not-granted:prod' }],
    ['profiles from two grants', RULES, cert('orders'), { scope: 'config:read', app: 'orders', profiles: ['dev', 'prod'] }, { allowed: true, rule: 'grant[0]+grant[1]' }],
    ['one profile not granted', RULES, cert('orders'), { scope: 'config:read', app: 'orders', profiles: ['dev', 'staging', 'prod'] }, { allowed: false, rule: 'profile-not-granted:staging' }],
    ['no profiles asked', RULES, cert('orders'), { scope: 'config:read', app: 'orders' }, { allowed: true, rule: 'grant[0]' }],
    ['$self is not other apps', RULES, cert('orders'), { scope: 'config:read', app: 'billing', profiles: ['dev'] }, { allowed: false, rule: 'no-grant-for-app' }],
    // grants to more apps
    ['ops reads any app', RULES, cert('ops-alice'), { scope: 'config:read', app: 'billing', profiles: ['prod'] }, { allowed: true, rule: 'grant[2]' }],
    ['ops reads the audit log', RULES, cert('ops-alice'), { scope: 'audit:read' }, { allowed: true, rule: 'grant[2]' }],
    ['ops has no secrets', RULES, cert('ops-alice'), { scope: 'secrets:read', app: 'billing' }, { allowed: false, rule: 'no-grant-for-app' }],
    ['subject glob is anchored', RULES, cert('xops-alice'), { scope: 'audit:read' }, { allowed: false, rule: 'no-grant-for-scope:audit:read' }],
    ['gateway ? glob', RULES, cert('gateway'), { scope: 'config:read', app: 'billing-1', profiles: ['prod-eu'] }, { allowed: true, rule: 'grant[3]' }],
    ['gateway ? is one character', RULES, cert('gateway'), { scope: 'config:read', app: 'billing-10', profiles: ['prod'] }, { allowed: false, rule: 'no-grant-for-app' }],
    ['gateway profile glob', RULES, cert('gateway'), { scope: 'config:read', app: 'orders', profiles: ['dev'] }, { allowed: false, rule: 'profile-not-granted:dev' }],
    ['gateway own app', RULES, cert('gateway'), { scope: 'config:read', app: 'gateway', profiles: ['test'] }, { allowed: true, rule: 'grant[0]' }],
    ['jwt-only grant does not serve certificates', RULES, cert('ci'), { scope: 'encrypt' }, { allowed: false, rule: 'no-grant-for-scope:encrypt' }],
    // JWT: the token decides when no grant names kind jwt
    ['jwt scope and apps', OWN_ONLY, jwt('ci', ['config:read'], ['orders-*']), { scope: 'config:read', app: 'orders-eu', profiles: ['prod'] }, { allowed: true, rule: 'jwt:claims' }],
    ['jwt app outside apps', OWN_ONLY, jwt('ci', ['config:read'], ['orders-*']), { scope: 'config:read', app: 'billing' }, { allowed: false, rule: 'token-apps-exclude-app' }],
    ['jwt scope missing', OWN_ONLY, jwt('ci', ['config:read'], ['*']), { scope: 'secrets:read', app: 'orders' }, { allowed: false, rule: 'token-scope-missing:secrets:read' }],
    ['jwt admin is not config:read', OWN_ONLY, jwt('ci', ['admin'], ['*']), { scope: 'config:read', app: 'orders' }, { allowed: false, rule: 'token-scope-missing:config:read' }],
    ['jwt without apps claim', OWN_ONLY, jwt('ci', ['config:read']), { scope: 'config:read', app: 'orders' }, { allowed: false, rule: 'token-apps-exclude-app' }],
    ['jwt app-less request needs *', OWN_ONLY, jwt('ci', ['audit:read'], ['orders-*']), { scope: 'audit:read' }, { allowed: false, rule: 'token-apps-not-all-apps' }],
    ['jwt app-less request with *', OWN_ONLY, jwt('ci', ['audit:read'], ['*']), { scope: 'audit:read' }, { allowed: true, rule: 'jwt:claims' }],
    ['jwt $self', OWN_ONLY, jwt('orders', ['config:read'], ['$self']), { scope: 'config:read', app: 'orders' }, { allowed: true, rule: 'jwt:claims' }],
    ['jwt gets no own-app default', OWN_ONLY, jwt('orders', [], ['*']), { scope: 'config:read', app: 'orders' }, { allowed: false, rule: 'token-scope-missing:config:read' }],
    // JWT: grants with kinds ['jwt'] restrict further
    ['jwt claims and grant', RULES, jwt('ci', ['config:read'], ['orders-*']), { scope: 'config:read', app: 'orders-eu', profiles: ['prod'] }, { allowed: true, rule: 'jwt:claims+grant[4]' }],
    ['jwt encrypt with grant', RULES, jwt('ci', ['encrypt'], ['*']), { scope: 'encrypt' }, { allowed: true, rule: 'jwt:claims+grant[4]' }],
    ['jwt claims but no grant for the subject', RULES, jwt('bob', ['config:read'], ['*']), { scope: 'config:read', app: 'orders' }, { allowed: false, rule: 'no-grant-for-app' }],
    ['jwt claims but grant lacks the scope', RULES, jwt('ci', ['secrets:read'], ['*']), { scope: 'secrets:read', app: 'orders' }, { allowed: false, rule: 'no-grant-for-app' }],
    ['jwt grant but claims lack the app', RULES, jwt('ci', ['config:read'], ['billing']), { scope: 'config:read', app: 'orders' }, { allowed: false, rule: 'token-apps-exclude-app' }],
  ])('%s', (_label, policy, principal, request, decision) => {
    expect(authorize(policy, principal, request)).toEqual(decision);
  });
});

describe('readableApps', () => {
  it('keeps the apps the principal may read, in order', () => {
    const apps = ['orders', 'billing-1', 'billing-10', 'gateway', 'zeta'];
    expect(readableApps(RULES, cert('gateway'), apps)).toEqual(['orders', 'billing-1', 'gateway']);
    expect(readableApps(OWN_ONLY, cert('zeta'), apps)).toEqual(['zeta']);
    expect(readableApps(OWN_ONLY, cert('zeta'), apps, 'encrypt')).toEqual([]);
    expect(readableApps(OWN_ONLY, jwt('ci', ['config:read'], ['billing-*', 'zeta']), apps)).toEqual(['billing-1', 'billing-10', 'zeta']);
  });
});

describe('matchesGlob', () => {
  it.each<[string, string, boolean]>([
    ['*', '', true],
    ['*', 'anything/at.all', true],
    ['a*b', 'ab', true],
    ['a*b', 'axxb', true],
    ['a*b', 'axxbc', false],
    ['a*b*c', 'abxbxc', true],
    ['**', 'x', true],
    ['?', '', false],
    ['?', 'é', true],
    ['??', '😀', false],
    ['a.b', 'axb', false],
    ['a+b', 'a+b', true],
    ['(a|b)', 'a', false],
    ['[ab]', 'a', false],
    ['[ab]', '[ab]', true],
    ['^a$', '^a$', true],
    ['a*', 'A', false],
    ['*-prod', 'eu-west-prod', true],
    ['orders', 'orders-eu', false],
    ['orders', 'x-orders', false],
  ])('%j vs %j → %s', (glob, text, expected) => {
    expect(matchesGlob(glob, text)).toBe(expected);
  });
});

describe('checkPolicySettings', () => {
  it('accepts a good policy', () => {
    expect(() => checkPolicySettings(RULES)).not.toThrow();
    expect(() => checkPolicySettings(OWN_ONLY)).not.toThrow();
  });

  it.each<[string, PolicySettings, string]>([
    ['an unknown scope', { defaultOwnApp: true, grants: [{ subjects: ['*'], apps: ['*'], scopes: ['read' as never] }] }, "policy.grants[0].scopes[0]: unknown scope 'read' (one of config:read, secrets:read, audit:read, encrypt, admin)"],
    ['$self as a subject', { defaultOwnApp: true, grants: [{ subjects: ['$self'], apps: ['*'], scopes: ['config:read'] }] }, "policy.grants[0].subjects[0]: '$self' is only meaningful in apps"],
    ['empty apps', { defaultOwnApp: true, grants: [{ subjects: ['*'], apps: [], scopes: ['config:read'] }] }, 'policy.grants[0].apps: must be a non-empty list of globs'],
    ['an unknown kind', { defaultOwnApp: true, grants: [{ subjects: ['*'], apps: ['*'], scopes: ['admin'], kinds: ['user' as never] }] }, "policy.grants[0].kinds[0]: unknown kind 'user' (certificate or jwt)"],
    ['a non-boolean default', { defaultOwnApp: 'yes' as never, grants: [] }, 'policy.defaultOwnApp: must be true or false'],
  ])('refuses %s', (_label, policy, problem) => {
    expect(() => checkPolicySettings(policy)).toThrow(
      expect.objectContaining({ code: 'CFG_ERR_SETTINGS_INVALID', message: `Invalid service settings:\n${problem}` }),
    );
  });
});

describe('mayHoldScope (the POST /v1/encrypt gate before the body names the app)', () => {
  const ENCRYPT_ONE: PolicySettings = {
    defaultOwnApp: true,
    grants: [{ subjects: ['team-ci'], apps: ['orders'], scopes: ['encrypt'] }],
  };
  it.each<[string, PolicySettings, Principal, Decision]>([
    ['all apps: the full decision', RULES, jwt('ci', ['encrypt'], ['*']), { allowed: true, rule: 'jwt:claims+grant[4]' }],
    ['a certificate with a grant on one app', ENCRYPT_ONE, cert('team-ci'), { allowed: true, rule: 'some-app' }],
    ['a certificate without any encrypt grant', ENCRYPT_ONE, cert('orders'), { allowed: false, rule: 'no-grant-for-scope:encrypt' }],
    ['a token with the scope and some apps', OWN_ONLY, jwt('ci', ['encrypt'], ['inv*']), { allowed: true, rule: 'some-app' }],
    ['a token without the scope', OWN_ONLY, jwt('ci', ['config:read'], ['*']), { allowed: false, rule: 'token-scope-missing:encrypt' }],
    ['a token with no apps claim', OWN_ONLY, jwt('ci', ['encrypt']), { allowed: false, rule: 'token-apps-not-all-apps' }],
    ['a token whose JWT grants give no encrypt to it', RULES, jwt('other', ['encrypt'], ['orders']), { allowed: false, rule: 'token-apps-not-all-apps' }],
  ])('%s', (_name, policy, principal, want) => {
    expect(mayHoldScope(policy, principal, 'encrypt')).toEqual(want);
  });
});
