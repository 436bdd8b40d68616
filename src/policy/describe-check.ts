/**
 * A grant's checks in plain words, for denied callers, the audit log and `warden policy explain`.
 * Words name the argument and the rule, never the argument's value (it may be a secret).
 */
import type { Constraint } from '../config/policy-config.js';
import type { GrantCheck } from './compile-grants.js';

const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

export function describeCheck(check: GrantCheck, request: { readonly now: number }): string {
  if (check.kind === 'expiry') {
    const when = new Date(check.expiresAt).toISOString();
    return check.expiresAt <= request.now
      ? `the grant expired at ${when}`
      : `the grant is valid until ${when}`;
  }
  const { constraint } = check;
  const rule = describeConstraint(constraint);
  // A condition restricts, so it matches near-misses too (normalise-text.ts); the words say so.
  const condition = constraint.condition
    ? ` when ${constraint.condition.path} is ${constraint.condition.values.map(String).join(' or ')} (in any case, spacing or Unicode form)`
    : '';
  return `[${constraint.scope}] ${rule}${condition}`;
}

export function describeConstraint(constraint: Constraint): string {
  switch (constraint.kind) {
    case 'required':
      return `argument ${constraint.path} is required`;
    case 'forbidden':
      return `argument ${constraint.path} is not allowed`;
    case 'min':
      return `${constraint.path} must be a number of at least ${constraint.bound}`;
    case 'max':
      return `${constraint.path} must be a number of at most ${constraint.bound}`;
    case 'one_of':
      return constraint.list === undefined
        ? `${constraint.path} must be one of ${constraint.values.map(String).join(', ')}`
        : `${constraint.path} must be on the list ${constraint.list}`;
    case 'pattern':
      return `${constraint.path} must match the pattern ${constraint.pattern}`;
    case 'max_length':
      return `${constraint.path} must be text of at most ${constraint.bound} characters`;
    case 'tenant':
      return `the tenant must be one of ${constraint.values.join(', ')}`;
    case 'region':
      return `the region must be one of ${constraint.values.join(', ')}`;
    case 'time': {
      const days = constraint.days
        ? constraint.days.map((d) => DAY_NAMES[d]).join(', ')
        : 'any day';
      const hours =
        constraint.fromMinute === undefined
          ? ''
          : `, ${clock(constraint.fromMinute)}–${clock(constraint.toMinute ?? 1440)} UTC`;
      return `only on ${days}${hours}`;
    }
    case 'state':
      return `policy state ${constraint.state} must be ${constraint.on ? 'on' : 'off'}`;
  }
}

function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}
