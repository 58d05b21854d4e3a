/**
 * Name validation in one place (SPEC §5): every route checks application names,
 * profiles and refs here, after exactly one URL decoding (the router's) and before any
 * lookup.
 */
import { CFG_ERR_INVALID_NAME } from '../errors.js';
import { assertValidRef } from '../git/ref-name.js';

/** Application and profile names (SPEC §5). */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

/**
 * @throws CFG_ERR_INVALID_NAME (400) unless `value` matches {@link NAME_PATTERN} and has no `..`.
 *   The message names the rule, not the value.
 */
export function assertName(kind: 'application' | 'profile', value: string): void {
  if (!NAME_PATTERN.test(value) || value.includes('..')) {
    throw new CFG_ERR_INVALID_NAME(kind, `must match ${NAME_PATTERN.source} and contain no '..'`);
  }
}

/**
 * Splits a comma-separated profile list and validates every item; one bad item fails
 * the whole request (case 02). An absent or empty parameter means no profile.
 * @throws CFG_ERR_INVALID_NAME (400)
 */
export function parseProfiles(raw: string | undefined): string[] {
  if (raw === undefined || raw === '') return [];
  const profiles = raw.split(',');
  for (const p of profiles) assertName('profile', p);
  return [...new Set(profiles)];
}

/**
 * Validates a ref per git-check-ref-format(1) (or a commit id); `undefined` passes.
 * @throws CFG_ERR_INVALID_REF (400)
 */
export function checkRef(ref: string | undefined): string | undefined {
  if (ref === undefined || ref === '') return undefined;
  assertValidRef(ref);
  return ref;
}
