/**
 * Configuration documents: parse, merge, render (SPEC §2.2, §2.3, §8). The public surface
 * of `src/config/`; everything else in the folder is internal.
 */
export { parseDocument, decodeDocument, DOCUMENT_EXTENSIONS } from './parse.js';
export { matchesProfiles } from './profiles.js';
export { mergeSources, layerOrder, selectSources, pathKey, EXTENSIONS_LOWEST_FIRST, type Layer } from './merge.js';
export { toTree, flatten } from './tree.js';
export { render, envName, ENV_NAME_PATTERN, type EnvNaming, type RenderOptions } from './render.js';
export * from './types.js';
export { resolvePlaceholders, MAX_PLACEHOLDER_CHAIN, MAX_PLACEHOLDER_NESTING, MAX_RESOLVED_LENGTH, type PlaceholderError, type PlaceholderErrorData, type PlaceholderProblemKind, type ResolvePlaceholdersOptions } from './placeholders.js';
export { checkSchema, findSchemaViolation, parseSchemaFile, resolveAndCheck, schemaInstance, type AppSchema, type SchemaReader, type SchemaViolation } from './schema.js';
