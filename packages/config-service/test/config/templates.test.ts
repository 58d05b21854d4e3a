/**
 * Templates (issue 12, SPEC §5.1): Liquid over the merged configuration, strict variables
 * and filters, partials only from the templates handed in, bounds, refused secrets, and
 * errors that name template, line, column and key, never a value.
 */
import { describe, expect, it } from 'vitest';
import { isPartial, renderTemplate, templateData, type TemplateFile } from '../../src/config/templates.js';
import { configOf } from './helpers.js';

const YAML = [
  'db:',
  '  host: db.internal',
  '  port: 5432',
  '  ratio: 1.50',
  '  big: 123456789012345678901',
  '  password: "{cipher}AAAA-not-a-real-cipher"',
  'servers:',
  '  - name: a',
  '  - name: b',
  'labels:',
  '  "[app.example.com/team]": pay',
  'feature:',
  '  on: true',
  '',
].join('\n');

function files(map: Record<string, string>): Map<string, TemplateFile> {
  return new Map(Object.entries(map).map(([p, text]) => [p, { text, source: `orders/templates/${p}` }]));
}

type Thrown = Error & { code?: string; data?: Record<string, unknown> };
async function rejection(p: Promise<unknown>): Promise<Thrown> {
  try {
    await p;
  } catch (e) {
    return e as Thrown;
  }
  throw new Error('expected a rejection');
}

const isSecret = (t: string): boolean => t.startsWith('{cipher}');

describe('renderTemplate', () => {
  const data = templateData(configOf(YAML));

  it('renders the nested tree: maps, lists, bracketed keys, exact numbers, booleans, loops and filters', async () => {
    const out = await renderTemplate(
      'app.conf',
      files({ 'app.conf': 'host={{ db.host }}:{{ db.port }}\nratio={{ db.ratio }} big={{ db.big }} next={{ db.port | plus: 1 }}\n{% for s in servers %}server {{ s.name | upcase }};\n{% endfor %}team={{ labels["app.example.com/team"] }} on={{ feature.on }}\n' }),
      data,
    );
    expect(out).toBe('host=db.internal:5432\nratio=1.50 big=123456789012345678901 next=5433\nserver A;\nserver B;\nteam=pay on=true\n');
  });

  it('includes partials by their path from the templates root; a partial shares the variables', async () => {
    const out = await renderTemplate('nginx.conf', files({ 'nginx.conf': 'a\n{% include "_partials/up.conf" %}b\n', '_partials/up.conf': 'upstream {{ db.host }};\n' }), data);
    expect(out).toBe('a\nupstream db.internal;\nb\n');
    expect(isPartial('_partials/up.conf')).toBe(true);
    expect(isPartial('conf/_x')).toBe(true);
    expect(isPartial('nginx.conf')).toBe(false);
  });

  it('a missing key is 422 naming template, line, column (of the variable) and key', async () => {
    const err = await rejection(renderTemplate('app.conf', files({ 'app.conf': 'ok\nhost={{ db.hostname }}\n' }), data));
    expect(err.code).toBe('CFG_ERR_TEMPLATE_INVALID');
    expect(err.message).toBe("orders/templates/app.conf:2:9: undefined variable 'db.hostname' (no such key in the configuration)");
    expect(err.data).toMatchObject({ template: 'orders/templates/app.conf', line: 2, column: 9, kind: 'variable', key: 'db.hostname' });
  });

  it('a missing key inside a partial names the partial and its line', async () => {
    const err = await rejection(renderTemplate('main.conf', files({ 'main.conf': 'x\n{% include "_p" %}\n', _p: '\n\n  {{ nope.nope }}' }), data));
    // The first segment that has no value is named (`nope`), at its column.
    expect(err.message).toBe("orders/templates/_p:3:6: undefined variable 'nope' (no such key in the configuration)");
  });

  it('optional keys: conditions and the default filter may test a missing key; output of one is still refused', async () => {
    const out = await renderTemplate('a.conf', files({ 'a.conf': '{% if db.user %}user={{ db.user }}{% else %}no user{% endif %}\nuser={{ db.user | default: "app" }}\n{% unless tls %}plain{% endunless %}\n' }), data);
    expect(out).toBe('no user\nuser=app\nplain\n');
    const err = await rejection(renderTemplate('a.conf', files({ 'a.conf': '{% if db.user %}x{% endif %}{{ db.user }}' }), data));
    expect(err.data).toMatchObject({ kind: 'variable', key: 'db.user' });
  });

  it('a syntax error and an unknown filter are 422 naming template and line', async () => {
    const syntax = await rejection(renderTemplate('a.conf', files({ 'a.conf': 'a\n{% if db.host %}\nb\n' }), data));
    expect(syntax.code).toBe('CFG_ERR_TEMPLATE_INVALID');
    expect(syntax.message).toMatch(/^orders\/templates\/a\.conf:2:1: syntax error: tag \{% if db\.host %\} not closed$/);
    const filter = await rejection(renderTemplate('a.conf', files({ 'a.conf': '\n{{ db.host | shout }}' }), data));
    expect(filter.message).toBe("orders/templates/a.conf:2:1: undefined filter 'shout'");
    expect(filter.data).toMatchObject({ kind: 'filter', key: 'shout' });
  });

  it('include and render reach only the templates handed in: .. and unknown names are 422', async () => {
    for (const name of ['../application.yml', '/etc/passwd', '_missing']) {
      const err = await rejection(renderTemplate('a.conf', files({ 'a.conf': `{% include "${name}" %}` }), data));
      expect(err.code).toBe('CFG_ERR_TEMPLATE_INVALID');
      expect(err.data).toMatchObject({ kind: 'partial' });
      expect(err.message).toContain('names no file of the templates folders');
    }
  });

  it('bounds: output size, render time, template size', async () => {
    const limits = { renderTimeoutMs: 200, maxOutputBytes: 4096, maxTemplateBytes: 2048 };
    const big = await rejection(renderTemplate('a.conf', files({ 'a.conf': '{% for i in (1..10000) %}xxxxxxxxxx{% endfor %}' }), data, limits));
    expect(big.message).toMatch(/^orders\/templates\/a\.conf:\d+:\d+: the output exceeds templates\.maxOutputBytes = 4096 bytes$/);
    const slow = await rejection(renderTemplate('a.conf', files({ 'a.conf': '{% for i in (1..100000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}' }), data, { ...limits, maxOutputBytes: 1e9 }));
    expect(slow.message).toMatch(/templates\.(renderTimeoutMs = 200 ms|maxOutputBytes)/);
    const large = await rejection(renderTemplate('a.conf', files({ 'a.conf': 'x'.repeat(3000) }), data, limits));
    expect(large.message).toBe('orders/templates/a.conf:1:1: larger than templates.maxTemplateBytes = 2048 bytes');
  });

  it('a secret: plaintext data for an allowed caller; refused (secret_reference, naming the key) when the caller may not read secrets', async () => {
    const allowed = templateData(configOf(YAML.replace('{cipher}AAAA-not-a-real-cipher', 'plain-s3cret')));
    expect(await renderTemplate('a.conf', files({ 'a.conf': 'pw={{ db.password }}' }), allowed)).toBe('pw=plain-s3cret');
    const refused = templateData(configOf(YAML), { isSecret });
    const err = await rejection(renderTemplate('a.conf', files({ 'a.conf': 'host={{ db.host }}\npw={{ db.password }}' }), refused));
    expect(err.code).toBe('CFG_ERR_SECRET_REFERENCE');
    expect(err.message).toBe("orders/templates/a.conf:2:4: the template puts the secret at key 'db.password' into its output, which is served only to callers allowed secrets:read");
    expect(err.message).not.toContain('AAAA');
    // A template that does not output the secret renders.
    expect(await renderTemplate('a.conf', files({ 'a.conf': 'host={{ db.host }}' }), refused)).toBe('host=db.internal');
  });
});
