/**
 * Test helpers: build a merged configuration from in-memory documents, in the default
 * folder layout (SPEC §2), through the public functions of `src/config/`.
 */
import { EXTENSIONS_LOWEST_FIRST, layerOrder, mergeSources, selectSources } from '../../src/config/merge.js';
import { parseDocument } from '../../src/config/parse.js';
import type { MergedConfig, PropertySource } from '../../src/config/types.js';

/** Documents by path; strings are written as UTF-8. */
export type Files = Record<string, string | Uint8Array>;

/** Bytes of a document. */
export function bytes(content: string | Uint8Array): Uint8Array {
  return typeof content === 'string' ? new TextEncoder().encode(content) : content;
}

/** The sources for `app` and `profiles`, lowest first, as the service would pick them. */
export function sourcesFor(files: Files, app: string, profiles: readonly string[]): PropertySource[] {
  const out: PropertySource[] = [];
  for (const layer of layerOrder(app, profiles)) {
    const base = layer.profile === undefined ? 'application' : `application-${layer.profile}`;
    const dir = layer.scope === 'shared' ? '' : `${app}/`;
    for (const ext of EXTENSIONS_LOWEST_FIRST) {
      const path = `${dir}${base}${ext}`;
      const content = files[path];
      if (content === undefined) continue;
      out.push(...selectSources(parseDocument({ path, bytes: bytes(content), commit: 'c0ffee' }), profiles));
    }
  }
  return out;
}

/** The merged configuration for `app` and `profiles`. */
export function configFor(files: Files, app: string, profiles: readonly string[] = []): MergedConfig {
  return mergeSources(sourcesFor(files, app, profiles));
}

/** A merged configuration of one YAML document. */
export function configOf(yaml: string, path = 'orders/application.yml'): MergedConfig {
  return configFor({ [path]: yaml }, 'orders');
}
