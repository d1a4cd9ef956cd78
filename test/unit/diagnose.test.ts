import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { StsTargetAccess } from '#shared/aws/sts.ts';
import { type AwsFault, classifyAwsError } from '#shared/diagnosis/aws-fault.ts';
import { type DiagnosisContext, diagnoseAssumeRole, formatDiagnosis } from '#shared/diagnosis/diagnose.ts';
import { gatherAssumeRoleEvidence } from '#shared/diagnosis/evidence.ts';
import { EXTERNAL_ID_PLACEHOLDER, roleOfSession, trustNamesPrincipal } from '#shared/diagnosis/statements.ts';

/**
 * The shared diagnosis of a failed AssumeRole. Every error text below is the one AWS sends, as quoted in AWS
 * documentation or in a published report (source in the comment); only account ids and names are ours.
 */

const DEPLOY_ROLE = 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy';
const DEPLOYER = 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer';
const DEPLOYER_SESSION = 'arn:aws:sts::123456789012:assumed-role/crossdeploy-deployer/1718000000000';

const awsError = (name: string, message: string) =>
  Object.assign(new Error(message), { name, $fault: 'client' });

/** cloudposse/terraform-aws-components 1.231.0 (STS AssumeRole, api error AccessDenied). */
const ACCESS_DENIED = awsError(
  'AccessDenied',
  `User: ${DEPLOYER_SESSION} is not authorized to perform: sts:AssumeRole on resource: ${DEPLOY_ROLE}`,
);

const context = (change: Partial<DiagnosisContext['attempt']> = {}): DiagnosisContext => ({
  attempt: {
    roleArn: DEPLOY_ROLE,
    sourceIdentity: 'iam-Release-0123abcd',
    sessionName: 'crossdeploy-01J0000000000000000000000',
    durationSeconds: 3600,
    region: 'eu-west-1',
    ...change,
  },
  targetAccountId: '222222222222',
  registryPath: 'applications.hello-world.environments.prod',
});

const causes = (d: ReturnType<typeof diagnoseAssumeRole>) =>
  d.candidates.map((c) => `${c.cause}:${c.likelihood}`);

describe('classifyAwsError', () => {
  it('reads the principal, action and resource out of an AccessDenied text', () => {
    expect(classifyAwsError(ACCESS_DENIED)).toMatchObject({
      kind: 'access-denied',
      code: 'AccessDenied',
      principal: DEPLOYER_SESSION,
      action: 'sts:AssumeRole',
      resource: DEPLOY_ROLE,
    });
  });

  it('reads which kind of policy denied from the newer texts', () => {
    // IAM User Guide, "Troubleshoot access denied error messages" (implicit and explicit denies).
    const implicit = classifyAwsError(
      awsError(
        'AccessDenied',
        `User: ${DEPLOYER_SESSION} is not authorized to perform: sts:AssumeRole on resource: ${DEPLOY_ROLE} because no identity-based policy allows the sts:AssumeRole action`,
      ),
    );
    expect(implicit.deniedBy).toEqual({ policy: 'identity-based', explicit: false });
    expect(implicit.resource).toBe(DEPLOY_ROLE);
    const explicit = classifyAwsError(
      awsError(
        'AccessDenied',
        `User: ${DEPLOYER_SESSION} is not authorized to perform: sts:AssumeRole on resource: ${DEPLOY_ROLE} with an explicit deny in a service control policy`,
      ),
    );
    expect(explicit.deniedBy).toEqual({ policy: 'service control', explicit: true });
  });

  it.each<[string, Error, AwsFault['kind']]>([
    // noqdev/iambic#357
    [
      'a SetSourceIdentity denial',
      awsError(
        'AccessDenied',
        'User: arn:aws:sts::123456789012:assumed-role/REDACTED_ROLE_1/REDACTED_SESSION_NAME is not authorized to perform: sts:SetSourceIdentity on resource: arn:aws:iam::222222222222:role/IambicHubRole',
      ),
      'source-identity-denied',
    ],
    // gitlab-org/gitlab-runner#38370; AWS Knowledge Center "iam-role-chaining-limit"
    [
      'the role-chaining limit',
      awsError(
        'ValidationError',
        'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
      ),
      'chaining-duration',
    ],
    // Infisical/infisical#5531; STS API reference, RegionDisabledException
    [
      'a region where STS is not activated',
      awsError(
        'RegionDisabledException',
        'STS is not activated in this region for account:222222222222. Your account administrator can activate STS in this region using the IAM Console.',
      ),
      'region-disabled',
    ],
    // prowler-cloud/prowler#789; aws/aws-cli#7870
    [
      'expired caller credentials',
      awsError('ExpiredToken', 'The security token included in the request is expired'),
      'expired-credentials',
    ],
    // lambci/lambci#103
    [
      'a PassRole denial',
      awsError(
        'AccessDenied',
        'User: arn:aws:sts::605034037838:assumed-role/lambci-LambdaExecution-1PR6HWHH4F78M/lambci-build is not authorized to perform: iam:PassRole on resource: arn:aws:iam::605034037838:role/lambci-SnsFailures-12A7PH6XYO1HO',
      ),
      'pass-role-denied',
    ],
    ['throttling', awsError('Throttling', 'Rate exceeded'), 'throttled'],
    ['anything else', awsError('MalformedPolicyDocument', 'x'), 'other'],
  ])('recognises %s', (_what, error, kind) => {
    expect(classifyAwsError(error).kind).toBe(kind);
  });

  it('takes the account that must activate STS from the RegionDisabledException text', () => {
    const fault = classifyAwsError(
      awsError(
        'RegionDisabledException',
        'STS is not activated in this region for account:222222222222. Your account administrator can activate STS in this region using the IAM Console.',
      ),
    );
    expect(fault.account).toBe('222222222222');
  });
});

describe('diagnoseAssumeRole', () => {
  it('lists every candidate, in the order to check them, when there is no evidence (the workflow)', () => {
    const d = diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context());
    expect(causes(d)).toEqual([
      'caller-policy:possible',
      'trust-policy:possible',
      'external-id:possible',
      'role-missing:possible',
    ]);
    expect(d.candidates.map((c) => c.account.kind)).toEqual([
      'orchestrator',
      'target',
      'registry',
      'registry',
    ]);
  });

  it('confirms the caller side when the simulation says its policy does not allow sts:AssumeRole (fault 1)', () => {
    const d = diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context(), {
      callerRoleArn: DEPLOYER,
      simulation: { 'sts:AssumeRole': 'implicitDeny', 'sts:SetSourceIdentity': 'implicitDeny' },
    });
    const [best] = d.candidates;
    expect(best).toMatchObject({ cause: 'caller-policy', likelihood: 'confirmed' });
    expect(best?.account).toEqual({ kind: 'orchestrator', accountId: '123456789012' });
    expect(best?.statements).toEqual([
      {
        policy: 'permissions',
        role: DEPLOYER,
        statement: {
          Sid: 'AssumeCrossdeployDeployRole',
          Effect: 'Allow',
          Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
          Resource: DEPLOY_ROLE,
        },
      },
    ]);
  });

  it('confirms the caller side from the text "because no identity-based policy allows"', () => {
    const fault = classifyAwsError(
      awsError(
        'AccessDenied',
        `User: ${DEPLOYER_SESSION} is not authorized to perform: sts:AssumeRole on resource: ${DEPLOY_ROLE} because no identity-based policy allows the sts:AssumeRole action`,
      ),
    );
    expect(diagnoseAssumeRole(fault, context()).candidates[0]).toMatchObject({
      cause: 'caller-policy',
      likelihood: 'confirmed',
    });
  });

  it('points at the trust policy, with the real ARNs, once the caller side is ruled out (fault 2)', () => {
    const d = diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context(), {
      caller: { arn: DEPLOYER_SESSION, account: '123456789012' },
      callerRoleArn: DEPLOYER,
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
      withoutSourceIdentity: 'denied',
    });
    expect(causes(d)).toEqual([
      'trust-policy:likely',
      'external-id:possible',
      'role-missing:possible',
      'source-identity:ruled-out',
      'caller-policy:ruled-out',
    ]);
    expect(d.candidates[0]?.account).toEqual({ kind: 'target', accountId: '222222222222' });
    expect(d.candidates[0]?.statements?.[0]).toEqual({
      policy: 'trust',
      role: DEPLOY_ROLE,
      statement: {
        Sid: 'TrustCrossdeployDeployer',
        Effect: 'Allow',
        Principal: { AWS: 'arn:aws:iam::123456789012:root' },
        Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
        Condition: { ArnEquals: { 'aws:PrincipalArn': DEPLOYER } },
      },
    });
  });

  it('ranks a wrong ExternalId first when the registry sets one, and never prints its value (fault 3)', () => {
    const d = diagnoseAssumeRole(
      classifyAwsError(ACCESS_DENIED),
      context({ externalId: 'crossdeploy-prod-7f3a' }),
      {
        callerRoleArn: DEPLOYER,
        simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
        withoutSourceIdentity: 'denied',
      },
    );
    expect(causes(d).slice(0, 2)).toEqual(['external-id:likely', 'trust-policy:likely']);
    expect(d.candidates[0]?.fix).toMatch(/silently ignores an ExternalId the trust policy does not require/);
    const trust = d.candidates.find((c) => c.cause === 'trust-policy');
    expect(trust?.statements?.[0]?.statement).toMatchObject({
      Condition: { StringEquals: { 'sts:ExternalId': EXTERNAL_ID_PLACEHOLDER } },
    });
    expect(JSON.stringify(d)).not.toContain('crossdeploy-prod-7f3a');
  });

  it('keeps a missing ExternalId among the candidates when the registry sets none (fault 3)', () => {
    const d = diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context(), {
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
    });
    const externalId = d.candidates.find((c) => c.cause === 'external-id');
    expect(externalId?.summary).toMatch(/may require an ExternalId the registry does not set/);
    expect(externalId?.fix).toMatch(
      /Set externalId in the registry \(applications\.hello-world\.environments\.prod\)/,
    );
  });

  it('confirms a role ARN in the wrong account before anything else (fault 4)', () => {
    const d = diagnoseAssumeRole(
      classifyAwsError(ACCESS_DENIED),
      context({ roleArn: 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deploy' }),
    );
    expect(d.candidates[0]).toMatchObject({
      cause: 'wrong-account',
      likelihood: 'confirmed',
      account: { kind: 'registry' },
    });
  });

  it('confirms a missing role when it could be looked up (fault 5)', () => {
    const d = diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context(), { roleExists: false });
    expect(d.candidates[0]).toMatchObject({ cause: 'role-missing', likelihood: 'confirmed' });
  });

  it("suspects the seed article's mistake: the target account with the caller's own role name (fault 5)", () => {
    const roleArn = 'arn:aws:iam::222222222222:role/crossdeploy-deployer';
    const d = diagnoseAssumeRole(
      classifyAwsError(
        awsError(
          'AccessDenied',
          `User: ${DEPLOYER_SESSION} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
        ),
      ),
      context({ roleArn }),
    );
    expect(d.candidates[0]).toMatchObject({ cause: 'role-missing', likelihood: 'likely' });
    expect(d.candidates[0]?.because).toMatch(/caller's own role name \(crossdeploy-deployer\)/);
  });

  it('explains the one-hour limit of role chaining (fault 6)', () => {
    const fault = classifyAwsError(
      awsError(
        'ValidationError',
        'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
      ),
    );
    const d = diagnoseAssumeRole(fault, context({ durationSeconds: 7200 }), {
      caller: { arn: DEPLOYER_SESSION, account: '123456789012' },
    });
    expect(d.candidates).toHaveLength(1);
    expect(d.candidates[0]).toMatchObject({ cause: 'chaining-duration', likelihood: 'confirmed' });
    expect(d.headline).toMatch(/DurationSeconds 7200/);
    expect(d.candidates[0]?.fix).toMatch(/at most 3600 seconds/);
  });

  it('tells which side does not allow sts:SetSourceIdentity (fault 7)', () => {
    const fault = classifyAwsError(
      awsError(
        'AccessDenied',
        `User: ${DEPLOYER_SESSION} is not authorized to perform: sts:SetSourceIdentity on resource: ${DEPLOY_ROLE}`,
      ),
    );
    const trustSide = diagnoseAssumeRole(fault, context(), {
      callerRoleArn: DEPLOYER,
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' },
    });
    expect(trustSide.candidates[0]).toMatchObject({
      cause: 'source-identity',
      likelihood: 'confirmed',
      account: { kind: 'target' },
    });
    expect(trustSide.candidates[0]?.statements?.map((s) => s.policy)).toEqual(['trust']);

    const callerSide = diagnoseAssumeRole(fault, context(), {
      callerRoleArn: DEPLOYER,
      simulation: { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'implicitDeny' },
    });
    expect(callerSide.candidates[0]).toMatchObject({
      cause: 'source-identity',
      account: { kind: 'orchestrator' },
    });
    expect(callerSide.candidates[0]?.statements?.map((s) => s.policy)).toEqual(['permissions']);
  });

  it('confirms SourceIdentity when the same AssumeRole without it succeeds (fault 7)', () => {
    const d = diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context(), {
      callerRoleArn: DEPLOYER,
      withoutSourceIdentity: 'succeeded',
    });
    expect(d.candidates[0]).toMatchObject({ cause: 'source-identity', likelihood: 'confirmed' });
    expect(d.candidates[0]?.statements?.map((s) => s.policy).sort()).toEqual(['permissions', 'trust']);
  });

  it('names the account that must activate STS in the region (fault 9)', () => {
    const fault = classifyAwsError(
      awsError(
        'RegionDisabledException',
        'STS is not activated in this region for account:222222222222. Your account administrator can activate STS in this region using the IAM Console.',
      ),
    );
    const d = diagnoseAssumeRole(fault, context({ region: 'ap-east-1' }));
    expect(d.candidates[0]).toMatchObject({
      cause: 'region-disabled',
      account: { kind: 'target', accountId: '222222222222' },
    });
    expect(d.candidates[0]?.fix).toMatch(/activate the ap-east-1 endpoint/);
  });

  it("puts expired credentials on the caller, not on either account's policies (fault 10)", () => {
    const d = diagnoseAssumeRole(
      classifyAwsError(awsError('ExpiredToken', 'The security token included in the request is expired')),
      context(),
    );
    expect(d.candidates).toEqual([
      expect.objectContaining({
        cause: 'expired-credentials',
        likelihood: 'confirmed',
        account: { kind: 'caller' },
      }),
    ]);
  });

  it('explains a PassRole denial with the statement for the deploy role (fault 8)', () => {
    const exec = 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-cfn-exec';
    const fault = classifyAwsError(
      awsError(
        'AccessDenied',
        `User: arn:aws:sts::222222222222:assumed-role/crossdeploy-deploy/crossdeploy-01J is not authorized to perform: iam:PassRole on resource: ${exec}`,
      ),
    );
    const d = diagnoseAssumeRole(fault, context());
    expect(d.candidates[0]?.statements?.[0]).toEqual({
      policy: 'permissions',
      role: DEPLOY_ROLE,
      statement: {
        Sid: 'PassExecutionRoleToCloudFormation',
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: exec,
        Condition: { StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' } },
      },
    });
  });
});

describe('formatDiagnosis', () => {
  it('fits the deployment record (1000 characters) and keeps every open candidate', () => {
    const text = formatDiagnosis(
      diagnoseAssumeRole(classifyAwsError(ACCESS_DENIED), context({ externalId: 'x1' }), {
        caller: { arn: DEPLOYER_SESSION, account: '123456789012' },
      }),
    );
    expect(text.length).toBeLessThanOrEqual(1000);
    for (const phrase of [/sts:AssumeRole/, /trust policy/, /ExternalId/, /role exists/])
      expect(text).toMatch(phrase);
    expect(text).toMatch(/orchestrator 123456789012/);
    expect(text).toMatch(/target 222222222222/);
  });
});

describe('gatherAssumeRoleEvidence', () => {
  it('runs every probe and keeps what could not be checked', async () => {
    const fault = classifyAwsError(ACCESS_DENIED);
    const evidence = await gatherAssumeRoleEvidence(fault, context(), {
      callerIdentity: async () => ({ arn: DEPLOYER_SESSION, account: '123456789012' }),
      callerRoleArn: async () => DEPLOYER,
      simulate: async (principal) => {
        expect(principal).toBe(DEPLOYER);
        return { 'sts:AssumeRole': 'allowed', 'sts:SetSourceIdentity': 'allowed' };
      },
      roleExists: async () => undefined,
      assumeWithoutSourceIdentity: async () => {
        throw awsError('Throttling', 'Rate exceeded');
      },
    });
    expect(evidence).toMatchObject({
      callerRoleArn: DEPLOYER,
      simulation: { 'sts:AssumeRole': 'allowed' },
      unchecked: [
        'whether the role exists (it is in an account the caller cannot read)',
        'AssumeRole without SourceIdentity: Throttling',
      ],
    });
  });

  it('turns a session ARN into its role ARN', () => {
    expect(roleOfSession(DEPLOYER_SESSION)).toBe('arn:aws:iam::123456789012:role/crossdeploy-deployer');
  });
});

describe("the workflow's Assume Target Role (StsTargetAccess) uses the same diagnosis", () => {
  const sts = mockClient(STSClient);
  const params = { ...context().attempt, durationSeconds: 900 };

  it('records the ranked candidates, naming the orchestrator account it learnt from GetCallerIdentity', async () => {
    sts.reset();
    sts.on(AssumeRoleCommand).rejects(ACCESS_DENIED);
    sts.on(GetCallerIdentityCommand).resolves({ Account: '123456789012', Arn: DEPLOYER_SESSION });
    const error = (await new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) })
      .preflight(params)
      .catch((e: unknown) => e)) as Error & { code: string; details: Record<string, unknown> };
    expect(error).toMatchObject({ name: 'RoleAssumptionError', code: 'ROLE_ASSUMPTION_DENIED' });
    expect(error.message).toBe(
      formatDiagnosis(
        diagnoseAssumeRole(
          classifyAwsError(ACCESS_DENIED),
          { attempt: params, targetAccountId: '222222222222' },
          {
            caller: { arn: DEPLOYER_SESSION, account: '123456789012' },
            unchecked: ["the caller's policy (no iam:SimulatePrincipalPolicy here)"],
          },
        ),
      ),
    );
    expect(error.message).toMatch(/1\. \[possible, orchestrator 123456789012\]/);
    expect(error.details.cause).toBe('caller-policy');
  });

  it('records a region where STS is not activated, with the account to fix', async () => {
    sts.reset();
    sts
      .on(AssumeRoleCommand)
      .rejects(
        awsError(
          'RegionDisabledException',
          'STS is not activated in this region for account:123456789012. Your account administrator can activate STS in this region using the IAM Console.',
        ),
      );
    await expect(
      new StsTargetAccess({ sts: new STSClient({ region: 'eu-west-1' }) }).preflight(params),
    ).rejects.toThrow(/STS is not activated in eu-west-1 for account 123456789012/);
  });
});

describe('trustNamesPrincipal', () => {
  const JOB = 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deploy-job';
  const trust = (statement: Record<string, unknown>) => ({ Version: '2012-10-17', Statement: [statement] });
  const fromAccount = (condition?: Record<string, unknown>) =>
    trust({
      Effect: 'Allow',
      Principal: { AWS: 'arn:aws:iam::123456789012:root' },
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      ...(condition ? { Condition: condition } : {}),
    });

  it('finds the role in an aws:PrincipalArn list, exactly or by ArnLike pattern', () => {
    expect(trustNamesPrincipal(fromAccount({ ArnEquals: { 'aws:PrincipalArn': ['x', JOB] } }), JOB)).toBe(
      true,
    );
    expect(
      trustNamesPrincipal(
        fromAccount({ ArnLike: { 'aws:PrincipalArn': 'arn:aws:iam::123456789012:role/crossdeploy/*' } }),
        JOB,
      ),
    ).toBe(true);
  });

  it('finds the role named as the principal itself, or its account with no principal condition', () => {
    expect(
      trustNamesPrincipal(trust({ Effect: 'Allow', Principal: { AWS: JOB }, Action: 'sts:AssumeRole' }), JOB),
    ).toBe(true);
    expect(trustNamesPrincipal(fromAccount(), JOB)).toBe(true);
  });

  it('does not find it when the condition names other roles, the account is another, or the statement denies', () => {
    const deployer = 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer';
    expect(trustNamesPrincipal(fromAccount({ ArnEquals: { 'aws:PrincipalArn': deployer } }), JOB)).toBe(
      false,
    );
    expect(
      trustNamesPrincipal(
        trust({
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::999999999999:root' },
          Action: 'sts:AssumeRole',
        }),
        JOB,
      ),
    ).toBe(false);
    expect(
      trustNamesPrincipal(trust({ Effect: 'Deny', Principal: { AWS: JOB }, Action: 'sts:AssumeRole' }), JOB),
    ).toBe(false);
    expect(
      trustNamesPrincipal(trust({ Effect: 'Allow', Principal: { AWS: JOB }, Action: 'sts:TagSession' }), JOB),
    ).toBe(false);
  });
});
