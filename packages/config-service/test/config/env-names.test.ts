import { describe, expect, it } from 'vitest';
import { envName, ENV_NAME_PATTERN } from '../../src/config/env-names.js';
import { render } from '../../src/config/render.js';
import { configOf } from './helpers.js';

describe('envName', () => {
  it.each([
    ['server.port', 'SERVER_PORT'],
    ['my-app.hosts[0]', 'MY_APP_HOSTS_0'],
    ['servers[0].host', 'SERVERS_0_HOST'],
    ['spring.datasource.url', 'SPRING_DATASOURCE_URL'],
    ['annotations[app.example.com/source]', 'ANNOTATIONS_APP_EXAMPLE_COM_SOURCE'],
    ['1st.key', '_1ST_KEY'],
    ['trailing-', 'TRAILING'],
    ['-lead', '_LEAD'],
    ['café.naïve', 'CAF_NA_VE'],
  ])('standard %s → %s', (flat, expected) => {
    expect(envName(flat)).toBe(expected);
    expect(ENV_NAME_PATTERN.test(expected)).toBe(true);
  });

  it.each([
    ['feature-flags.new-checkout', 'FEATUREFLAGS_NEWCHECKOUT'],
    ['spring.main.log-startup-info', 'SPRING_MAIN_LOGSTARTUPINFO'],
    ['my.service[0].other', 'MY_SERVICE_0_OTHER'],
    ['my.list[1]', 'MY_LIST_1'],
  ])('spring %s → %s', (flat, expected) => {
    expect(envName(flat, 'spring')).toBe(expected);
  });

  it('gives no name for keys without letters or digits', () => {
    expect(envName('-.-')).toBeUndefined();
    expect(envName('_')).toBeUndefined();
  });
});

describe('case 11: env names and collisions', () => {
  const base = 'spring.datasource.url: jdbc:postgresql://db.example.com/orders\nservers:\n  - host: a.example.com\n  - host: b.example.com\nfeature-flags:\n  new-checkout: true\n';

  it('refuses two keys with one name, naming both keys and the name', () => {
    const config = configOf(`${base}  new_checkout: false\n`);
    for (const format of ['env', 'dotenv'] as const) {
      try {
        render(config, format);
        expect.unreachable();
      } catch (e) {
        const err = e as Error & { code: string; statusCode: number; data: unknown };
        expect(err.code).toBe('CFG_ERR_UNRENDERABLE');
        expect(err.statusCode).toBe(422);
        expect(err.message).toBe('keys "feature-flags.new-checkout" and "feature-flags.new_checkout" both map to the environment name FEATURE_FLAGS_NEW_CHECKOUT');
        expect(err.data).toEqual({ keys: ['feature-flags.new-checkout', 'feature-flags.new_checkout'] });
      }
    }
  });

  it('names every key without the collision', () => {
    expect(render(configOf(base), 'env')).toBe(
      "export FEATURE_FLAGS_NEW_CHECKOUT='true'\nexport SERVERS_0_HOST='a.example.com'\nexport SERVERS_1_HOST='b.example.com'\nexport SPRING_DATASOURCE_URL='jdbc:postgresql://db.example.com/orders'\n",
    );
  });

  it('follows Spring relaxed binding with the spring option', () => {
    expect(render(configOf(base), 'env', { envNaming: 'spring' })).toBe(
      "export FEATUREFLAGS_NEWCHECKOUT='true'\nexport SERVERS_0_HOST='a.example.com'\nexport SERVERS_1_HOST='b.example.com'\nexport SPRING_DATASOURCE_URL='jdbc:postgresql://db.example.com/orders'\n",
    );
  });

  it('refuses a key that forms no name, and NUL in a value, without quoting the value', () => {
    expect(() => render(configOf('"-": x\n'), 'env')).toThrow('key "-" has no letter or digit to form an environment name');
    expect(() => render(configOf('k: "sec\\0ret"\n'), 'env')).toThrow('the value of "k" contains a NUL character, which no environment variable can hold');
  });
});
