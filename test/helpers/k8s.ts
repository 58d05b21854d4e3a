/**
 * Checks Kubernetes objects without a cluster, against the official API schemas:
 * - `kubernetes-models` (and `@kubernetes-models/cert-manager`,
 *   `@kubernetes-models/prometheus-operator` for their CRDs) validates each object with the
 *   JSON schemas generated from Kubernetes' OpenAPI document (types, required fields, enums);
 * - the models of the official client `@kubernetes/client-node` list every field of every
 *   built-in type, so a field Kubernetes does not know (`volumeMount:` for `volumeMounts:`)
 *   is an error, as `kubectl apply --validate=strict` makes it. CRD objects get the schema
 *   check only (their packages carry no field list).
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes object as written in a manifest. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  [key: string]: unknown;
}

/**
 * Every non-empty YAML document of `file`, read as YAML 1.1 as Kubernetes' own reader
 * (sigs.k8s.io/yaml, go-yaml v2) does: `defaultMode: 0440` is octal (288), `yes` is true.
 * @throws on a YAML error (with its line).
 */
export function loadManifests(file: string): KubeObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true, version: '1.1' });
  const out: KubeObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as KubeObject | null;
    if (value) out.push(value);
  }
  return out;
}

/** The module of `kubernetes-models` (or a CRD package) that holds `apiVersion`'s kinds. */
function modelModule(apiVersion: string): string {
  if (apiVersion.endsWith('cert-manager.io/v1') || apiVersion.startsWith('trust.cert-manager.io/')) return `@kubernetes-models/cert-manager/${apiVersion}`;
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

interface ValidatingModel {
  validate(): void;
}

/** Schema errors of `obj` from kubernetes-models (empty when valid). */
async function schemaErrors(obj: KubeObject): Promise<string[]> {
  let mod: Record<string, new (data: unknown) => ValidatingModel>;
  try {
    mod = (await import(modelModule(obj.apiVersion))) as typeof mod;
  } catch {
    return [`unknown apiVersion ${obj.apiVersion}`];
  }
  const Model = mod[obj.kind];
  if (!Model) return [`unknown kind ${obj.kind} in ${obj.apiVersion}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

type AttributeMap = { name: string; baseName: string; type: string }[];
type ClientModel = { getAttributeTypeMap(): AttributeMap };
/** The client's models, loaded on first use (a large module; most test files never need it). */
type ClientModels = Record<string, ClientModel | undefined>;

/** The client-node model name of a built-in kind: `apps/v1` `Deployment` → `V1Deployment`. */
function clientModelName(apiVersion: string): string {
  const version = apiVersion.split('/').at(-1)!;
  return version.charAt(0).toUpperCase() + version.slice(1);
}

const PRIMITIVES = new Set(['string', 'boolean', 'number', 'Date', 'object', 'any', 'IntOrString', 'RuntimeRawExtension']);

/** Fields of `value` that its client-node model `type` does not declare, as JSON paths. */
function unknownFields(k8s: ClientModels, value: unknown, type: string, at: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(k8s, v, array[1]!, `${at}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) unknownFields(k8s, v, map[1]!, `${at}.${k}`, out);
    return;
  }
  if (PRIMITIVES.has(type) || typeof value !== 'object') return;
  const model = k8s[type];
  if (!model?.getAttributeTypeMap) return;
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    const t = attributes.get(key);
    if (t === undefined) out.push(`${at}.${key}: unknown field (not in ${type})`);
    else unknownFields(k8s, v, t, `${at}.${key}`, out);
  }
}

/**
 * Everything wrong with one object, as messages naming the object and the path; empty
 * when it is valid for the Kubernetes API (or the CRD's published schema).
 */
export async function validateKubeObject(obj: KubeObject): Promise<string[]> {
  const where = `${obj.kind}/${obj.metadata?.name ?? '(no name)'}`;
  const errors = await schemaErrors(obj);
  const k8s = (await import('@kubernetes/client-node')) as unknown as ClientModels;
  const modelName = `${clientModelName(obj.apiVersion)}${obj.kind}`;
  if (k8s[modelName]) unknownFields(k8s, obj, modelName, '', errors);
  return errors.map((e) => `${where}: ${e}`);
}
