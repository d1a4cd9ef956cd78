import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRegistryText } from '#shared/registry/file.ts';
import { iamRequester, isAllowed, roleSessionName, sourceIdentity } from '#shared/registry/requester.ts';
import type { Requester } from '#shared/types.ts';

const registry = parseRegistryText(
  readFileSync(new URL('../fixtures/registry.yaml', import.meta.url), 'utf8'),
);
const env = (name: string) => registry.applications['hello-world']!.environments[name]!;
/** The fixture's callers are roles of the orchestrator's own account. */
const scope = { orchestratorAccount: '123456789012' };

describe('typed requesters', () => {
  it('normalises an assumed-role session ARN to its role', () => {
    expect(iamRequester('arn:aws:sts::123456789012:assumed-role/Release/alice@example.com')).toEqual({
      type: 'iam',
      arn: 'arn:aws:sts::123456789012:assumed-role/Release/alice@example.com',
      principal: 'arn:aws:iam::123456789012:role/Release',
    });
  });

  it('matches role ARNs (once the role path is known) and role-name patterns, including SSO roles', () => {
    expect(
      isAllowed(
        iamRequester('arn:aws:sts::123456789012:assumed-role/Release/bob', '/'),
        env('prod').allowedRequesters,
        scope,
      ),
    ).toBe(true);
    // The rule names the root-path role; a session alone cannot tell that its role is that one.
    expect(
      isAllowed(
        iamRequester('arn:aws:sts::123456789012:assumed-role/Release/bob'),
        env('prod').allowedRequesters,
        scope,
      ),
    ).toBe(false);
    expect(
      isAllowed(
        iamRequester('arn:aws:sts::999999999999:assumed-role/Release/bob', '/'),
        env('prod').allowedRequesters,
        scope,
      ),
    ).toBe(false);
    expect(
      isAllowed(
        iamRequester('arn:aws:sts::123456789012:assumed-role/DeveloperAccess/bob'),
        env('staging').allowedRequesters,
        scope,
      ),
    ).toBe(true);
    const sso = {
      ...env('staging'),
      allowedRequesters: { ...env('staging').allowedRequesters, iam: ['AWSReservedSSO_Admin_*'] },
    };
    expect(
      isAllowed(
        iamRequester('arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/carol'),
        sso.allowedRequesters,
        scope,
      ),
    ).toBe(true);
    expect(
      isAllowed(
        iamRequester('arn:aws:iam::123456789012:user/AWSReservedSSO_Admin_x'),
        sso.allowedRequesters,
        scope,
      ),
    ).toBe(false);
  });

  it('does not let a wildcard-looking role name escape its pattern', () => {
    expect(
      isAllowed(
        iamRequester('arn:aws:sts::123456789012:assumed-role/NotDeveloper/x'),
        env('staging').allowedRequesters,
        scope,
      ),
    ).toBe(false);
  });

  it.each<Requester>([
    {
      type: 'iam',
      arn: 'x',
      principal: 'arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123456789abcdef',
    },
    {
      type: 'slack',
      teamId: 'T1',
      userId: 'U1',
      userName: 'ünïcode name with spaces and a very long tail that goes on',
    },
    { type: 'schedule', scheduleName: 'promote staging to prod' },
    { type: 'local', user: 'aws:root' },
  ])('derives a SourceIdentity STS accepts for %j', (requester) => {
    const id = sourceIdentity(requester);
    expect(id).toMatch(/^[\w+=,.@-]{2,64}$/);
    expect(id.startsWith('aws:')).toBe(false);
    expect(id.startsWith(requester.type)).toBe(true);
  });

  it('gives different requesters different SourceIdentities', () => {
    expect(sourceIdentity({ type: 'local', user: 'a' })).not.toBe(
      sourceIdentity({ type: 'local', user: 'b' }),
    );
  });

  it('derives the session name from the deployment id', () => {
    expect(roleSessionName('01JABCDEF')).toBe('crossdeploy-01JABCDEF');
    expect(roleSessionName('x'.repeat(100))).toHaveLength(64);
  });
});
