/**
 * Spring profile expressions (`prod`, `!dev`, `prod & eu`, `prod | qa`, parentheses), as
 * Spring Framework's `Profiles.of` / `ProfilesParser` reads them.
 */
import { CFG_ERR_DOCUMENT_INVALID, withData } from '../errors.js';

type Predicate = (active: ReadonlySet<string>) => boolean;

type Ctx = 'none' | 'parenthesis' | 'negate';

/** Thrown text when an expression is malformed (the expression itself is not quoted). */
const MALFORMED = 'malformed profile expression';

/**
 * Compiles one profile expression with the rules of Spring's `ProfilesParser`: tokens are
 * split at `(`, `)`, `&`, `|`, `!` and trimmed; `&` and `|` may not be mixed without
 * parentheses; an empty expression or one with an empty operand is malformed. Stricter
 * than Spring on one point: a dangling operator (`a |`, `& a`) is refused, where Spring
 * quietly ignores it.
 *
 * @throws Error (plain) with message `malformed profile expression` — callers add the
 *   document position and wrap it in `CFG_ERR_DOCUMENT_INVALID`.
 */
export function compileProfileExpression(expression: string): Predicate {
  if (expression.trim() === '') throw new Error(MALFORMED);
  const tokens = expression.split(/([()&|!])/).map((t) => t.trim()).filter((t) => t !== '');
  let pos = 0;

  const merge = (elements: Predicate[], op: '&' | '|' | undefined): Predicate => {
    if (elements.length === 0) throw new Error(MALFORMED);
    if (elements.length === 1) return elements[0] as Predicate;
    const all = [...elements];
    return op === '&' ? (a) => all.every((p) => p(a)) : (a) => all.some((p) => p(a));
  };

  const parse = (ctx: Ctx): Predicate => {
    const elements: Predicate[] = [];
    let op: '&' | '|' | undefined;
    // Stricter than Spring: an operator needs an operand on both sides (`a |` is refused).
    let dangling = false;
    const add = (p: Predicate): void => {
      elements.push(p);
      dangling = false;
    };
    const done = (): Predicate => {
      if (dangling) throw new Error(MALFORMED);
      return merge(elements, op);
    };
    while (pos < tokens.length) {
      const token = tokens[pos++] as string;
      switch (token) {
        case '(': {
          const contents = parse('parenthesis');
          if (ctx === 'negate') return contents;
          add(contents);
          break;
        }
        case '&':
        case '|':
          if (op !== undefined && op !== token) throw new Error(MALFORMED);
          if (elements.length === 0 || dangling) throw new Error(MALFORMED);
          op = token;
          dangling = true;
          break;
        case '!': {
          const inner = parse('negate');
          add((a) => !inner(a));
          break;
        }
        case ')': {
          const merged = done();
          if (ctx === 'parenthesis') return merged;
          elements.length = 0;
          add(merged);
          op = undefined;
          break;
        }
        default: {
          const name = token;
          const value: Predicate = (a) => a.has(name);
          if (ctx === 'negate') return value;
          add(value);
        }
      }
    }
    return done();
  };

  return parse('none');
}

/**
 * Whether a profile expression holds for the active profiles (Spring Framework
 * `Profiles.of(expression).matches(activeProfiles::contains)`). Profile names compare
 * exactly (case-sensitive).
 *
 * @param expression - e.g. `prod & (eu | us)` or `!dev`.
 * @param active - the active profiles, in any order.
 * @returns true when the expression holds.
 * @throws CFG_ERR_DOCUMENT_INVALID (422) when the expression is malformed (empty, mixed
 *   `&`/`|` without parentheses, missing operand); the expression is not quoted.
 */
export function matchesProfiles(expression: string, active: readonly string[]): boolean {
  let predicate: Predicate;
  try {
    predicate = compileProfileExpression(expression);
  } catch {
    throw withData(new CFG_ERR_DOCUMENT_INVALID(MALFORMED), {});
  }
  return predicate(new Set(active));
}
