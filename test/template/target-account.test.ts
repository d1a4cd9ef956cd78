// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation !Sub placeholders, not JavaScript
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trustPolicyStatement } from '#shared/diagnosis/statements.ts';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { type CfnResource, getAtt, isRecord, loadTemplate, refName } from '../../scripts/cfn-yaml.ts';
import { CfnResolver } from '../support/cfn-resolve.ts';

/** target-account/template.yaml: whom the deploy role trusts, and how far each role reaches. */

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'target-account/template.yaml'));
const orchestrator = loadTemplate(join(root, 'template.yaml'));
const resource = (id: string): CfnResource => {
  const found = template.Resources[id];
  if (!found) throw new Error(`target-account/template.yaml has no resource ${id}`);
  return found;
};
const props = (id: string) => resource(id).Properties ?? {};

type Statement = Record<string, unknown>;
const asList = (value: unknown): unknown[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** Both branches of `Fn::If`, without `AWS::NoValue`. */
const branches = (value: unknown): unknown[] => {
  if (isRecord(value) && Array.isArray(value['Fn::If'])) {
    const [, whenTrue, whenFalse] = value['Fn::If'] as unknown[];
    return [...branches(whenTrue), ...branches(whenFalse)];
  }
  return refName(value) === 'AWS::NoValue' ? [] : [value];
};

const statementsOf = (roleId: string): Statement[] =>
  asList(props(roleId).Policies)
    .filter(isRecord)
    .flatMap((policy) => asList((policy.PolicyDocument as Record<string, unknown>).Statement))
    .flatMap(branches)
    .filter(isRecord);

const trust = () => {
  const [statement] = asList((props('DeployRole').AssumeRolePolicyDocument as Statement).Statement).filter(
    isRecord,
  );
  if (!statement) throw new Error('the deploy role has no trust statement');
  return statement;
};

const actionsOf = (statement: Statement) => branches(statement.Action).flatMap(asList).map(String);
const subOf = (value: unknown) => (isRecord(value) ? String(value['Fn::Sub']) : String(value));

/** IAM's action matching: case-insensitive, `*` for any characters. */
const covers = (pattern: string, action: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(action);
const allowsAction = (statements: Statement[], action: string) =>
  statements.filter((s) => s.Effect === 'Allow' && actionsOf(s).some((pattern) => covers(pattern, action)));
const denied = (statements: Statement[], action: string) =>
  statements.some((s) => s.Effect === 'Deny' && actionsOf(s).some((pattern) => covers(pattern, action)));

/** What a `!Sub` of the template turns into for one prefix in one account and region. */
const substitute = (
  value: unknown,
  at: { partition: string; account: string; region: string; prefix?: string },
) => {
  const text = subOf(value)
    .replaceAll('${AWS::Partition}', at.partition)
    .replaceAll('${AWS::AccountId}', at.account)
    .replaceAll('${AWS::Region}', at.region)
    .replaceAll('${ApplicationPrefix}', at.prefix ?? '${ApplicationPrefix}');
  if (text.includes('${')) throw new Error(`${text} needs more than pseudo parameters`);
  return text;
};

const boundaryStatements = (): Statement[] =>
  asList((props('PermissionsBoundary').PolicyDocument as Statement).Statement).filter(isRecord);

/** The actions by which a role could be created with, or given, more rights than the boundary allows. */
const ROLE_WRITES = [
  'iam:CreateRole',
  'iam:PutRolePolicy',
  'iam:AttachRolePolicy',
  'iam:DetachRolePolicy',
  'iam:DeleteRolePolicy',
  'iam:PutRolePermissionsBoundary',
];

describe('target-account/template.yaml', () => {
  it('passes cfn-lint (when it is installed; CI always has it)', () => {
    const run = spawnSync('cfn-lint', ['target-account/template.yaml'], { cwd: root, encoding: 'utf8' });
    if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return;
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
    expect(run.status).toBe(0);
  });

  describe('the application prefix', () => {
    const pattern = new RegExp(String(template.Parameters?.ApplicationPrefix?.AllowedPattern));

    it('is 2-20 lower-case letters and digits, and never "crossdeploy"', () => {
      for (const ok of ['hello', 'billing2', 'ab', 'a'.repeat(20), 'crossdeploy2'])
        expect(pattern.test(ok), ok).toBe(true);
      for (const bad of ['crossdeploy', 'hello-world', 'hello-', 'Hello', 'a', 'a'.repeat(21), '2fa', '']) {
        expect(pattern.test(bad), bad).toBe(false);
      }
    });

    it("has no hyphen, so one prefix's `<prefix>-` names never start with another's", () => {
      const prefixes = ['team', 'teama', 'team2', 'hello', 'hellow', 'h3'];
      for (const a of prefixes) {
        for (const b of prefixes) {
          if (a === b) continue;
          expect(`${b}-anything`.startsWith(`${a}-`), `${a} vs ${b}`).toBe(false);
        }
      }
      expect(pattern.test('team-a')).toBe(false);
    });

    it('leaves every name within its limit for the longest prefix and region', () => {
      const at = {
        partition: 'aws',
        account: '222222222222',
        region: 'ap-southeast-4',
        prefix: 'p'.repeat(20),
      };
      for (const id of ['DeployRole', 'ExecutionRole']) {
        expect(substitute(props(id).RoleName, at).length, id).toBeLessThanOrEqual(64);
      }
      expect(substitute(props('PermissionsBoundary').ManagedPolicyName, at).length).toBeLessThanOrEqual(128);
      expect(substitute(props('ArtifactsBucket').BucketName, at).length).toBeLessThanOrEqual(63);
    });
  });

  it("fits IAM's policy size limits with every option on, for the longest prefix and region", () => {
    const at = new CfnResolver(template, {
      partition: 'aws-us-gov',
      account: '222222222222',
      region: 'ap-southeast-4',
      stackName: 'crossdeploy-target-pppppppppppppppppppp',
      parameters: {
        OrchestratorAccountId: '123456789012',
        DeployerRoleArn: `arn:aws:iam::123456789012:role/crossdeploy/${'a'.repeat(40)}-deployer`,
        DeployJobRoleArn: `arn:aws:iam::123456789012:role/crossdeploy/${'a'.repeat(40)}-deploy-job`,
        ApplicationPrefix: 'p'.repeat(20),
        ArtifactsKmsKeyArn:
          'arn:aws:kms:ap-southeast-4:222222222222:key/11111111-2222-3333-4444-555555555555',
        EnableDriftDetection: 'true',
        AllowSessionTags: 'true',
        ExternalId: 'x'.repeat(100),
      },
    });
    // IAM counts characters without whitespace.
    const size = (document: unknown) => JSON.stringify(document).replace(/\s/g, '').length;
    expect(size(at.resolve(props('PermissionsBoundary').PolicyDocument))).toBeLessThanOrEqual(6144);
    for (const role of ['DeployRole', 'ExecutionRole']) {
      const inline = asList(at.resolve(props(role).Policies)).filter(isRecord);
      const total = inline.reduce((sum, policy) => sum + size(policy.PolicyDocument), 0);
      expect(total, role).toBeLessThanOrEqual(10240);
      expect(size(at.resolve(props(role).AssumeRolePolicyDocument)), role).toBeLessThanOrEqual(2048);
    }
  });

  describe('the deploy role', () => {
    it('has a fixed name and path, so the registry ARN survives updates (prefix and region in it: IAM is global)', () => {
      expect(props('DeployRole').RoleName).toEqual({
        'Fn::Sub': 'crossdeploy-${ApplicationPrefix}-deploy-${AWS::Region}',
      });
      expect(props('DeployRole').Path).toBe('/crossdeploy/');
      expect(props('DeployRole').MaxSessionDuration).toBe(3600);
    });

    it('trusts the orchestrator account, narrowed to exactly the deploy job and deployer roles with aws:PrincipalArn', () => {
      const statement = trust();
      expect(statement.Effect).toBe('Allow');
      expect(statement.Principal).toEqual({
        AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${OrchestratorAccountId}:root' },
      });
      for (const condition of branches(statement.Condition).filter(isRecord)) {
        expect(condition.ArnEquals).toEqual({
          'aws:PrincipalArn': [{ Ref: 'DeployJobRoleArn' }, { Ref: 'DeployerRoleArn' }],
        });
      }
    });

    it('allows sts:AssumeRole and sts:SetSourceIdentity, and sts:TagSession only when asked for', () => {
      const [withTags, withoutTags] = branches(trust().Action) as string[][];
      expect(withoutTags).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity']);
      expect(withTags).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession']);
      expect((trust().Action as Record<string, unknown[]>)['Fn::If']?.[0]).toBe('TagSessions');
    });

    it('requires the ExternalId exactly when one is given', () => {
      const condition = trust().Condition as Record<string, unknown[]>;
      expect(condition['Fn::If']?.[0]).toBe('HasExternalId');
      const [withId, withoutId] = branches(condition).filter(isRecord);
      expect(withId?.StringEquals).toEqual({ 'sts:ExternalId': { Ref: 'ExternalId' } });
      expect(withoutId).not.toHaveProperty('StringEquals');
      expect(template.Conditions?.HasExternalId).toEqual({
        'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'ExternalId' }, ''] }],
      });
    });

    it('is the trust statement the doctor prints as the fix (same actions, condition keys and principals)', () => {
      const deployJob = 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deploy-job';
      const deployer = 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer';
      const printed = trustPolicyStatement({
        deployRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-deploy-eu-west-1',
        callerRoleArn: deployer,
        deployJobRoleArn: deployJob,
        externalId: true,
      }).statement;
      const [, withoutTags] = branches(trust().Action) as string[][];
      expect(printed.Action).toEqual(withoutTags);
      const [withId] = branches(trust().Condition).filter(isRecord);
      expect(Object.keys(printed.Condition as object).sort()).toEqual(Object.keys(withId ?? {}).sort());
      // Same order as the template's [DeployJobRoleArn, DeployerRoleArn].
      expect(
        (printed.Condition as Record<string, Record<string, unknown>>).ArnEquals?.['aws:PrincipalArn'],
      ).toEqual([deployJob, deployer]);
    });

    it("accepts the orchestrator's DeployJobRoleArn output and nothing shaped differently", () => {
      const job = orchestrator.Resources.DeployJobRole?.Properties ?? {};
      expect(job.Path).toBe('/crossdeploy/');
      const pattern = new RegExp(String(template.Parameters?.DeployJobRoleArn?.AllowedPattern));
      expect(pattern.test('arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deploy-job')).toBe(true);
      expect(pattern.test('arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer')).toBe(false);
      expect(pattern.test('arn:aws:iam::123456789012:role/ci-deploy-job')).toBe(false);
    });

    it("accepts the orchestrator's DeployerRoleArn output and nothing shaped differently", () => {
      const deployer = orchestrator.Resources.DeployerRole?.Properties ?? {};
      expect(deployer.Path).toBe('/crossdeploy/');
      const pattern = new RegExp(String(template.Parameters?.DeployerRoleArn?.AllowedPattern));
      expect(pattern.test('arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer')).toBe(true);
      expect(pattern.test('arn:aws:iam::123456789012:role/ec2-dev-role')).toBe(false);
    });

    it('changes only stacks with the allowed prefix, plus change sets on the SAM transform', () => {
      const cfn = statementsOf('DeployRole').filter((s) =>
        actionsOf(s).some((a) => a.startsWith('cloudformation:')),
      );
      const resources = cfn.flatMap((s) => asList(s.Resource).map(subOf));
      expect(new Set(resources)).toEqual(
        new Set([
          'arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${ApplicationPrefix}-*/*',
          'arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:transform/Serverless-2016-10-31',
          // drift detection status has no resource-level permission
          '*',
        ]),
      );
      const wide = cfn.filter((s) => asList(s.Resource).includes('*'));
      expect(wide.flatMap(actionsOf)).toEqual(['cloudformation:DescribeStackDriftDetectionStatus']);
      const transform = cfn.find((s) => subOf(s.Resource).includes('transform/'));
      expect(actionsOf(transform ?? {})).toEqual(['cloudformation:CreateChangeSet']);
    });

    it("may read a change set's and the stack's template (the review's IAM inventory) exactly where it may describe the change set", () => {
      const granting = (action: string) =>
        allowsAction(statementsOf('DeployRole'), action).flatMap((s) => asList(s.Resource).map(subOf));
      expect(granting('cloudformation:GetTemplate')).toEqual(granting('cloudformation:DescribeChangeSet'));
      expect(granting('cloudformation:GetTemplate')).toEqual([
        'arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${ApplicationPrefix}-*/*',
      ]);
    });

    it('may pass only the execution role, and only to CloudFormation', () => {
      const passes = statementsOf('DeployRole').filter((s) => actionsOf(s).includes('iam:PassRole'));
      expect(passes).toHaveLength(1);
      expect(getAtt(passes[0]?.Resource)).toEqual(['ExecutionRole', 'Arn']);
      expect(passes[0]?.Condition).toEqual({
        StringEquals: { 'iam:PassedToService': 'cloudformation.amazonaws.com' },
      });
    });

    it('reaches the artifacts bucket only under the stack prefix', () => {
      const objects = statementsOf('DeployRole').filter((s) => actionsOf(s).includes('s3:PutObject'));
      expect(objects.map((s) => subOf(s.Resource))).toEqual([
        '${ArtifactsBucket.Arn}/${ApplicationPrefix}-*',
      ]);
    });

    it('has the read-only calls the doctor needs, on the execution role and itself only', () => {
      const doctor = statementsOf('DeployRole').find((s) => s.Sid === 'DoctorReadOnly');
      expect(actionsOf(doctor ?? {})).toEqual(['iam:GetRole', 'iam:SimulatePrincipalPolicy']);
      const resources = asList(doctor?.Resource);
      expect(getAtt(resources[0])).toEqual(['ExecutionRole', 'Arn']);
      expect(subOf(resources[1])).toBe(
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/crossdeploy/crossdeploy-${ApplicationPrefix}-deploy-${AWS::Region}',
      );
    });
  });

  describe('the execution role', () => {
    it('is assumed by CloudFormation only', () => {
      const document = props('ExecutionRole').AssumeRolePolicyDocument as Statement;
      expect(asList(document.Statement)).toEqual([
        { Effect: 'Allow', Principal: { Service: 'cloudformation.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
    });

    it('never allows "*" or "<service>:*" on Resource "*" by default', () => {
      for (const statement of statementsOf('ExecutionRole')) {
        // A denial on "*" narrows; only what is allowed must be scoped.
        if (statement.Effect !== 'Allow' || !asList(statement.Resource).includes('*')) continue;
        expect(
          actionsOf(statement).filter((a) => a === '*' || /:\*$/.test(a)),
          String(statement.Sid),
        ).toEqual([]);
        // The one wide statement is conditioned on the prefixed functions.
        expect(statement.Condition, String(statement.Sid)).toBeDefined();
      }
      expect(props('ExecutionRole').ManagedPolicyArns).toEqual({
        'Fn::If': ['HasExtraPolicies', { Ref: 'ExecutionRoleExtraPolicyArns' }, { Ref: 'AWS::NoValue' }],
      });
    });

    it('scopes service-wide actions to resources named after the prefixed stacks', () => {
      for (const statement of statementsOf('ExecutionRole')) {
        if (statement.Effect !== 'Allow' || !actionsOf(statement).some((a) => /:\*$/.test(a))) continue;
        for (const target of asList(statement.Resource).map(subOf)) {
          expect(target, String(statement.Sid)).toMatch(/\$\{ApplicationPrefix\}-\*/);
        }
      }
    });

    it('can read the artifacts (Lambda fetches code with its rights)', () => {
      const read = statementsOf('ExecutionRole').find((s) => s.Sid === 'ReadArtifacts');
      expect(actionsOf(read ?? {})).toContain('s3:GetObject');
    });
  });

  describe('the permissions boundary', () => {
    it('is required on every role the execution role creates or changes (by default)', () => {
      expect(template.Parameters?.RequirePermissionsBoundary?.Default).toBe('true');
      expect(template.Conditions?.BoundaryRequired).toEqual({
        'Fn::Equals': [{ Ref: 'RequirePermissionsBoundary' }, 'true'],
      });
      for (const action of ROLE_WRITES) {
        const grants = allowsAction(statementsOf('ExecutionRole'), action);
        expect(
          grants.map((s) => s.Sid),
          action,
        ).toEqual(['FunctionRolesWithTheBoundary']);
        expect(grants[0]?.Condition, action).toEqual({
          'Fn::If': [
            'BoundaryRequired',
            { StringEquals: { 'iam:PermissionsBoundary': { Ref: 'PermissionsBoundary' } } },
            { Ref: 'AWS::NoValue' },
          ],
        });
      }
    });

    it('can never be taken off a role, and the execution role writes IAM only inside the prefix', () => {
      const statements = statementsOf('ExecutionRole');
      expect(denied(statements, 'iam:DeleteRolePermissionsBoundary')).toBe(true);
      expect(allowsAction(statements, 'iam:DeleteRolePermissionsBoundary')).toEqual([]);
      const outside = statements.find((s) => s.Sid === 'NoIamWritesOutsideThePrefix');
      expect(outside?.Effect).toBe('Deny');
      // crossdeploy's own roles and policies (`role/crossdeploy/...`) are not in this list: no prefix reaches them.
      expect(asList(outside?.NotResource).map(subOf)).toEqual([
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ApplicationPrefix}-*',
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${ApplicationPrefix}-*',
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:instance-profile/${ApplicationPrefix}-*',
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*',
      ]);
      for (const action of [
        ...ROLE_WRITES,
        'iam:UpdateAssumeRolePolicy',
        'iam:CreatePolicyVersion',
        'iam:PassRole',
      ]) {
        expect(
          actionsOf(outside ?? {}).some((pattern) => covers(pattern, action)),
          action,
        ).toBe(true);
      }
    });

    it('denies the roles under it every IAM write and iam:PassRole: no way to raise their own rights', () => {
      const statements = boundaryStatements();
      for (const action of [
        ...ROLE_WRITES,
        'iam:CreateUser',
        'iam:CreateAccessKey',
        'iam:CreateLoginProfile',
        'iam:UpdateLoginProfile',
        'iam:CreatePolicyVersion',
        'iam:SetDefaultPolicyVersion',
        'iam:UpdateAssumeRolePolicy',
        'iam:AddUserToGroup',
        'iam:DeleteRolePermissionsBoundary',
        'iam:PassRole',
      ]) {
        expect(denied(statements, action), action).toBe(true);
      }
      const assume = statements.find((s) => s.Sid === 'NoRolesOutsideThePrefix');
      expect(assume).toMatchObject({ Effect: 'Deny' });
      expect(subOf(assume?.NotResource)).toBe(
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ApplicationPrefix}-*',
      );
      const artifacts = statements.find((s) => s.Sid === 'NoCrossdeployBuckets');
      expect(actionsOf(artifacts ?? {})).toEqual(['s3:*']);
      expect(getAtt(asList(artifacts?.Resource)[0])).toEqual(['ArtifactsBucket', 'Arn']);
    });

    it('has a fixed name per prefix, which the sample application names in its Globals, and is an output', () => {
      expect(props('PermissionsBoundary').ManagedPolicyName).toEqual({
        'Fn::Sub': 'crossdeploy-${ApplicationPrefix}-boundary-${AWS::Region}',
      });
      expect(props('PermissionsBoundary').Path).toBe('/crossdeploy/');
      const app = loadTemplate(join(root, 'examples/hello-world/template.yaml'));
      const at = { partition: 'aws', account: '222222222222', region: 'eu-west-1', prefix: 'hello' };
      expect(substitute(app.Globals?.Function?.PermissionsBoundary, at)).toBe(
        `arn:aws:iam::222222222222:policy/crossdeploy/${substitute(props('PermissionsBoundary').ManagedPolicyName, at)}`,
      );
      expect(template.Outputs?.PermissionsBoundaryArn?.Value).toEqual({ Ref: 'PermissionsBoundary' });
    });
  });

  describe('the shipped registries', () => {
    const PARTITION = (region: string) =>
      region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
    /** The ARN CloudFormation gives a role of this template in one account and region. */
    const roleArn = (
      id: string,
      at: { partition: string; account: string; region: string; prefix: string },
    ) =>
      `arn:${at.partition}:iam::${at.account}:role${String(props(id).Path)}${substitute(props(id).RoleName, at)}`;

    it.each(['registry/targets.yaml', 'registry/sample.yaml'])(
      "%s names the roles and bucket this template creates for the stack name's prefix in each environment's account and region",
      (file) => {
        const registry = loadRegistryFile(join(root, file));
        const environments = Object.values(registry.applications).flatMap((app) =>
          Object.values(app.environments),
        );
        expect(environments.length).toBeGreaterThan(0);
        for (const env of environments) {
          // The bootstrap of the prefix the stack name starts with: `<prefix>-...`, the prefix has no hyphen.
          const prefix = env.stackName.split('-')[0] ?? '';
          const at = { partition: PARTITION(env.region), account: env.accountId, region: env.region, prefix };
          expect(env.deployRoleArn).toBe(roleArn('DeployRole', at));
          expect(env.executionRoleArn).toBe(roleArn('ExecutionRole', at));
          expect(env.artifactsBucket).toBe(substitute(props('ArtifactsBucket').BucketName, at));
        }
      },
    );
  });

  describe('the artifacts bucket', () => {
    it('is versioned, encrypted, private, owner-enforced and kept', () => {
      const bucket = props('ArtifactsBucket');
      expect(resource('ArtifactsBucket').DeletionPolicy).toBe('Retain');
      expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(bucket.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      const rules =
        (bucket.BucketEncryption as Record<string, unknown[]>).ServerSideEncryptionConfiguration ?? [];
      const algorithms = rules
        .flatMap(branches)
        .filter(isRecord)
        .map((r) => (r.ServerSideEncryptionByDefault as Record<string, unknown>).SSEAlgorithm);
      expect(algorithms).toEqual(['aws:kms', 'AES256']);
      expect(bucket.BucketName).toEqual({
        'Fn::Sub': 'crossdeploy-${AWS::AccountId}-${AWS::Region}-${ApplicationPrefix}',
      });
    });

    it('refuses plain-HTTP requests', () => {
      const [statement] = asList(
        (props('ArtifactsBucketPolicy').PolicyDocument as Statement).Statement,
      ).filter(isRecord);
      expect(statement).toMatchObject({
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      });
    });
  });

  it('outputs what the registry needs', () => {
    expect(Object.keys(template.Outputs ?? {}).sort()).toEqual(
      [
        'AccountId',
        'ArtifactsBucketName',
        'DeployRoleArn',
        'ExecutionRoleArn',
        'PermissionsBoundaryArn',
        'Region',
      ].sort(),
    );
  });
});
