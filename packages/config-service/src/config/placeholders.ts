/**
 * Placeholders in string values (SPEC §2.2): `${some.key}` and `${some.key:default}`,
 * resolved against the merged configuration itself, after merging and before rendering.
 *
 * The syntax and the resolution order are those of Spring Framework 6.2's
 * `PlaceholderParser` (the engine behind `PropertyPlaceholderHelper`, which Spring Boot's
 * `Environment` uses for `${...}` in property values; see the Spring Boot reference,
 * "Externalized Configuration › Property Placeholders"):
 *
 * - `${` opens a placeholder, the matching `}` closes it; every `{` inside counts as one
 *   more level, so `${a.${b:x}.c:default}` nests.
 * - The first `:` outside a nested placeholder separates the key from the default
 *   (`${url:http://h:80}` has the key `url` and the default `http://h:80`); `\:` is a
 *   literal colon in a key. The default is used only when the key has no value, and is
 *   resolved only then (`${x:}` is the empty string).
 * - `\${` is a literal `${` (the backslash is dropped) when a placeholder would start
 *   there; a `${` without its `}` is kept as text.
 * - A key's value is resolved in turn (recursively); meeting a key again while it is being
 *   resolved is a cycle.
 *
 * Differences from a Spring Boot application, on purpose: keys are looked up only in the
 * merged configuration, never in the service's environment variables or system
 * properties, and by their exact flattened name (`a.b`, `list[0]`, `list[0].host`,
 * `map[some.key]`), without relaxed binding. Only values are resolved, never keys.
 *
 * Secrets (SPEC §2.5, with {@link ResolvePlaceholdersOptions.secrets}): a secret value
 * (`{cipher}` text) is never parsed for placeholders. A value that is exactly one
 * placeholder naming a secret (`password: ${db.password}`, also through a chain of such
 * values) is a *copy*: it gets the secret's `{cipher}` text and stays a secret. A value
 * that puts a secret inside a longer text (`url: jdbc:...?password=${db.password}`) is
 * *composed*: the secret's text comes from `secrets.compose` (the plaintext, for a caller
 * allowed `secrets:read`), or, without `compose`, the value is refused with
 * `CFG_ERR_SECRET_REFERENCE`. A secret can never be part of a placeholder's key.
 */
import { CFG_ERR_PLACEHOLDER, CFG_ERR_SECRET_REFERENCE } from '../errors.js';
import { formatPropertyName, type NameToken } from './paths.js';
import { flatten } from './tree.js';
import type { MergedConfig, MergedProperty, Origin, PropertyValue, TreeValue } from './types.js';
import { isScalar } from './values.js';
import { MAX_PLACEHOLDER_NESTING, parse, PREFIX, Problem, writtenKey, type Part, type PlaceholderProblemKind } from './placeholder-syntax.js';

export { MAX_PLACEHOLDER_NESTING, type PlaceholderProblemKind } from './placeholder-syntax.js';

/** Longest chain of keys referring to one another (`a -> b -> c ...`). */
export const MAX_PLACEHOLDER_CHAIN = 64;
/** Longest resolved value, in UTF-16 code units; bounds "billion laughs" expansion. */
export const MAX_RESOLVED_LENGTH = 1_048_576;


/** Details attached as `data` to a `CFG_ERR_PLACEHOLDER` error (no values). */
export interface PlaceholderErrorData {
  readonly kind: PlaceholderProblemKind;
  /** Flattened name of the value being resolved (`a.b`, `list[0]`). */
  readonly key: string;
  /** Keys followed from `key`, `key` first; for a cycle the repeated key is last too. */
  readonly chain: readonly string[];
  /** For `missing`: the placeholder's key as written (nested placeholders unresolved, their defaults left out). */
  readonly placeholder?: string;
  /** For `secret` and `secretKey`: the flattened key of the secret referenced. */
  readonly secret?: string;
  /** Document, line and column of the key whose value holds the problem. */
  readonly document: string;
  readonly line?: number;
  readonly column?: number;
}

/** A `CFG_ERR_PLACEHOLDER` or `CFG_ERR_SECRET_REFERENCE` error (HTTP 422). */
export type PlaceholderError = Error & { readonly code: string; readonly statusCode: number; data: PlaceholderErrorData };

/** A secret met while resolving: its flattened key, its `{cipher}` text and where it is written. */
export interface SecretSource {
  readonly key: string;
  readonly text: string;
  readonly origin: Origin;
}

/** How {@link resolvePlaceholders} treats secrets (see this module's header). */
export interface PlaceholderSecrets {
  /** True for a secret value (`{cipher}` text; `isCipherText` of `secrets/`). */
  isSecret(text: string): boolean;
  /**
   * The text spliced in where a placeholder puts `secret` inside a longer value of key
   * `key` (the value being served): the plaintext for a caller allowed `secrets:read`.
   * May throw (a decryption error). Absent: such a value is refused with
   * CFG_ERR_SECRET_REFERENCE.
   */
  readonly compose?: (secret: SecretSource, key: string) => string;
}

/** Options of {@link resolvePlaceholders}. */
export interface ResolvePlaceholdersOptions {
  /** Secrets-aware resolution (see this module's header). Absent: `{cipher}` texts are ordinary strings. */
  readonly secrets?: PlaceholderSecrets;
  /**
   * Called for every value that cannot be resolved, instead of throwing the first
   * problem; such a value is kept as written. Used by `config-service validate` to report
   * every problem at once.
   */
  readonly onError?: (error: PlaceholderError) => void;
}

// ---------------------------------------------------------------- resolution

interface LookupEntry {
  readonly text: string;
  readonly origin: Origin;
  /** A secret value: used as it is, never parsed. */
  readonly secret: boolean;
}

/** A resolved text, with the secrets it used. */
interface Piece {
  readonly text: string;
  /** Flattened keys of the secrets the text was built from, sorted, each once. */
  readonly refs: readonly string[];
  /** Set when the text is exactly one secret's `{cipher}` text (a copy). */
  readonly secret?: SecretSource;
}

const NO_REFS: readonly string[] = Object.freeze([]);

function plain(text: string): Piece {
  return { text, refs: NO_REFS };
}

class Resolver {
  readonly #lookup: ReadonlyMap<string, LookupEntry>;
  readonly #secrets: PlaceholderSecrets | undefined;
  readonly #memo = new Map<string, Piece>();
  readonly #stack: string[] = [];

  constructor(lookup: ReadonlyMap<string, LookupEntry>, secrets: PlaceholderSecrets | undefined) {
    this.#lookup = lookup;
    this.#secrets = secrets;
  }

  /** Resolves the text of the value named `name` (the first link of every chain). */
  resolveValue(name: string, text: string): Piece {
    this.#stack.length = 0;
    this.#stack.push(name);
    return this.#text(text);
  }

  /** Innermost key being resolved when a problem was raised. */
  origin(chain: readonly string[], fallback: Origin): Origin {
    const inner = chain[chain.length - 1];
    return (inner === undefined ? undefined : this.#lookup.get(inner)?.origin) ?? fallback;
  }

  #text(text: string): Piece {
    if (!text.includes(PREFIX)) return plain(text);
    return this.#all(parse(text, false, 0, this.#stack), false);
  }

  /**
   * Resolves parts and joins them. One part that is a whole secret stays that secret (a
   * copy); a secret joined with other text is composed (or refused). In a placeholder's
   * key (`inKey`) no secret may take part.
   */
  #all(parts: readonly Part[], inKey: boolean): Piece {
    if (parts.length === 1) {
      const piece = this.#part(parts[0] as Part);
      if (inKey && piece.refs.length > 0) throw new Problem('secretKey', [...this.#stack], undefined, piece.refs[0]);
      if (piece.text.length > MAX_RESOLVED_LENGTH) throw new Problem('size', [...this.#stack]);
      return piece;
    }
    let out = '';
    let refs: Set<string> | undefined;
    for (const part of parts) {
      const piece = this.#part(part);
      if (piece.refs.length > 0) {
        if (inKey) throw new Problem('secretKey', [...this.#stack], undefined, piece.refs[0]);
        refs ??= new Set();
        for (const r of piece.refs) refs.add(r);
      }
      out += piece.secret === undefined ? piece.text : this.#compose(piece.secret);
      if (out.length > MAX_RESOLVED_LENGTH) throw new Problem('size', [...this.#stack]);
    }
    return refs === undefined ? plain(out) : { text: out, refs: [...refs].sort() };
  }

  /** The text of a secret put inside a longer value. */
  #compose(secret: SecretSource): string {
    const compose = this.#secrets?.compose;
    if (compose === undefined) throw new Problem('secret', [...this.#stack], undefined, secret.key);
    return compose(secret, this.#stack[0] as string);
  }

  #part(part: Part): Piece {
    if (part.kind === 'text') return plain(part.text);
    if (part.kind === 'simple') {
      const value = this.#key(part.key);
      if (value !== undefined) return value;
      if (part.fallback !== null) return plain(part.fallback);
      throw new Problem('missing', [...this.#stack], writtenKey(part));
    }
    const key = this.#all(part.keyParts, true).text;
    const value = this.#key(key);
    if (value !== undefined) return value;
    if (part.defaultParts !== null) return this.#all(part.defaultParts, false);
    throw new Problem('missing', [...this.#stack], writtenKey(part));
  }

  /** The resolved value of `key`, or `undefined` when the configuration has no such key. */
  #key(key: string): Piece | undefined {
    const entry = this.#lookup.get(key);
    if (entry === undefined) return undefined;
    if (entry.secret) return { text: entry.text, refs: [key], secret: { key, text: entry.text, origin: entry.origin } };
    if (this.#stack.includes(key)) throw new Problem('cycle', [...this.#stack, key]);
    const known = this.#memo.get(key);
    if (known !== undefined) return known;
    if (this.#stack.length >= MAX_PLACEHOLDER_CHAIN) throw new Problem('depth', [...this.#stack, key]);
    this.#stack.push(key);
    const value = this.#text(entry.text);
    this.#stack.pop();
    this.#memo.set(key, value);
    return value;
  }
}

function where(origin: Origin): string {
  const at = origin.line === undefined ? origin.document : `${origin.document}:${origin.line}:${origin.column ?? 1}`;
  return origin.commit === undefined ? at : `${at} (commit ${origin.commit})`;
}

function toError(problem: Problem, name: string, origin: Origin): PlaceholderError {
  const chain = problem.chain.length === 0 ? [name] : problem.chain;
  const inner = chain[chain.length - 1] as string;
  const reached = chain.length > 1 ? ` (reached from key '${name}': ${chain.join(' -> ')})` : '';
  let message: string;
  switch (problem.kind) {
    case 'missing':
      message = `unresolvable placeholder '${problem.placeholder ?? ''}' in key '${inner}'${reached}`;
      break;
    case 'cycle':
      message = `circular placeholder reference ${chain.join(' -> ')} in key '${name}'`;
      break;
    case 'depth':
      message = `placeholders in key '${name}' nest deeper than ${MAX_PLACEHOLDER_NESTING} levels or chain more than ${MAX_PLACEHOLDER_CHAIN} keys`;
      break;
    case 'size':
      message = `the resolved value of key '${name}' exceeds ${MAX_RESOLVED_LENGTH} characters`;
      break;
    case 'secret':
      message = `key '${inner}' puts the secret at key '${problem.secret ?? ''}' into a longer value, which is served only to callers allowed secrets:read${reached}`;
      break;
    case 'secretKey':
      message = `a placeholder key in key '${inner}' is built from the secret at key '${problem.secret ?? ''}'; a secret cannot name a key${reached}`;
      break;
  }
  const data: PlaceholderErrorData = {
    kind: problem.kind,
    key: name,
    chain: [...chain],
    ...(problem.placeholder === undefined ? {} : { placeholder: problem.placeholder }),
    ...(problem.secret === undefined ? {} : { secret: problem.secret }),
    document: origin.document,
    ...(origin.line === undefined ? {} : { line: origin.line, column: origin.column ?? 1 }),
  };
  const Ctor = problem.kind === 'secret' || problem.kind === 'secretKey' ? CFG_ERR_SECRET_REFERENCE : CFG_ERR_PLACEHOLDER;
  return Object.assign(new Ctor(`${where(origin)}: ${message}`), { data });
}

/** The result of {@link resolvePlaceholdersWithSecrets}. */
export interface ResolvedPlaceholders {
  /** The configuration with every placeholder resolved; same keys, same order. */
  readonly config: MergedConfig;
  /**
   * Values that are a whole copy of one secret (`password: ${db.password}`), by flattened
   * name: the secret copied (its key, `{cipher}` text and origin). Their value is that
   * `{cipher}` text. Empty without `options.secrets`.
   */
  readonly copies: ReadonlyMap<string, SecretSource>;
  /**
   * Values with a secret inside a longer text, by flattened name: the keys of the secrets
   * they hold, sorted. Their value holds what `secrets.compose` gave. Empty without
   * `options.secrets`.
   */
  readonly composed: ReadonlyMap<string, readonly string[]>;
}

/**
 * Resolves `${key}` / `${key:default}` placeholders in every string value of a merged
 * configuration (SPEC §2.2), including strings inside lists and maps in lists.
 *
 * - Keys are the flattened names of the configuration itself (as the `properties` format
 *   writes them: `a.b`, `list[0]`, `servers[0].host`); a referenced number or boolean is
 *   used as its text (`8080`, `true`). A list or map as a whole has no flattened name
 *   and so cannot be referenced. Never the service's environment.
 * - A value with a placeholder becomes a string (as in Spring, where a resolved property
 *   is a `String` until bound), even when the referenced value was a number.
 * - Origins and overridden origins are kept unchanged; properties without placeholders
 *   are returned as the same objects.
 * - Bounds: a chain of at most {@link MAX_PLACEHOLDER_CHAIN} keys, nesting of at most
 *   {@link MAX_PLACEHOLDER_NESTING} levels, resolved values of at most
 *   {@link MAX_RESOLVED_LENGTH} characters.
 * - With `options.secrets`: secrets as this module's header says; which values copy or
 *   compose a secret is in the result.
 *
 * @param config - the merge result, unresolved.
 * @param options - `onError` to collect every problem instead of throwing the first;
 *   `secrets` for secrets-aware resolution.
 * @returns the resolved configuration, and the copies and compositions of secrets.
 * @throws CFG_ERR_PLACEHOLDER (422), unless `onError` is given, for a key without value
 *   and without default (`orders/application.yml:3:7: unresolvable placeholder 'x.y' in
 *   key 'a.b'`), a cycle (`circular placeholder reference a -> b -> a in key 'a'`), or a
 *   bound exceeded. The message names the document, line and column of the key whose
 *   value holds the placeholder, and keys only, never a value; `data` is
 *   {@link PlaceholderErrorData}.
 * @throws CFG_ERR_SECRET_REFERENCE (422), unless `onError` is given, for a secret inside
 *   a longer value when `secrets.compose` is absent (`orders/application.yml:4:3: key
 *   'db.url' puts the secret at key 'db.password' into a longer value, ...`), or a secret
 *   in a placeholder's key; names keys only.
 * @throws whatever `secrets.compose` throws (CFG_ERR_SECRET_DECRYPT_FAILED).
 */
export function resolvePlaceholdersWithSecrets(config: MergedConfig, options: ResolvePlaceholdersOptions = {}): ResolvedPlaceholders {
  const secrets = options.secrets;
  const lookup = new Map<string, LookupEntry>();
  for (const [k, p] of config) {
    for (const [name, text] of flatten(new Map([[k, p]]))) {
      if (!lookup.has(name)) lookup.set(name, { text, origin: p.origin, secret: secrets?.isSecret(text) ?? false });
    }
  }
  const resolver = new Resolver(lookup, secrets);
  const copies = new Map<string, SecretSource>();
  const composed = new Map<string, readonly string[]>();

  const resolveLeaf = (tokens: readonly NameToken[], text: string, origin: Origin): string => {
    if (!text.includes(PREFIX)) return text;
    // A secret is never parsed: its text is ciphertext, and its plaintext is a literal.
    if (secrets?.isSecret(text) === true) return text;
    const name = formatPropertyName(tokens);
    try {
      const piece = resolver.resolveValue(name, text);
      if (piece.secret !== undefined) copies.set(name, piece.secret);
      else if (piece.refs.length > 0) composed.set(name, piece.refs);
      return piece.text;
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      // A missing key or a secret reference points at the key whose value holds the placeholder; the other problems at the value resolved.
      const inner = err.kind === 'missing' || err.kind === 'secret' || err.kind === 'secretKey';
      const error = toError(err, name, inner ? resolver.origin(err.chain, origin) : origin);
      if (options.onError === undefined) throw error;
      options.onError(error);
      return text;
    }
  };

  const walk = (tokens: NameToken[], value: TreeValue, origin: Origin): TreeValue => {
    if (typeof value === 'string') return resolveLeaf(tokens, value, origin);
    if (isScalar(value)) return value;
    if (Array.isArray(value)) {
      const items = value as readonly TreeValue[];
      let changed = false;
      const out = items.map((item, i) => {
        const r = walk([...tokens, { index: i }], item, origin);
        if (r !== item) changed = true;
        return r;
      });
      return changed ? out : value;
    }
    const map = value as { readonly [key: string]: TreeValue };
    let changed = false;
    const entries = Object.keys(map).map((k): [string, TreeValue] => {
      const item = map[k] as TreeValue;
      const r = walk([...tokens, k], item, origin);
      if (r !== item) changed = true;
      return [k, r];
    });
    return changed ? Object.fromEntries(entries) : value;
  };

  const out = new Map<string, MergedProperty>();
  for (const [k, p] of config) {
    const value = walk([...p.path], p.value as TreeValue, p.origin) as PropertyValue;
    out.set(k, value === p.value ? p : { ...p, value });
  }
  return { config: out, copies, composed };
}

/**
 * {@link resolvePlaceholdersWithSecrets}, returning the configuration only. Same rules,
 * options and errors.
 */
export function resolvePlaceholders(config: MergedConfig, options: ResolvePlaceholdersOptions = {}): MergedConfig {
  return resolvePlaceholdersWithSecrets(config, options).config;
}
