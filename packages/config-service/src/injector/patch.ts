/**
 * The JSON Patch (RFC 6902) that injects config-init into a pod (SPEC §7.1): the init
 * container (or, with `<prefix>/watch: "true"`, the watch sidecar: the same container as a
 * native sidecar running `config-init watch`, with a startup probe on its health port), a memory-backed `emptyDir` mounted read-only into every application
 * container, the identity volume, the pod `fsGroup` when none is set, and the
 * `<prefix>/injected` annotation that makes a second pass a no-op. Paths are JSON Pointers
 * (RFC 6901: `~` → `~0`, `/` → `~1`).
 */
import type { InjectionRequest } from './annotations.js';
import type { InjectorSettings } from './settings.js';

/** One RFC 6902 operation; the injector only adds. */
export interface PatchOperation {
  op: 'add';
  path: string;
  value: unknown;
}

/** The parts of a Pod the injector reads (Kubernetes `core/v1` Pod). */
export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, string> };
  spec?: {
    serviceAccountName?: string;
    shareProcessNamespace?: boolean;
    initContainers?: ContainerLike[];
    containers?: ContainerLike[];
    volumes?: { name: string }[];
    securityContext?: { fsGroup?: number };
  };
}

interface ContainerLike {
  name: string;
  restartPolicy?: string;
  volumeMounts?: { name: string; mountPath: string }[];
}

/** Name of the init container. */
export const INIT_CONTAINER_NAME = 'config-init';
/** Volume that holds the published configuration. */
export const CONFIG_VOLUME = 'config-service-config';
/** Volume that holds the client certificate. */
export const IDENTITY_VOLUME = 'config-service-identity';

/** A JSON Pointer (RFC 6901) from unescaped reference tokens. */
export function jsonPointer(...tokens: (string | number)[]): string {
  return tokens.map((t) => `/${String(t).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** The init container for `request`, as the injector adds it. */
export function initContainer(request: InjectionRequest, settings: Pick<InjectorSettings, 'configInit' | 'identity'>): Record<string, unknown> {
  const watch = request.watch;
  const port = settings.configInit.healthPort;
  const id = settings.identity.mountPath;
  const env: { name: string; value: string }[] = [
    { name: 'CONFIG_INIT_SERVER', value: settings.configInit.serverUrl },
    { name: 'CONFIG_INIT_APP', value: request.app },
    ...(request.profiles.length ? [{ name: 'CONFIG_INIT_PROFILES', value: request.profiles.join(',') }] : []),
    ...(request.ref !== undefined ? [{ name: 'CONFIG_INIT_REF', value: request.ref }] : []),
    { name: 'CONFIG_INIT_FORMATS', value: request.formats.join(',') },
    { name: 'CONFIG_INIT_CERT', value: `${id}/tls.crt` },
    { name: 'CONFIG_INIT_KEY', value: `${id}/tls.key` },
    { name: 'CONFIG_INIT_CA', value: `${id}/ca.crt` },
    { name: 'CONFIG_INIT_OUTPUT_DIR', value: request.mountPath },
    { name: 'CONFIG_INIT_LOG_FORMAT', value: settings.configInit.logFormat },
    ...(watch !== undefined
      ? [
          { name: 'CONFIG_INIT_HEALTH_PORT', value: String(port) },
          ...(watch.onChangeHttp !== undefined ? [{ name: 'CONFIG_INIT_ON_CHANGE_HTTP', value: watch.onChangeHttp }] : []),
          ...(watch.onChangeSignal !== undefined ? [{ name: 'CONFIG_INIT_ON_CHANGE_SIGNAL', value: watch.onChangeSignal }, { name: 'CONFIG_INIT_PROCESS_NAME', value: watch.processName ?? '' }] : []),
        ]
      : []),
  ];
  // The watch sidecar is a native sidecar (an init container with restartPolicy: Always,
  // Kubernetes 1.29+): the application containers start once its startupProbe passes, i.e.
  // once the first set is published, and it keeps running beside them.
  const sidecar =
    watch === undefined
      ? {}
      : {
          restartPolicy: 'Always',
          startupProbe: { httpGet: { path: '/health/ready', port }, periodSeconds: 1, failureThreshold: 120 },
          livenessProbe: { httpGet: { path: '/health/live', port }, periodSeconds: 10 },
        };
  return {
    name: INIT_CONTAINER_NAME,
    image: settings.configInit.image,
    imagePullPolicy: settings.configInit.imagePullPolicy,
    args: [watch === undefined ? 'fetch' : 'watch'],
    ...sidecar,
    env,
    resources: settings.configInit.resources,
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: IDENTITY_VOLUME, mountPath: id, readOnly: true },
      { name: CONFIG_VOLUME, mountPath: request.mountPath },
    ],
  };
}

/** The identity volume: a csi-driver-spiffe volume, or the application's Secret. */
export function identityVolume(app: string, identity: InjectorSettings['identity']): Record<string, unknown> {
  if (identity.source === 'csi') return { name: IDENTITY_VOLUME, csi: { driver: identity.csiDriver, readOnly: true } };
  return { name: IDENTITY_VOLUME, secret: { secretName: identity.secretName.replaceAll('{app}', app), defaultMode: 0o440 } };
}

/** The result of {@link injectionPatch}. */
export type PatchResult = { kind: 'patch'; patch: PatchOperation[]; warnings: string[] } | { kind: 'skip'; warnings: string[] } | { kind: 'deny'; message: string };

/**
 * Builds the patch for `pod`. Refuses (`deny`) what it cannot add without changing what
 * the pod already has: a volume of the same name, a container that already mounts
 * something at the mount path. A pod that already has a `config-init` init container of its
 * own is left alone (`skip`, with a warning).
 */
export function injectionPatch(pod: PodLike, request: InjectionRequest, settings: Pick<InjectorSettings, 'annotationPrefix' | 'configInit' | 'identity' | 'defaults'>): PatchResult {
  const spec = pod.spec ?? {};
  const init = spec.initContainers ?? [];
  const containers = spec.containers ?? [];
  const warnings: string[] = [];
  if (init.some((c) => c.name === INIT_CONTAINER_NAME)) {
    return { kind: 'skip', warnings: [`the pod already has an init container named ${INIT_CONTAINER_NAME}; nothing injected`] };
  }
  for (const v of spec.volumes ?? []) {
    if (v.name === CONFIG_VOLUME || v.name === IDENTITY_VOLUME) return { kind: 'deny', message: `volume ${v.name}: the pod already has a volume of this name, which the injector adds` };
  }
  for (const c of [...init, ...containers]) {
    const clash = (c.volumeMounts ?? []).find((m) => m.mountPath.replace(/\/+$/, '') === request.mountPath);
    if (clash) return { kind: 'deny', message: `annotation ${settings.annotationPrefix}/mount-path: container ${c.name} already mounts volume ${clash.name} at ${request.mountPath}` };
  }
  if (request.watch?.processName !== undefined && spec.shareProcessNamespace !== true) {
    return { kind: 'deny', message: `annotation ${settings.annotationPrefix}/process-name: the watch sidecar finds the process by name only when the pod sets spec.shareProcessNamespace: true (the injector never turns it on itself)` };
  }
  if (settings.identity.source === 'csi' && (spec.serviceAccountName ?? 'default') !== request.app) {
    warnings.push(`service account ${spec.serviceAccountName ?? 'default'} differs from the application ${request.app}: the workload certificate names the service account, so config-service must grant it ${request.app}`);
  }

  const patch: PatchOperation[] = [];
  const add = (path: string, value: unknown) => patch.push({ op: 'add', path, value });
  // After native sidecars (restartPolicy: Always) already at the front, e.g. a service
  // mesh proxy that must run before config-init can reach the network; before the rest.
  let at = 0;
  while (at < init.length && init[at]!.restartPolicy === 'Always') at += 1;
  const container = initContainer(request, settings);
  if (spec.initContainers === undefined) add(jsonPointer('spec', 'initContainers'), [container]);
  else add(jsonPointer('spec', 'initContainers', at), container);

  const volumes = [
    { name: CONFIG_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
    identityVolume(request.app, settings.identity),
  ];
  if (spec.volumes === undefined) add(jsonPointer('spec', 'volumes'), volumes);
  else for (const v of volumes) add(jsonPointer('spec', 'volumes', '-'), v);

  const mount = { name: CONFIG_VOLUME, mountPath: request.mountPath, readOnly: true };
  containers.forEach((c, i) => {
    if (c.volumeMounts === undefined) add(jsonPointer('spec', 'containers', i, 'volumeMounts'), [mount]);
    else add(jsonPointer('spec', 'containers', i, 'volumeMounts', '-'), mount);
  });

  if (spec.securityContext === undefined) add(jsonPointer('spec', 'securityContext'), { fsGroup: settings.defaults.fsGroup });
  else if (spec.securityContext.fsGroup === undefined) add(jsonPointer('spec', 'securityContext', 'fsGroup'), settings.defaults.fsGroup);

  // The pod is annotated (that is why it is here), so metadata.annotations exists.
  add(jsonPointer('metadata', 'annotations', `${settings.annotationPrefix}/injected`), settings.configInit.image);
  return { kind: 'patch', patch, warnings };
}
