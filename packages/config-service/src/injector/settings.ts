/**
 * Settings of `config-service injector` (SPEC §7.1), a program of its own with its own file
 * (`injector.yml`): one TypeBox schema with its defaults, read from the file and then from
 * `CONFIG_SERVICE_INJECTOR_*` environment variables (`configInit.image` →
 * `CONFIG_SERVICE_INJECTOR_CONFIG_INIT_IMAGE`), validated once at start-up.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { CFG_ERR_SETTINGS_INVALID } from '../errors.js';
import { listEnvSettings } from '../settings/load.js';

/** The formats config-init can publish (docs/config-init.md). */
export const INIT_FORMATS = ['json', 'yaml', 'properties', 'env', 'dotenv'] as const;

const Quantities = Type.Record(Type.String(), Type.String());

export const InjectorSettingsSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
        tls: Type.Object(
          {
            cert: Type.String({ description: 'Webhook server certificate chain (PEM); reloaded when it changes' }),
            key: Type.String({ description: 'Its private key (PEM)' }),
            clientCa: Type.String({ description: 'CA bundle beside the certificate (cert-manager ca.crt); client certificates are not required' }),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    annotationPrefix: Type.String({
      default: 'config-service.example',
      pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$',
      description: 'Annotations read are <prefix>/app, /profiles, /formats, /mount-path, /ref; <prefix>/injected marks an injected pod',
    }),
    configInit: Type.Object(
      {
        image: Type.String({ minLength: 1, description: 'config-init image of the init container' }),
        imagePullPolicy: Type.Union([Type.Literal('Always'), Type.Literal('IfNotPresent'), Type.Literal('Never')], { default: 'IfNotPresent' }),
        serverUrl: Type.String({ pattern: '^https://', description: "config-service API URL as pods reach it (CONFIG_INIT_SERVER)" }),
        logFormat: Type.Union([Type.Literal('json'), Type.Literal('text')], { default: 'json' }),
        healthPort: Type.Integer({ minimum: 1, maximum: 65535, default: 8787, description: "Port of the watch sidecar's /health/live and /health/ready (CONFIG_INIT_HEALTH_PORT; shared with the pod's other containers, so pick one no application uses)" }),
        resources: Type.Object(
          { requests: Type.Optional(Quantities), limits: Type.Optional(Quantities) },
          { additionalProperties: false, default: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '128Mi' } } },
        ),
      },
      { additionalProperties: false },
    ),
    identity: Type.Object(
      {
        source: Type.Union([Type.Literal('csi'), Type.Literal('secret')], {
          default: 'csi',
          description: "csi: a CSI volume (cert-manager csi-driver-spiffe); secret: the Secret named by 'secretName'",
        }),
        csiDriver: Type.String({ default: 'spiffe.csi.cert-manager.io' }),
        secretName: Type.String({ default: '{app}-config-client-tls', description: "Secret holding tls.crt, tls.key, ca.crt; '{app}' is replaced by the application name" }),
        mountPath: Type.String({ default: '/var/run/config-service/identity', pattern: '^/' }),
      },
      { additionalProperties: false, default: {} },
    ),
    defaults: Type.Object(
      {
        mountPath: Type.String({ default: '/config', pattern: '^/', description: 'Where the configuration is mounted when the pod does not say' }),
        formats: Type.Array(Type.Union(INIT_FORMATS.map((f) => Type.Literal(f))), { minItems: 1, default: ['properties'] }),
        fsGroup: Type.Integer({ minimum: 1, default: 10001, description: 'Pod fsGroup set when the pod has none, so every container reads the 0640 files' }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object({ level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)), { default: 'info' }) }, { additionalProperties: false, default: {} }),
  },
  { additionalProperties: false },
);

export type InjectorSettings = Static<typeof InjectorSettingsSchema>;

/** Inputs of {@link loadInjectorSettings}. */
export interface LoadInjectorSettingsInput {
  /** Path of `injector.yml`; relative TLS paths resolve against its folder. */
  file?: string;
  /** Environment to read `CONFIG_SERVICE_INJECTOR_*` from. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Settings given as an object (tests); merged over the file. */
  overrides?: Record<string, unknown>;
}

function setPath(target: Record<string, unknown>, p: readonly string[], value: unknown): void {
  let node = target;
  for (const seg of p.slice(0, -1)) {
    if (typeof node[seg] !== 'object' || node[seg] === null) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  }
  node[p.at(-1)!] = value;
}

/**
 * Loads and validates the injector settings: defaults < file < overrides < environment.
 * @returns the settings, TLS paths made absolute.
 * @throws CFG_ERR_SETTINGS_INVALID listing every bad setting by path (and variable name).
 */
export function loadInjectorSettings(input: LoadInjectorSettingsInput): InjectorSettings {
  let raw: Record<string, unknown> = {};
  if (input.file) {
    let text: string;
    try {
      text = readFileSync(input.file, 'utf8');
    } catch (err) {
      throw new CFG_ERR_SETTINGS_INVALID(`  --config: cannot read ${input.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      raw = (parseYaml(text, { uniqueKeys: true }) as Record<string, unknown> | null) ?? {};
    } catch (err) {
      throw new CFG_ERR_SETTINGS_INVALID(`  ${input.file}: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new CFG_ERR_SETTINGS_INVALID(`  ${input.file}: the top level must be a map`);
  }
  if (input.overrides) raw = { ...raw, ...structuredClone(input.overrides) };
  const problems: string[] = [];
  const fromEnv = new Map<string, string>();
  for (const setting of listEnvSettings(InjectorSettingsSchema, ['injector'])) {
    const text = input.env?.[setting.name];
    if (text === undefined) continue;
    const p = setting.path.slice(1);
    let value: unknown = text;
    if (setting.structured) {
      try {
        value = parseYaml(text);
      } catch {
        problems.push(`  ${p.join('.')} (from ${setting.name}): not valid YAML or JSON`);
        continue;
      }
    }
    setPath(raw, p, value);
    fromEnv.set(`/${p.join('/')}`, setting.name);
  }
  const value = Value.Default(InjectorSettingsSchema, Value.Convert(InjectorSettingsSchema, raw));
  for (const error of Value.Errors(InjectorSettingsSchema, value)) {
    const envName = [...fromEnv.entries()].find(([p]) => error.path === p || error.path.startsWith(`${p}/`))?.[1];
    problems.push(`  ${error.path.slice(1).replaceAll('/', '.') || '(top level)'}: ${error.message}${envName ? ` (from ${envName})` : ''}`);
  }
  if (problems.length > 0) throw new CFG_ERR_SETTINGS_INVALID([...new Set(problems)].join('\n'));
  const settings = value as InjectorSettings;
  const base = input.file ? path.dirname(path.resolve(input.file)) : process.cwd();
  const abs = (p: string) => path.resolve(base, p);
  const tls = settings.server.tls;
  return { ...settings, server: { ...settings.server, tls: { cert: abs(tls.cert), key: abs(tls.key), clientCa: abs(tls.clientCa) } } };
}
