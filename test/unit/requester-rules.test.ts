import { describe, expect, it } from 'vitest';
import * as requester from '#shared/requester.ts';
import type { Requester } from '#shared/types.ts';
import { checkFreeze } from '#shared/validation.ts';

// Pre-fix probe: today's isAllowed(requester, env) ignores any third argument.
const rules = (iam: string[]) => ({ iam, slack: [], schedule: [], local: [] });
const allowed = (who: Requester, iam: string[]) =>
  (requester.isAllowed as (...args: unknown[]) => boolean)(
    who,
    { allowedRequesters: rules(iam) },
    { orchestratorAccount: '123456789012' },
  );
const session = (account: string, role: string) =>
  requester.iamRequester(`arn:aws:sts::${account}:assumed-role/${role}/someone`);

describe('hostile', () => {
  it('a role-path rule does not admit every role of the account', () => {
    expect(allowed(session('123456789012', 'Intern'), ['arn:aws:iam::123456789012:role/release-managers/*'])).toBe(false);
  });
  it('a role-path rule does not admit a same-named role whose path is unknown', () => {
    expect(allowed(session('123456789012', 'Deployer'), ['arn:aws:iam::123456789012:role/release-managers/Deployer'])).toBe(false);
  });
  it('a path-rule approver list lets no other role override a freeze', () => {
    const env = {
      freezeWindows: [{ name: 'w', start: '2026-03-01T00:00:00Z', end: '2026-03-08T00:00:00Z' }],
      approvers: rules(['arn:aws:iam::123456789012:role/release-managers/*']),
      allowedRequesters: rules(['*']),
    };
    expect(() => checkFreeze(env as never, session('123456789012', 'Intern'), true, new Date('2026-03-02T00:00:00Z'))).toThrow(/frozen/);
  });
  it('a bare role name admits only roles of the orchestrator account', () => {
    expect(allowed(session('999999999999', 'DeveloperAccess'), ['Developer*'])).toBe(false);
  });
});
