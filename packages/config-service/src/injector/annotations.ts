/**
 * The pod annotations that ask for injection (SPEC §7.1), read and checked with the
 * service's own name rules (SPEC §5) and git's ref-name rules, so a pod is refused at
 * admission rather than failing later in its init container.
 *
 * `<prefix>/app` asks for injection; `<prefix>/profiles`, `/formats`, `/mount-path` and
 * `/ref` are optional; `<prefix>/watch: "true"` asks for the watch sidecar instead of the
 * init container, told how to notify the application by `/on-change-http` or
 * `/on-change-signal` with `/process-name`; `<prefix>/injected` is written by the injector.
 */
import { refFormatViolation } from '../git/ref-name.js';
import { NAME_PATTERN } from '../http/names.js';
import { INIT_FORMATS, type InjectorSettings } from './settings.js';

/** What an annotated pod asks for. */
export interface InjectionRequest {
  app: string;
  profiles: string[];
  formats: string[];
  /** Absolute folder the configuration is mounted at in every container. */
  mountPath: string;
  ref: string | undefined;
  /**
   * `<prefix>/watch: "true"`: config-init runs as a native sidecar (`config-init watch`)
   * that republishes on every change; with how to tell the application.
   */
  watch?: { onChangeHttp?: string; onChangeSignal?: string; processName?: string } | undefined;
}

/** The outcome of reading a pod's annotations. */
export type AnnotationResult =
  | { kind: 'skip'; reason: 'not-annotated' | 'already-injected'; warnings: string[] }
  | { kind: 'inject'; request: InjectionRequest; warnings: string[] }
  | { kind: 'deny'; message: string };

/** Annotation names under the prefix, without it. */
export const ANNOTATIONS = ['app', 'profiles', 'formats', 'mount-path', 'ref', 'watch', 'on-change-http', 'on-change-signal', 'process-name', 'injected'] as const;

/** Signals a watch sidecar may send (config-init's `--on-change-signal`, short names). */
const WATCH_SIGNALS = ['HUP', 'USR1', 'USR2', 'INT', 'TERM', 'QUIT', 'WINCH'];

const NAME_RULE = `must match ${NAME_PATTERN.source} and contain no '..' (the service's name rule, docs/api.md)`;

function nameViolation(value: string): boolean {
  return !NAME_PATTERN.test(value) || value.includes('..');
}

/** A clean absolute folder: `/config`, not `config`, `/`, `/a/../b`, `/a//b` or `/a/`. */
function mountPathViolation(value: string): string | null {
  if (!value.startsWith('/')) return 'must be an absolute path';
  if (value === '/') return "must not be '/'";
  if (value.endsWith('/')) return "must not end with '/'";
  if (value.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')) return "must not contain empty, '.' or '..' segments";
  if (value.includes(':')) return "must not contain ':'";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'must not contain control characters';
  return null;
}

/**
 * Reads the injection annotations of a pod.
 * @param annotations - `metadata.annotations` of the pod (may be undefined)
 * @returns `skip` without `<prefix>/app` (or once injected), `deny` with a message naming
 *   the annotation and the rule it breaks (never more of the value than the annotation
 *   holds), else `inject` with the defaults of `settings.defaults` filled in.
 */
export function readAnnotations(annotations: Readonly<Record<string, string>> | undefined, settings: Pick<InjectorSettings, 'annotationPrefix' | 'defaults'>): AnnotationResult {
  const prefix = `${settings.annotationPrefix}/`;
  const ours = Object.entries(annotations ?? {}).filter(([k]) => k.startsWith(prefix));
  const get = (name: (typeof ANNOTATIONS)[number]) => annotations?.[`${prefix}${name}`];
  const app = get('app');
  if (app === undefined) {
    const stray = ours.map(([k]) => k);
    return { kind: 'skip', reason: 'not-annotated', warnings: stray.length ? [`${stray.join(', ')} ignored: the pod has no ${prefix}app annotation, so config-init is not injected`] : [] };
  }
  if (get('injected') !== undefined) return { kind: 'skip', reason: 'already-injected', warnings: [] };
  const unknown = ours.map(([k]) => k.slice(prefix.length)).filter((n) => !(ANNOTATIONS as readonly string[]).includes(n));
  if (unknown.length) return { kind: 'deny', message: `annotation ${prefix}${unknown[0]}: unknown; the injector reads ${ANNOTATIONS.filter((a) => a !== 'injected').map((a) => prefix + a).join(', ')}` };
  if (nameViolation(app)) return { kind: 'deny', message: `annotation ${prefix}app: ${JSON.stringify(app)} ${NAME_RULE}` };

  const profilesRaw = get('profiles')?.trim() ?? '';
  const profiles = profilesRaw === '' ? [] : profilesRaw.split(',').map((p) => p.trim());
  const badProfile = profiles.find(nameViolation);
  if (badProfile !== undefined) return { kind: 'deny', message: `annotation ${prefix}profiles: profile ${JSON.stringify(badProfile)} ${NAME_RULE}` };

  const formatsRaw = get('formats')?.trim();
  const formats = formatsRaw === undefined || formatsRaw === '' ? [...settings.defaults.formats] : [...new Set(formatsRaw.split(',').map((f) => f.trim()))];
  const badFormat = formats.find((f) => !(INIT_FORMATS as readonly string[]).includes(f));
  if (badFormat !== undefined) return { kind: 'deny', message: `annotation ${prefix}formats: ${JSON.stringify(badFormat)} is not one of ${INIT_FORMATS.join(', ')}` };

  const mountPath = get('mount-path') ?? settings.defaults.mountPath;
  const badPath = mountPathViolation(mountPath);
  if (badPath) return { kind: 'deny', message: `annotation ${prefix}mount-path: ${JSON.stringify(mountPath)} ${badPath}` };

  const ref = get('ref');
  if (ref !== undefined) {
    const violation = refFormatViolation(ref);
    if (violation) return { kind: 'deny', message: `annotation ${prefix}ref: ${JSON.stringify(ref)} ${violation} (git's ref-name rules)` };
  }
  const watchRaw = get('watch');
  if (watchRaw !== undefined && watchRaw !== 'true' && watchRaw !== 'false') return { kind: 'deny', message: `annotation ${prefix}watch: ${JSON.stringify(watchRaw)} must be "true" or "false"` };
  const watching = watchRaw === 'true';
  const onChangeHttp = get('on-change-http');
  const onChangeSignal = get('on-change-signal');
  const processName = get('process-name');
  for (const [name, value] of [['on-change-http', onChangeHttp], ['on-change-signal', onChangeSignal], ['process-name', processName]] as const) {
    if (value !== undefined && !watching) return { kind: 'deny', message: `annotation ${prefix}${name}: needs ${prefix}watch: "true" (only the watch sidecar notifies the application)` };
  }
  if (onChangeHttp !== undefined && !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?(\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$/.test(onChangeHttp)) {
    return { kind: 'deny', message: `annotation ${prefix}on-change-http: ${JSON.stringify(onChangeHttp)} must be an http:// URL of the pod itself (localhost, 127.0.0.1 or [::1])` };
  }
  if ((onChangeSignal === undefined) !== (processName === undefined)) {
    return { kind: 'deny', message: `annotation ${prefix}${onChangeSignal === undefined ? 'process-name' : 'on-change-signal'}: needs ${prefix}${onChangeSignal === undefined ? 'on-change-signal' : 'process-name'} too (the sidecar signals a process found by name)` };
  }
  if (onChangeSignal !== undefined && !WATCH_SIGNALS.includes(onChangeSignal.replace(/^SIG/, ''))) {
    return { kind: 'deny', message: `annotation ${prefix}on-change-signal: ${JSON.stringify(onChangeSignal)} is not one of ${WATCH_SIGNALS.join(', ')}` };
  }
  if (processName !== undefined && !/^[A-Za-z0-9._+-]{1,64}$/.test(processName)) {
    return { kind: 'deny', message: `annotation ${prefix}process-name: ${JSON.stringify(processName)} must be a program name (letters, digits, '.', '_', '+', '-')` };
  }
  const watch = watching
    ? { ...(onChangeHttp !== undefined && { onChangeHttp }), ...(onChangeSignal !== undefined && { onChangeSignal: onChangeSignal.replace(/^SIG/, ''), processName }) }
    : undefined;
  return { kind: 'inject', request: { app, profiles, formats, mountPath, ref, ...(watch !== undefined && { watch }) }, warnings: [] };
}
