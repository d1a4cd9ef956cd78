import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkFreeze } from '#shared/deployments/validation.ts';
import { parseRegistry } from '#shared/registry/registry.ts';
import {
  arnRuleMatches,
  iamRequester,
  isAllowed,
  mayRead,
  type RequesterRules,
  resolveIamRequester,
} from '#shared/registry/requester.ts';
import type { Requester } from '#shared/types.ts';
import { iamArnMatches, segmentGlob } from '#test/support/iam-arn-glob.ts';

/**
 * Registry rules for IAM callers mean no more than IAM's own ARN matching: the reference in
 * test/support/iam-arn-glob.ts is written from AWS's documentation, and the product's matcher is held to it.
 */

const ORCHESTRATOR = '123456789012';
const scope = { orchestratorAccount: ORCHESTRATOR };
const rules = (iam: string[]): RequesterRules => ({ iam, slack: [], schedule: [], local: [] });
const allowed = (who: Requester, iam: string[]) => isAllowed(who, rules(iam), scope);
const session = (account: string, role: string, partition = 'aws') =>
  `arn:${partition}:sts::${account}:assumed-role/${role}/someone@example.com`;
/** A caller whose role path the boundary did not (or could not) resolve. */
const unresolved = (account: string, role: string) => iamRequester(session(account, role));
/** A caller whose role path the boundary resolved with iam:GetRole. */
const resolved = (account: string, path: string, role: string) => iamRequester(session(account, role), path);

describe('the reference IAM ARN matcher agrees with the examples of the IAM User Guide', () => {
  it.each([
    ['arn:aws:iam::123456789012:user/accounting/*', 'arn:aws:iam::123456789012:user/accounting/Bob', true],
    ['arn:aws:iam::123456789012:user/accounting/*', 'arn:aws:iam::123456789012:user/marketing/Bob', false],
    ['arn:aws:s3:::amzn-s3-demo-bucket/*', 'arn:aws:s3:::amzn-s3-demo-bucket/a/b/c', true],
    ['arn:aws:iam::123456789012:user/Bob', 'arn:aws:iam::123456789012:user/bob', false],
    ['arn:aws:iam::123456789012:role/ci-?', 'arn:aws:iam::123456789012:role/ci-1', true],
    ['arn:aws:iam::123456789012:role/ci-?', 'arn:aws:iam::123456789012:role/ci-12', false],
    ['arn:aws:iam::123456789012:role/ci-?', 'arn:aws:iam::123456789012:role/ci-', false],
    ['arn:aws:*::123456789012:role/x', 'arn:aws:iam::123456789012:role/x', false],
    ['arn:aws:iam::*', 'arn:aws:iam::123456789012:role/x', true],
    ['arn:aws:iam::1234*:role/x', 'arn:aws:iam::123456789012:role/x', true],
    ['arn:aws:iam::12345678901?:role/x', 'arn:aws:iam::123456789012:role/y', false],
    ['arn:aws:iam::123456789012:role/*/x', 'arn:aws:iam::123456789012:role/a:b/x', false],
  ])('%s against %s: %s', (pattern, arn, expected) => {
    expect(iamArnMatches(pattern, arn)).toBe(expected);
  });

  it('globs one segment with * and ?', () => {
    expect(segmentGlob('a*c?', 'abbbcd')).toBe(true);
    expect(segmentGlob('a*c?', 'abbbc')).toBe(false);
    expect(segmentGlob('*', '')).toBe(true);
  });
});

describe('IAM rules in the registry', () => {
  it.each<[string, Requester, string[], boolean]>([
    // Role paths: a path rule admits exactly the roles on that path, and only when the path is known.
    [
      'a path rule admits a role on the path',
      resolved(ORCHESTRATOR, '/release-managers/', 'Deployer'),
      ['arn:aws:iam::123456789012:role/release-managers/*'],
      true,
    ],
    [
      'a path rule refuses a role on another path',
      resolved(ORCHESTRATOR, '/interns/', 'Deployer'),
      ['arn:aws:iam::123456789012:role/release-managers/*'],
      false,
    ],
    [
      'a path rule refuses a root-path role',
      resolved(ORCHESTRATOR, '/', 'Intern'),
      ['arn:aws:iam::123456789012:role/release-managers/*'],
      false,
    ],
    [
      'a path rule refuses a role whose path is unknown',
      unresolved(ORCHESTRATOR, 'Intern'),
      ['arn:aws:iam::123456789012:role/release-managers/*'],
      false,
    ],
    [
      'an exact path ARN refuses a same-named role whose path is unknown',
      unresolved(ORCHESTRATOR, 'Deployer'),
      ['arn:aws:iam::123456789012:role/release-managers/Deployer'],
      false,
    ],
    [
      'an exact path ARN admits the role once its path is known',
      resolved(ORCHESTRATOR, '/release-managers/', 'Deployer'),
      ['arn:aws:iam::123456789012:role/release-managers/Deployer'],
      true,
    ],
    [
      'a path-less ARN refuses the same name on a path',
      resolved(ORCHESTRATOR, '/team/', 'Release'),
      ['arn:aws:iam::123456789012:role/Release'],
      false,
    ],
    [
      'a path-less ARN admits the root-path role',
      resolved(ORCHESTRATOR, '/', 'Release'),
      ['arn:aws:iam::123456789012:role/Release'],
      true,
    ],
    [
      'role/* admits any role of the account, path known or not',
      unresolved(ORCHESTRATOR, 'Anything'),
      ['arn:aws:iam::123456789012:role/*'],
      true,
    ],
    [
      'role/*/Name needs a path',
      resolved(ORCHESTRATOR, '/', 'Release'),
      ['arn:aws:iam::123456789012:role/*/Release'],
      false,
    ],
    [
      'role/*/Name admits the name on any path',
      resolved(ORCHESTRATOR, '/a/b/', 'Release'),
      ['arn:aws:iam::123456789012:role/*/Release'],
      true,
    ],
    // Wildcards are IAM's: ? is one character, * stays within its segment, case counts.
    [
      '? is exactly one character',
      resolved(ORCHESTRATOR, '/', 'ci-12'),
      ['arn:aws:iam::123456789012:role/ci-?'],
      false,
    ],
    [
      '? matches one character',
      resolved(ORCHESTRATOR, '/', 'ci-1'),
      ['arn:aws:iam::123456789012:role/ci-?'],
      true,
    ],
    [
      'names are case-sensitive',
      resolved(ORCHESTRATOR, '/', 'Release'),
      ['arn:aws:iam::123456789012:role/release'],
      false,
    ],
    [
      'regular-expression characters are literal',
      resolved(ORCHESTRATOR, '/', 'aXb'),
      ['arn:aws:iam::123456789012:role/a.b'],
      false,
    ],
    [
      'the account is matched',
      resolved('999999999999', '/', 'Release'),
      ['arn:aws:iam::123456789012:role/Release'],
      false,
    ],
    [
      'the partition is matched',
      iamRequester(session(ORCHESTRATOR, 'Release', 'aws-cn'), '/'),
      ['arn:aws:iam::123456789012:role/Release'],
      false,
    ],
    [
      'an account wildcard does not run into the resource',
      resolved(ORCHESTRATOR, '/', 'Release'),
      ['arn:aws:iam::1234*'],
      false,
    ],
    [
      'the service takes no wildcard',
      resolved(ORCHESTRATOR, '/', 'Release'),
      ['arn:aws:*::123456789012:role/Release'],
      false,
    ],
    ['an ARN rule needs all six segments', resolved(ORCHESTRATOR, '/', 'Release'), ['arn:aws:iam'], false],
    // Bare names: a role of the orchestrator's account, by name, on any path.
    [
      'a bare name admits a role of the orchestrator account',
      unresolved(ORCHESTRATOR, 'DeveloperAccess'),
      ['Developer*'],
      true,
    ],
    [
      'a bare name admits it on any path',
      resolved(ORCHESTRATOR, '/aws-reserved/sso.amazonaws.com/', 'AWSReservedSSO_Admin_0a1b'),
      ['AWSReservedSSO_Admin_*'],
      true,
    ],
    [
      'a bare name refuses another account',
      unresolved('999999999999', 'DeveloperAccess'),
      ['Developer*'],
      false,
    ],
    [
      'a bare name does not match a path',
      resolved(ORCHESTRATOR, '/Developer/', 'Intern'),
      ['Developer*'],
      false,
    ],
    [
      'a bare name refuses an IAM user',
      iamRequester('arn:aws:iam::123456789012:user/DeveloperBob'),
      ['Developer*'],
      false,
    ],
    // Principals that are not sessions are matched by their own ARN.
    [
      'a user ARN rule admits that user',
      iamRequester('arn:aws:iam::123456789012:user/ops/bob'),
      ['arn:aws:iam::123456789012:user/ops/*'],
      true,
    ],
  ])('%s', (_what, who, iam, expected) => {
    expect(allowed(who, iam)).toBe(expected);
  });

  it('binds bare names to nothing when the orchestrator account is unknown', () => {
    expect(isAllowed(unresolved(ORCHESTRATOR, 'DeveloperAccess'), rules(['Developer*']), {})).toBe(false);
  });

  it('lets no other role override a freeze when approvers name a role path', () => {
    const env = {
      freezeWindows: [{ name: 'w', start: '2026-03-01T00:00:00Z', end: '2026-03-08T00:00:00Z' }],
      approvers: rules(['arn:aws:iam::123456789012:role/release-managers/*']),
      allowedRequesters: rules(['*']),
    };
    const during = new Date('2026-03-02T00:00:00Z');
    const intern = unresolved(ORCHESTRATOR, 'Intern');
    expect(() => checkFreeze(env as never, intern, true, during, scope)).toThrow(/frozen/);
    const manager = resolved(ORCHESTRATOR, '/release-managers/', 'Manager');
    expect(checkFreeze(env as never, manager, true, during, scope)).toEqual({
      window: 'w',
      endsAt: '2026-03-08T00:00:00.000Z',
    });
  });
});

describe('resolving the caller role path at the boundary', () => {
  it('asks the port for the account and role name, and keeps the path it returns', async () => {
    const asked: string[] = [];
    const who = await resolveIamRequester(session(ORCHESTRATOR, 'Deployer'), {
      rolePath: async (account, name) => {
        asked.push(`${account}/${name}`);
        return '/release-managers/';
      },
    });
    expect(asked).toEqual([`${ORCHESTRATOR}/Deployer`]);
    expect(who).toMatchObject({
      principal: 'arn:aws:iam::123456789012:role/release-managers/Deployer',
      rolePath: '/release-managers/',
    });
  });

  it.each(['release-managers/', '/x', '//', 'a/b'])('ignores a malformed path %j', async (path) => {
    const who = await resolveIamRequester(session(ORCHESTRATOR, 'Deployer'), { rolePath: async () => path });
    expect(who).toEqual(unresolved(ORCHESTRATOR, 'Deployer'));
  });

  it('leaves principals that are not sessions alone', async () => {
    const who = await resolveIamRequester('arn:aws:iam::123456789012:user/bob', {
      rolePath: async () => {
        throw new Error('not asked');
      },
    });
    expect(who).toEqual({
      type: 'iam',
      arn: 'arn:aws:iam::123456789012:user/bob',
      principal: 'arn:aws:iam::123456789012:user/bob',
    });
  });
});

// Property: the product never admits what the reference rejects ---------------------------------------------

const partitions = fc.constantFrom('aws', 'aws-cn', 'aws-us-gov');
const accounts = fc.constantFrom(ORCHESTRATOR, '210987654321', '999999999999');
const segment = fc.constantFrom('release-managers', 'team', 'a:b', 'sso.amazonaws.com', 'x', 'r?', 'p*');
const paths = fc.oneof(
  fc.constant('/'),
  fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => `/${parts.join('/')}/`),
);
const names = fc.constantFrom(
  'Release',
  'Deployer',
  'AWSReservedSSO_Admin_0a1b',
  'ci-1',
  'ci-12',
  'Intern',
  'r',
);

/** Turns some characters of a text into wildcards, or whole runs into `*`. */
const wildcarded = (text: string) =>
  fc
    .array(
      fc.tuple(
        fc.nat({ max: Math.max(text.length, 1) }),
        fc.nat({ max: 4 }),
        fc.constantFrom('*', '?', '**'),
      ),
      {
        maxLength: 3,
      },
    )
    .map((edits) => {
      let out = [...text];
      for (const [at, length, wild] of edits) {
        const start = Math.min(at, out.length);
        out = [...out.slice(0, start), ...wild, ...out.slice(start + (wild === '?' ? 1 : length))];
      }
      return out.join('');
    });

interface Case {
  trueArn: string;
  requester: Requester;
  rule: string;
}

/** A caller (a role session, or a user) with its true ARN, and a rule near it: often matching, often not. */
const cases: fc.Arbitrary<Case> = fc
  .record({
    partition: partitions,
    account: accounts,
    path: paths,
    name: names,
    sessionName: fc.stringMatching(/^[\w+=,.@-]{2,20}$/),
    user: fc.boolean(),
    pathKnown: fc.boolean(),
    ruleParts: fc.record({
      partition: partitions,
      account: accounts,
      path: paths,
      name: names,
      keep: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    }),
    bare: fc.boolean(),
  })
  .chain((c) => {
    const [keepPartition, keepAccount, keepPath, keepName] = c.ruleParts.keep;
    const kind = c.user ? 'user' : 'role';
    const trueArn = `arn:${c.partition}:iam::${c.account}:${kind}${c.path}${c.name}`;
    const requester: Requester = c.user
      ? { type: 'iam', arn: trueArn, principal: trueArn }
      : iamRequester(
          `arn:${c.partition}:sts::${c.account}:assumed-role/${c.name}/${c.sessionName}`,
          c.pathKnown ? c.path : undefined,
        );
    const ruleName = keepName ? c.name : c.ruleParts.name;
    if (c.bare) return wildcarded(ruleName).map((rule) => ({ trueArn, requester, rule }));
    const resource = `${kind}${keepPath ? c.path : c.ruleParts.path}${ruleName}`;
    return fc
      .tuple(
        wildcarded(keepPartition ? c.partition : c.ruleParts.partition),
        wildcarded(keepAccount ? c.account : c.ruleParts.account),
        wildcarded(resource),
      )
      .map(([partition, account, res]) => ({
        trueArn,
        requester,
        rule: `arn:${partition}:iam::${account}:${res}`,
      }));
  });

/** What the reference admits: ARN rules as IAM matches them; a bare name, a role of the orchestrator account. */
function referenceAdmits({ trueArn, rule }: Case): boolean {
  if (rule.startsWith('arn:')) return iamArnMatches(rule, trueArn);
  const role = /^arn:[^:]+:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(trueArn);
  return role?.[1] === ORCHESTRATOR && segmentGlob(rule, role[2] ?? '');
}

describe('property: the registry matcher admits no principal that IAM ARN matching rejects', () => {
  it('holds for random callers, paths, session names, partitions, accounts and wildcard rules', () => {
    let admitted = 0;
    fc.assert(
      fc.property(cases, (c) => {
        const product = allowed(c.requester, [c.rule]);
        if (product) admitted++;
        return !product || referenceAdmits(c);
      }),
      { numRuns: 3000 },
    );
    // The generator must reach the interesting side too, or the property says nothing.
    expect(admitted).toBeGreaterThan(100);
  });

  it('agrees with the reference on ARN rules whenever the role path is known', () => {
    fc.assert(
      fc.property(cases, (c) => {
        if (!c.rule.startsWith('arn:') || (c.requester.type === 'iam' && c.requester.principal !== c.trueArn))
          return true;
        // Where the two differ, the product is the narrower one (six segments, no colon-crossing before the end).
        return !arnRuleMatches(c.rule, c.trueArn) || iamArnMatches(c.rule, c.trueArn);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('readers', () => {
  const ROLE = (account: string, name: string) => `arn:aws:iam::${account}:role/crossdeploy/${name}`;
  const registry = parseRegistry({
    applications: {
      app: {
        source: { type: 'GITHUB', location: 'https://github.com/example-org/app.git' },
        environments: {
          prod: {
            accountId: '222222222222',
            region: 'eu-west-1',
            deployRoleArn: ROLE('222222222222', 'deploy'),
            executionRoleArn: ROLE('222222222222', 'cfn-exec'),
            stackName: 'app-prod',
            artifactsBucket: 'artifacts-222222222222-eu-west-1',
            allowedRequesters: { iam: ['ci-*'], local: ['alice'] },
            approvers: { iam: ['Release'], local: ['rm'] },
          },
          audited: {
            accountId: '333333333333',
            region: 'eu-west-1',
            deployRoleArn: ROLE('333333333333', 'deploy'),
            executionRoleArn: ROLE('333333333333', 'cfn-exec'),
            stackName: 'app-audited',
            artifactsBucket: 'artifacts-333333333333-eu-west-1',
            allowedRequesters: { iam: ['ci-*'], local: ['alice'] },
            readers: { iam: ['Auditor'], local: ['auditor'] },
          },
        },
      },
    },
  });
  const env = (name: string) => registry.applications.app!.environments[name]!;

  it('default to the requesters and approvers of the environment', () => {
    expect(mayRead(unresolved(ORCHESTRATOR, 'ci-build'), env('prod'), scope)).toBe(true);
    expect(mayRead(unresolved(ORCHESTRATOR, 'Release'), env('prod'), scope)).toBe(true);
    expect(mayRead({ type: 'local', user: 'rm' }, env('prod'), scope)).toBe(true);
    expect(mayRead(unresolved(ORCHESTRATOR, 'Intern'), env('prod'), scope)).toBe(false);
    expect(mayRead({ type: 'local', user: 'mallory' }, env('prod'), scope)).toBe(false);
  });

  it('when listed, are the only ones who may read', () => {
    expect(mayRead(unresolved(ORCHESTRATOR, 'Auditor'), env('audited'), scope)).toBe(true);
    expect(mayRead({ type: 'local', user: 'auditor' }, env('audited'), scope)).toBe(true);
    expect(mayRead(unresolved(ORCHESTRATOR, 'ci-build'), env('audited'), scope)).toBe(false);
    expect(mayRead({ type: 'local', user: 'alice' }, env('audited'), scope)).toBe(false);
  });
});
