/**
 * `config-service injector` (SPEC §7.1) over real TLS: AdmissionReview documents shaped as
 * the API server sends them (`request.uid`, `kind`, `resource`, `object`, `oldObject: null`
 * on CREATE, `dryRun`, pods with `generateName` and no `name`) are POSTed to `/mutate`;
 * the returned JSON Patch is applied with fast-json-patch (RFC 6902) and the resulting
 * pod is validated against the Kubernetes schema; the injected init container is parsed
 * with config-init's own command-line parser.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Agent } from 'undici';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from 'config-init';
import { loadInjectorSettings, startInjector, type AdmissionReviewResponse, type InjectorSettings, type RunningInjector } from 'config-service';
import { pino } from 'pino';
import { REPO_ROOT, loadManifests, makeCerts, validateKubeObject, type KubeObject, type TestPki } from '#helpers';

const { applyPatch } = fastJsonPatch;
const P = 'config-service.example';
const IMAGE = 'registry.example.com/platform/config-init:0.1.0';

let pki: TestPki;
let injector: RunningInjector;
let secretInjector: RunningInjector;
const logs: string[] = [];

function settings(overrides: Record<string, unknown> = {}): InjectorSettings {
  return loadInjectorSettings({
    env: {},
    overrides: {
      server: { host: '127.0.0.1', port: 0, tls: { cert: pki.serverCertFile, key: pki.serverKeyFile, clientCa: pki.caFile } },
      configInit: { image: IMAGE, serverUrl: 'https://config-service.platform-config.svc' },
      log: { level: 'debug' },
      ...overrides,
    },
  });
}

beforeAll(async () => {
  pki = await makeCerts('injector');
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  injector = await startInjector(settings(), { logger });
  secretInjector = await startInjector(settings({ identity: { source: 'secret' } }), { logger });
});
afterAll(async () => {
  await injector?.close();
  await secretInjector?.close();
});

type Pod = KubeObject & {
  metadata: { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    serviceAccountName?: string;
    securityContext?: Record<string, unknown>;
    initContainers?: Container[];
    containers: Container[];
    volumes?: Record<string, unknown>[];
  };
};
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value: string }[];
  restartPolicy?: string;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

/** A pod as a ReplicaSet creates it: generateName, no name, the namespace in the request. */
function pod(annotations: Record<string, string> | undefined, spec: Partial<Pod['spec']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'orders-7d9f8c6b5-', labels: { app: 'orders' }, ...(annotations && { annotations }) },
    spec: { serviceAccountName: 'orders', containers: [{ name: 'orders', image: 'registry.example.com/shop/orders:2.3.1' }], ...spec },
  };
}

/** The AdmissionReview the API server sends for `object`. */
function review(object: unknown, opts: { operation?: string; dryRun?: boolean; kind?: { group: string; version: string; kind: string } } = {}) {
  const kind = opts.kind ?? { group: '', version: 'v1', kind: 'Pod' };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind,
      resource: { group: kind.group, version: kind.version, resource: `${kind.kind.toLowerCase()}s` },
      requestKind: kind,
      requestResource: { group: kind.group, version: kind.version, resource: `${kind.kind.toLowerCase()}s` },
      namespace: 'shop',
      operation: opts.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: opts.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

async function post(body: unknown, target: RunningInjector = injector): Promise<{ status: number; contentType: string; json: () => unknown; text: string }> {
  const agent = new Agent({ connect: { ca: pki.ca.certPem, servername: 'localhost' } });
  try {
    const res = await agent.request({ origin: target.url, path: '/mutate', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.body.text();
    return { status: res.statusCode, contentType: String(res.headers['content-type']), text, json: () => JSON.parse(text) };
  } finally {
    await agent.close();
  }
}

/** Sends `object` for admission and returns the response and, when patched, the patched pod. */
async function admit(object: Pod, opts: Parameters<typeof review>[1] = {}, target?: RunningInjector) {
  const sent = review(object, opts);
  const res = await post(sent, target);
  expect(res.status).toBe(200);
  const body = res.json() as AdmissionReviewResponse;
  expect(body.apiVersion).toBe('admission.k8s.io/v1');
  expect(body.kind).toBe('AdmissionReview');
  expect(body.response.uid).toBe(sent.request.uid);
  const patch = body.response.patch ? (JSON.parse(Buffer.from(body.response.patch, 'base64').toString('utf8')) as Operation[]) : undefined;
  const patched = patch ? (applyPatch(structuredClone(object), patch, true, false).newDocument as Pod) : undefined;
  return { response: body.response, patch, patched };
}

/** Parses the injected init container as config-init would run it (its image's entry point is config-init). */
function initOptions(p: Pod) {
  const c = p.spec.initContainers!.find((x) => x.name === 'config-init')!;
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
  const cmd = parseCommandLine(c.args ?? [], env);
  if (cmd.kind !== 'fetch') throw new Error(`not fetch: ${cmd.kind}`);
  return cmd.options;
}

describe('injects config-init into an annotated pod', () => {
  it('a ReplicaSet pod (generateName, no name): init container, read-only config mount, identity volume, fsGroup, marker', async () => {
    const { response, patch, patched } = await admit(pod({ [`${P}/app`]: 'orders', [`${P}/profiles`]: 'prod,eu', [`${P}/formats`]: 'properties,json' }));
    expect(response.allowed).toBe(true);
    expect(response.patchType).toBe('JSONPatch');
    expect(response.warnings).toBeUndefined();
    expect(patch!.every((op) => op.op === 'add')).toBe(true);
    // RFC 6901: the '/' inside the annotation name is written ~1.
    expect(patch!.map((op) => op.path)).toContain('/metadata/annotations/config-service.example~1injected');
    const p = patched!;
    expect(p.metadata.annotations).toEqual({ [`${P}/app`]: 'orders', [`${P}/profiles`]: 'prod,eu', [`${P}/formats`]: 'properties,json', [`${P}/injected`]: IMAGE });
    expect(p.spec.initContainers!.map((c) => c.name)).toEqual(['config-init']);
    expect(p.spec.initContainers![0]!.image).toBe(IMAGE);
    expect(p.spec.containers[0]!.volumeMounts).toEqual([{ name: 'config-service-config', mountPath: '/config', readOnly: true }]);
    expect(p.spec.volumes).toEqual([
      { name: 'config-service-config', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
      { name: 'config-service-identity', csi: { driver: 'spiffe.csi.cert-manager.io', readOnly: true } },
    ]);
    expect(p.spec.securityContext).toEqual({ fsGroup: 10001 });

    const o = initOptions(p);
    expect(o.server.href).toBe('https://config-service.platform-config.svc/');
    expect(o).toMatchObject({ app: 'orders', profiles: ['prod', 'eu'], formats: ['properties', 'json'], outputDir: '/config', logFormat: 'json', ref: undefined });
    expect([o.certFile, o.keyFile, o.caFile]).toEqual(['/var/run/config-service/identity/tls.crt', '/var/run/config-service/identity/tls.key', '/var/run/config-service/identity/ca.crt']);
    expect(p.spec.initContainers![0]!.volumeMounts).toEqual([
      { name: 'config-service-identity', mountPath: '/var/run/config-service/identity', readOnly: true },
      { name: 'config-service-config', mountPath: '/config' },
    ]);
    expect(await validateKubeObject(p)).toEqual([]);
  });

  it('keeps what the pod has: appends volumes and mounts, config-init after native sidecars and before other init containers, fsGroup only when none', async () => {
    const original = pod(
      { [`${P}/app`]: 'orders', [`${P}/mount-path`]: '/etc/app/config', [`${P}/ref`]: 'release/2024.06' },
      {
        securityContext: { runAsNonRoot: true, runAsUser: 1000 },
        initContainers: [
          { name: 'mesh-proxy', image: 'proxy:1', restartPolicy: 'Always' },
          { name: 'migrate', image: 'migrate:1' },
        ],
        containers: [
          { name: 'orders', image: 'orders:1', volumeMounts: [{ name: 'cache', mountPath: '/cache' }] },
          { name: 'log-shipper', image: 'shipper:1' },
        ],
        volumes: [{ name: 'cache', emptyDir: {} }],
      },
    );
    const { patched } = await admit(original);
    const p = patched!;
    expect(p.spec.initContainers!.map((c) => c.name)).toEqual(['mesh-proxy', 'config-init', 'migrate']);
    expect(p.spec.containers[0]!.volumeMounts).toEqual([{ name: 'cache', mountPath: '/cache' }, { name: 'config-service-config', mountPath: '/etc/app/config', readOnly: true }]);
    expect(p.spec.containers[1]!.volumeMounts).toEqual([{ name: 'config-service-config', mountPath: '/etc/app/config', readOnly: true }]);
    expect(p.spec.volumes!.map((v) => v.name)).toEqual(['cache', 'config-service-config', 'config-service-identity']);
    expect(p.spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 10001 });
    expect(initOptions(p)).toMatchObject({ outputDir: '/etc/app/config', ref: 'release/2024.06', profiles: [], formats: ['properties'] });
    expect(await validateKubeObject(p)).toEqual([]);
  });

  it('leaves a pod\'s own fsGroup alone', async () => {
    const { patched } = await admit(pod({ [`${P}/app`]: 'orders' }, { securityContext: { fsGroup: 2000 } }));
    expect(patched!.spec.securityContext).toEqual({ fsGroup: 2000 });
  });

  it('dryRun: the same answer (the injector has no side effects)', async () => {
    const annotated = pod({ [`${P}/app`]: 'orders' });
    const real = await admit(annotated);
    const dry = await admit(annotated, { dryRun: true });
    expect(dry.patch).toEqual(real.patch);
  });

  it('identity from a Secret: <app>-config-client-tls, readable through the group', async () => {
    const { patched } = await admit(pod({ [`${P}/app`]: 'orders' }), {}, secretInjector);
    expect(patched!.spec.volumes).toContainEqual({ name: 'config-service-identity', secret: { secretName: 'orders-config-client-tls', defaultMode: 0o440 } });
    expect(await validateKubeObject(patched!)).toEqual([]);
  });

  it('warns when the service account (the certificate\'s identity) is not the application', async () => {
    const { response } = await admit(pod({ [`${P}/app`]: 'orders' }, { serviceAccountName: 'default' }));
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual(['service account default differs from the application orders: the workload certificate names the service account, so config-service must grant it orders']);
  });
});

describe('the watch sidecar (config-service.example/watch: "true")', () => {
  /** The injected config-init container parsed as config-init would run it. */
  function sidecarCommand(p: Pod) {
    const c = p.spec.initContainers!.find((x) => x.name === 'config-init')! as Container & { startupProbe?: unknown; livenessProbe?: unknown };
    const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    return { c, cmd: parseCommandLine(c.args ?? [], env) };
  }

  it('a native sidecar running `config-init watch`, started before the application (startup probe on /health/ready), notifying by a local POST', async () => {
    const { response, patched } = await admit(pod({ [`${P}/app`]: 'orders', [`${P}/watch`]: 'true', [`${P}/on-change-http`]: 'http://localhost:8080/actuator/refresh' }));
    expect(response.allowed).toBe(true);
    const { c, cmd } = sidecarCommand(patched!);
    expect(c.restartPolicy).toBe('Always');
    expect(c.startupProbe).toEqual({ httpGet: { path: '/health/ready', port: 8787 }, periodSeconds: 1, failureThreshold: 120 });
    expect(c.livenessProbe).toEqual({ httpGet: { path: '/health/live', port: 8787 }, periodSeconds: 10 });
    expect(cmd.kind).toBe('watch');
    if (cmd.kind !== 'watch') return;
    expect(cmd.options).toMatchObject({ app: 'orders', outputDir: '/config', formats: ['properties'] });
    expect(cmd.watch.healthPort).toBe(8787);
    expect(cmd.watch.http?.href).toBe('http://localhost:8080/actuator/refresh');
    expect(patched!.spec.containers[0]!.volumeMounts).toEqual([{ name: 'config-service-config', mountPath: '/config', readOnly: true }]);
    expect(await validateKubeObject(patched!)).toEqual([]);
  });

  it('a signal to a process found by name needs the pod to share its process namespace; the injector never turns that on', async () => {
    const annotations = { [`${P}/app`]: 'orders', [`${P}/watch`]: 'true', [`${P}/on-change-signal`]: 'HUP', [`${P}/process-name`]: 'nginx' };
    const denied = await admit(pod(annotations));
    expect(denied.response.allowed).toBe(false);
    expect(denied.response.status?.message).toBe('annotation config-service.example/process-name: the watch sidecar finds the process by name only when the pod sets spec.shareProcessNamespace: true (the injector never turns it on itself)');
    const { patched } = await admit(pod(annotations, { shareProcessNamespace: true } as Partial<Pod['spec']>));
    const { cmd } = sidecarCommand(patched!);
    expect(cmd.kind).toBe('watch');
    if (cmd.kind === 'watch') expect([cmd.watch.signal, cmd.watch.processName]).toEqual(['SIGHUP', 'nginx']);
    expect(await validateKubeObject(patched!)).toEqual([]);
  });

  it.each([
    [{ [`${P}/watch`]: 'yes' }, 'annotation config-service.example/watch: "yes" must be "true" or "false"'],
    [{ [`${P}/on-change-http`]: 'http://localhost/x' }, 'annotation config-service.example/on-change-http: needs config-service.example/watch: "true" (only the watch sidecar notifies the application)'],
    [{ [`${P}/watch`]: 'true', [`${P}/on-change-http`]: 'http://billing.shop.svc/refresh' }, 'annotation config-service.example/on-change-http: "http://billing.shop.svc/refresh" must be an http:// URL of the pod itself (localhost, 127.0.0.1 or [::1])'],
    [{ [`${P}/watch`]: 'true', [`${P}/on-change-signal`]: 'HUP' }, 'annotation config-service.example/on-change-signal: needs config-service.example/process-name too (the sidecar signals a process found by name)'],
    [{ [`${P}/watch`]: 'true', [`${P}/on-change-signal`]: 'KILL', [`${P}/process-name`]: 'nginx' }, 'annotation config-service.example/on-change-signal: "KILL" is not one of HUP, USR1, USR2, INT, TERM, QUIT, WINCH'],
  ])('refuses %j', async (extra, message) => {
    const { response } = await admit(pod({ [`${P}/app`]: 'orders', ...extra }));
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toBe(message);
  });

  it('watch: "false" is the plain init container', async () => {
    const { patched } = await admit(pod({ [`${P}/app`]: 'orders', [`${P}/watch`]: 'false' }));
    expect(initOptions(patched!).app).toBe('orders');
    expect(patched!.spec.initContainers![0]!.restartPolicy).toBeUndefined();
  });
});

describe('idempotent, and never touches what is not asked for', () => {
  it('an injected pod sent again (reinvocation) is allowed unchanged', async () => {
    const { patched } = await admit(pod({ [`${P}/app`]: 'orders' }));
    const again = await admit(patched!);
    expect(again.response).toEqual({ uid: again.response.uid, allowed: true });
  });

  it('a pod without the annotation: allowed, no patch', async () => {
    const plain = await admit(pod(undefined));
    expect(plain.response).toEqual({ uid: plain.response.uid, allowed: true });
    const other = await admit(pod({ 'prometheus.io/scrape': 'true' }));
    expect(other.response).toEqual({ uid: other.response.uid, allowed: true });
  });

  it('our other annotations without the app annotation: allowed, no patch, a warning', async () => {
    const { response } = await admit(pod({ [`${P}/profiles`]: 'prod' }));
    expect(response.patch).toBeUndefined();
    expect(response.warnings).toEqual([`${P}/profiles ignored: the pod has no ${P}/app annotation, so config-init is not injected`]);
  });

  it('a pod with its own config-init init container is left alone', async () => {
    const { response } = await admit(pod({ [`${P}/app`]: 'orders' }, { initContainers: [{ name: 'config-init', image: IMAGE }] }));
    expect(response.patch).toBeUndefined();
    expect(response.allowed).toBe(true);
  });

  it('UPDATE, or another kind: allowed, no patch', async () => {
    const annotated = pod({ [`${P}/app`]: 'orders' });
    expect((await admit(annotated, { operation: 'UPDATE' })).response.patch).toBeUndefined();
    expect((await admit(annotated, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } })).response.patch).toBeUndefined();
  });
});

describe('refuses bad annotations, naming the annotation and the rule', () => {
  const NAME_RULE = "must match ^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$ and contain no '..' (the service's name rule, docs/api.md)";
  const cases: [string, Record<string, string>, string][] = [
    ['app with upper case', { [`${P}/app`]: 'Orders' }, `annotation ${P}/app: "Orders" ${NAME_RULE}`],
    ['app with ..', { [`${P}/app`]: 'a..b' }, `annotation ${P}/app: "a..b" ${NAME_RULE}`],
    ['empty app', { [`${P}/app`]: '' }, `annotation ${P}/app: "" ${NAME_RULE}`],
    ['a bad profile', { [`${P}/app`]: 'orders', [`${P}/profiles`]: 'prod,../etc' }, `annotation ${P}/profiles: profile "../etc" ${NAME_RULE}`],
    ['an unknown format', { [`${P}/app`]: 'orders', [`${P}/formats`]: 'json,xml' }, `annotation ${P}/formats: "xml" is not one of json, yaml, properties, env, dotenv`],
    ['a relative mount path', { [`${P}/app`]: 'orders', [`${P}/mount-path`]: 'config' }, `annotation ${P}/mount-path: "config" must be an absolute path`],
    ['a mount path with ..', { [`${P}/app`]: 'orders', [`${P}/mount-path`]: '/etc/../config' }, `annotation ${P}/mount-path: "/etc/../config" must not contain empty, '.' or '..' segments`],
    ['a bad ref', { [`${P}/app`]: 'orders', [`${P}/ref`]: 'main..x' }, `annotation ${P}/ref: "main..x" contains '..' (git's ref-name rules)`],
    ['a misspelt annotation', { [`${P}/app`]: 'orders', [`${P}/profile`]: 'prod' }, `annotation ${P}/profile: unknown; the injector reads ${P}/app, ${P}/profiles, ${P}/formats, ${P}/mount-path, ${P}/ref, ${P}/watch, ${P}/on-change-http, ${P}/on-change-signal, ${P}/process-name`],
  ];
  it.each(cases)('%s', async (_name, annotations, message) => {
    const { response } = await admit(pod(annotations));
    expect(response).toEqual({ uid: response.uid, allowed: false, status: { code: 400, message } });
  });

  it('a volume name the injector needs is taken: denied, naming the volume', async () => {
    const { response } = await admit(pod({ [`${P}/app`]: 'orders' }, { volumes: [{ name: 'config-service-config', emptyDir: {} }] }));
    expect(response.status).toEqual({ code: 400, message: 'volume config-service-config: the pod already has a volume of this name, which the injector adds' });
  });

  it('a container already mounts something at the mount path: denied', async () => {
    const { response } = await admit(pod({ [`${P}/app`]: 'orders' }, { containers: [{ name: 'orders', image: 'o:1', volumeMounts: [{ name: 'cm', mountPath: '/config' }] }], volumes: [{ name: 'cm', configMap: { name: 'x' } }] }));
    expect(response.status).toEqual({ code: 400, message: `annotation ${P}/mount-path: container orders already mounts volume cm at /config` });
  });

  it('the denials and decisions are logged without the pod\'s content', () => {
    const lines = logs.map((l) => JSON.parse(l) as { msg: string; result?: string; pod?: string; namespace?: string });
    expect(lines.some((l) => l.msg === 'admission denied' && l.pod === 'orders-7d9f8c6b5-*' && l.namespace === 'shop')).toBe(true);
    expect(lines.some((l) => l.msg === 'admission injected')).toBe(true);
    expect(logs.join('\n')).not.toContain('registry.example.com/shop/orders');
  });
});

describe('the HTTP exchange', () => {
  it('a body that is not an AdmissionReview: 400 problem+json naming the field', async () => {
    const res = await post({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { kind: 'Pod' }, operation: 'CREATE' } });
    expect(res.status).toBe(400);
    expect(res.contentType).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'admission_review_invalid', detail: 'Invalid AdmissionReview: request.uid is missing' });
    const v1beta1 = await post({ ...review(pod(undefined)), apiVersion: 'admission.k8s.io/v1beta1' });
    expect(v1beta1.status).toBe(400);
  });

  it('health answers over TLS', async () => {
    const agent = new Agent({ connect: { ca: pki.ca.certPem, servername: 'localhost' } });
    try {
      const res = await agent.request({ origin: injector.url, path: '/health/ready', method: 'GET' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ status: 'ready' });
    } finally {
      await agent.close();
    }
  });
});

describe('docs/kubernetes: the annotated Deployment through the injector configured as injector.yaml says', () => {
  it('gives a valid pod whose config-init runs fetch for orders with the annotated profiles and formats', async () => {
    const cm = loadManifests(path.join(REPO_ROOT, 'docs/kubernetes/injector.yaml')).find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
    const { parse } = await import('yaml');
    const fromDocs = parse(cm.data['injector.yml']!) as Record<string, unknown>;
    const docsInjector = await startInjector(
      loadInjectorSettings({ env: {}, overrides: { ...fromDocs, server: { host: '127.0.0.1', port: 0, tls: { cert: pki.serverCertFile, key: pki.serverKeyFile, clientCa: pki.caFile } } } }),
      { logger: pino({ level: 'silent' }) },
    );
    try {
      const deployment = loadManifests(path.join(REPO_ROOT, 'docs/kubernetes/app-injected.yaml')).find((o) => o.kind === 'Deployment') as unknown as {
        spec: { template: { metadata: Pod['metadata']; spec: Pod['spec'] } };
      };
      const template = deployment.spec.template;
      const p: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...template.metadata, generateName: 'orders-5f6d7c8b9-' }, spec: template.spec };
      const { response, patched } = await admit(p, {}, docsInjector);
      expect(response.warnings).toBeUndefined();
      expect(await validateKubeObject(patched!)).toEqual([]);
      expect(initOptions(patched!)).toMatchObject({ app: 'orders', profiles: ['prod', 'eu'], formats: ['properties', 'json'], outputDir: '/config' });
      expect(patched!.spec.initContainers![0]!.image).toBe('registry.example.com/platform/config-init:0.1.0');
    } finally {
      await docsInjector.close();
    }
  });
});
