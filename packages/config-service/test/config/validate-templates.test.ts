/**
 * `config-service validate` renders every template for every profile it finds (issue 12)
 * and reports each problem at the template's file:line:column, with the profile sets it
 * was found for; a good template gives no finding.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateRepository } from '../../src/validate/repository.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function repo(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'validate-templates-'));
  dirs.push(dir);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), text);
  }
  return dir;
}

describe('validate: templates', () => {
  it('reports a missing key, a syntax error and an unknown filter as file:line, per profile set; a partial is not rendered alone', async () => {
    const dir = repo({
      'orders/application.yml': 'db:\n  host: h\n',
      'orders/application-prod.yml': 'db:\n  port: 5432\n',
      'orders/templates/good.conf': 'host={{ db.host }}\n{% include "_part" %}',
      'orders/templates/_part': 'partial {{ db.host }}\n',
      'orders/templates/port.conf': 'host={{ db.host }}\nport={{ db.port }}\n',
      'orders/templates/broken.conf': 'a\n{% if db.host %}\n',
      'orders/templates-prod/filter.conf': '{{ db.host | shout }}\n',
    });
    const report = await validateRepository(dir);
    expect(report.profileSets).toEqual([[], ['prod']]);
    const templates = report.findings.filter((f) => f.check === 'template');
    expect(templates.map((f) => [f.file, f.line, f.column, f.message, f.contexts])).toEqual([
      ['orders/templates-prod/filter.conf', 1, 1, "undefined filter 'shout'", ['orders/prod']],
      ['orders/templates/broken.conf', 2, 1, 'syntax error: tag {% if db.host %} not closed', ['orders', 'orders/prod']],
      ['orders/templates/port.conf', 2, 9, "undefined variable 'db.port' (no such key in the configuration)", ['orders']],
    ]);
    expect(templates.every((f) => f.severity === 'error')).toBe(true);
  });
});
