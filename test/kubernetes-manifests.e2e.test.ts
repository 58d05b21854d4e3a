/**
 * Every manifest under docs/kubernetes/ is valid for the Kubernetes API (and cert-manager's
 * and the Prometheus Operator's published CRD schemas), with no unknown fields; every
 * config-init container in them parses with config-init's own command-line parser; the
 * service.yml they carry loads with config-service's settings loader; and the identity
 * and Prometheus wiring issue 10 asked for is there.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPTION_TABLE, parseCommandLine } from 'config-init';
import { loadSettings } from 'config-service';
import { REPO_ROOT, loadManifests, validateKubeObject, type KubeObject } from '#helpers';

const DIR = path.join(REPO_ROOT, 'docs/kubernetes');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
const all = (): { file: string; obj: KubeObject }[] => FILES.flatMap((file) => loadManifests(path.join(DIR, file)).map((obj) => ({ file, obj })));

interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface Container {
  name: string;
  image?: string;
  restartPolicy?: string;
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  ports?: { name?: string; containerPort: number }[];
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: ({ name: string } & Record<string, unknown>)[];
  securityContext?: { fsGroup?: number };
}
const podSpec = (obj: KubeObject): PodSpec | undefined =>
  obj.kind === 'Deployment' ? (obj as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec : obj.kind === 'Pod' ? (obj as unknown as { spec: PodSpec }).spec : undefined;
const find = (kind: string, name: string, file?: string): KubeObject => {
  const hit = all().find((x) => x.obj.kind === kind && x.obj.metadata?.name === name && (!file || x.file === file));
  if (!hit) throw new Error(`no ${kind}/${name}${file ? ` in ${file}` : ''}`);
  return hit.obj;
};

describe('docs/kubernetes manifests against the Kubernetes API schemas', () => {
  it('finds the manifests', () => {
    expect(FILES).toEqual(expect.arrayContaining(['app-injected.yaml', 'app-with-certificate.yaml', 'app-with-config-init.yaml', 'app-with-watch-container.yaml', 'app-with-watch-sidecar.yaml', 'certificates.yaml', 'config-service.yaml', 'injector.yaml']));
  });

  it.each(FILES)('%s: every object is valid, with no unknown fields', async (file) => {
    const objects = loadManifests(path.join(DIR, file));
    expect(objects.length).toBeGreaterThan(0);
    const errors = (await Promise.all(objects.map(validateKubeObject))).flat();
    expect(errors).toEqual([]);
  });

  it('the checker itself rejects a wrong type, a bad enum value and an unknown field', async () => {
    const deployment = find('Deployment', 'orders', 'app-with-config-init.yaml');
    const broken = structuredClone(deployment) as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    const c = broken.spec.template.spec.containers[0]!;
    c.volumeMount = c.volumeMounts;
    c.ports = [{ containerPort: 'http' }];
    c.imagePullPolicy = 'Sometimes';
    const errors = await validateKubeObject(broken as unknown as KubeObject);
    expect(errors.join('\n')).toMatch(/containerPort must be integer/);
    expect(errors).toContain('Deployment/orders: .spec.template.spec.containers[0].volumeMount: unknown field (not in V1Container)');
    const cert = structuredClone(find('Certificate', 'orders-config-client')) as unknown as { spec: { usages: string[] } };
    cert.spec.usages = ['client-auth'];
    expect((await validateKubeObject(cert as unknown as KubeObject)).join('\n')).toMatch(/usages\/0 must be equal to one of the allowed values/);
  });
});

describe('config-init in the manifests', () => {
  const containers = () =>
    all().flatMap(({ file, obj }) => [...(podSpec(obj)?.initContainers ?? []), ...(podSpec(obj)?.containers ?? [])].filter((c) => c.image?.includes('config-init')).map((c) => ({ file, c })));

  it('every config-init container parses with config-init\'s own parser (flags and CONFIG_INIT_* variables)', () => {
    const known = new Set(OPTION_TABLE.map((o) => o.env).filter(Boolean));
    const seen = containers();
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (const { file, c } of seen) {
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) {
        if (!e.name.startsWith('CONFIG_INIT_')) continue;
        expect(known.has(e.name), `${file}: ${e.name} is not a config-init variable`).toBe(true);
        env[e.name] = e.value ?? '';
      }
      // The image's entry point is config-init itself: `args` are its arguments.
      expect(c.command, `${file}: command would replace the image's entry point`).toBeUndefined();
      const parsed = parseCommandLine(c.args ?? [], env);
      // An init container fetches; a native sidecar (restartPolicy: Always) or a plain container may watch.
      expect(['fetch', 'watch'], `${file}: ${c.name}: ${JSON.stringify(parsed)}`).toContain(parsed.kind);
      if (c.restartPolicy === 'Always') expect(parsed.kind, `${file}: ${c.name}`).toBe('watch');
      if (parsed.kind === 'watch') {
        // Probes on the health port it serves; never a readiness probe (an outage keeps the last set).
        const port = parsed.watch.healthPort;
        expect(port, `${file}: ${c.name}: --health-port`).toBeDefined();
        expect(c.livenessProbe?.httpGet, `${file}: ${c.name}`).toEqual({ path: '/health/live', port });
        if (c.restartPolicy === 'Always') expect(c.startupProbe?.httpGet, `${file}: ${c.name}`).toEqual({ path: '/health/ready', port });
        expect(c.readinessProbe, `${file}: ${c.name}`).toBeUndefined();
      } else if (parsed.kind !== 'fetch') continue;
      expect(parsed.options.server.href).toBe('https://config-service.platform-config.svc/');
      expect(parsed.options.app).toBe('orders');
      // The files config-init reads come from the identity volume it mounts.
      const mounts = c.volumeMounts ?? [];
      for (const f of [parsed.options.certFile, parsed.options.keyFile, parsed.options.caFile]) expect(mounts.some((m) => f?.startsWith(`${m.mountPath}/`)), `${file}: ${f}`).toBe(true);
      expect(mounts.some((m) => m.mountPath === parsed.options.outputDir && !m.readOnly)).toBe(true);
    }
  });

  it('every watch sidecar has its first set before the application starts: a native sidecar with a startup probe, or an init container that fetches first', () => {
    for (const { file, obj } of all()) {
      const spec = podSpec(obj);
      if (!spec) continue;
      const watchers = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => c.image?.includes('config-init') && (c.args ?? [])[0] === 'watch');
      for (const w of watchers) {
        const native = (spec.initContainers ?? []).includes(w) && w.restartPolicy === 'Always';
        const fetchFirst = (spec.initContainers ?? []).some((c) => c.image?.includes('config-init') && (c.args ?? [])[0] === 'fetch');
        expect(native || fetchFirst, `${file}: ${obj.metadata?.name}: ${w.name}`).toBe(true);
      }
    }
  });

  it('a misspelt config-init flag in a manifest would be caught', () => {
    expect(() => parseCommandLine(['fetch', '--sever=https://x'], {})).toThrow(/sever/);
  });
});

describe('identity, files and monitoring', () => {
  it('csi-driver-spiffe: the driver that writes tls.crt, tls.key and ca.crt, and fsGroup so other users read the 0640 files', () => {
    const spec = podSpec(find('Deployment', 'orders', 'app-with-config-init.yaml'))!;
    expect(spec.volumes?.find((v) => v.name === 'identity')).toEqual({ name: 'identity', csi: { driver: 'spiffe.csi.cert-manager.io', readOnly: true } });
    expect(spec.securityContext?.fsGroup).toBe(10001);
    for (const c of spec.containers) expect(c.volumeMounts).toContainEqual({ name: 'config', mountPath: '/config', readOnly: true });
  });

  it('cert-manager Certificate: a client certificate with the SPIFFE ID, into the Secret the pod mounts', () => {
    const cert = find('Certificate', 'orders-config-client') as unknown as { spec: { secretName: string; uris: string[]; usages: string[] } };
    expect(cert.spec.uris).toEqual(['spiffe://cluster.example.com/ns/shop/sa/orders']);
    expect(cert.spec.usages).toContain('client auth');
    const spec = podSpec(find('Deployment', 'orders', 'app-with-certificate.yaml'))!;
    expect(spec.volumes?.find((v) => v.name === 'identity')).toEqual({ name: 'identity', secret: { secretName: cert.spec.secretName, defaultMode: 0o440 } });
    expect(spec.securityContext?.fsGroup).toBe(10001);
  });

  it('the Service exposes the management port, and Prometheus scrapes /metrics there', () => {
    const svc = find('Service', 'config-service') as unknown as { spec: { ports: { name: string; port: number; targetPort: string }[] } };
    expect(svc.spec.ports).toContainEqual({ name: 'management', port: 8081, targetPort: 'management', protocol: 'TCP' });
    const monitor = find('ServiceMonitor', 'config-service') as unknown as { spec: { endpoints: { port: string; path: string }[] } };
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'management', path: '/metrics' });
    const deployment = find('Deployment', 'config-service');
    const annotations = (deployment as unknown as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations;
    expect(annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8081', 'prometheus.io/path': '/metrics' });
    expect(podSpec(deployment)!.containers[0]!.ports).toContainEqual({ name: 'management', containerPort: 8081, protocol: 'TCP' });
  });

  it('a PodDisruptionBudget and a NetworkPolicy for config-service and the injector', () => {
    for (const name of ['config-service', 'config-service-injector']) {
      expect(find('PodDisruptionBudget', name)).toBeTruthy();
      expect(find('NetworkPolicy', name)).toBeTruthy();
    }
  });

  it('the settings in the ConfigMap load with config-service\'s own loader', () => {
    const cm = find('ConfigMap', 'config-service') as unknown as { data: Record<string, string> };
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'k8s-settings-')), 'service.yml');
    writeFileSync(file, cm.data['service.yml']!);
    const settings = loadSettings({ file, env: { CONFIG_SERVICE_AUDIT_DATABASE_URL: 'postgres://u@db.example.com/audit' } });
    expect(settings.server.tls.clientCa).toBe('/etc/config-service/tls/ca.crt');
    expect(settings.management.port).toBe(8081);
  });
});
