// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation !Sub placeholders, not JavaScript
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trustPolicyStatement } from '#shared/diagnose-statements.ts';
import { type CfnResource, getAtt, isRecord, loadTemplate, refName } from '../../scripts/cfn-yaml.ts';

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

describe('target-account/template.yaml', () => {
  it('passes cfn-lint (when it is installed; CI always has it)', () => {
    const run = spawnSync('cfn-lint', ['target-account/template.yaml'], { cwd: root, encoding: 'utf8' });
    if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return;
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
    expect(run.status).toBe(0);
  });

  describe('the deploy role', () => {
    it('has a fixed name and path, so the registry ARN survives updates (region in it: IAM is global)', () => {
      expect(props('DeployRole').RoleName).toEqual({ 'Fn::Sub': 'crossdeploy-deploy-${AWS::Region}' });
      expect(props('DeployRole').Path).toBe('/crossdeploy/');
      expect(props('DeployRole').MaxSessionDuration).toBe(3600);
    });

    it('trusts the orchestrator account, narrowed to exactly the deployer role with aws:PrincipalArn', () => {
      const statement = trust();
      expect(statement.Effect).toBe('Allow');
      expect(statement.Principal).toEqual({
        AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${OrchestratorAccountId}:root' },
      });
      for (const condition of branches(statement.Condition).filter(isRecord)) {
        expect(condition.ArnEquals).toEqual({ 'aws:PrincipalArn': { Ref: 'DeployerRoleArn' } });
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

    it('is the trust statement the doctor prints as the fix (same actions and condition keys)', () => {
      const printed = trustPolicyStatement({
        deployRoleArn: 'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy-eu-west-1',
        callerRoleArn: 'arn:aws:iam::123456789012:role/crossdeploy/crossdeploy-deployer',
        externalId: true,
      }).statement;
      const [, withoutTags] = branches(trust().Action) as string[][];
      expect(printed.Action).toEqual(withoutTags);
      const [withId] = branches(trust().Condition).filter(isRecord);
      expect(Object.keys(printed.Condition as object).sort()).toEqual(Object.keys(withId ?? {}).sort());
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
          'arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${StackNamePrefix}*/*',
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
      expect(objects.map((s) => subOf(s.Resource))).toEqual(['${ArtifactsBucket.Arn}/${StackNamePrefix}*']);
    });

    it('has the read-only calls the doctor needs, on the execution role and itself only', () => {
      const doctor = statementsOf('DeployRole').find((s) => s.Sid === 'DoctorReadOnly');
      expect(actionsOf(doctor ?? {})).toEqual(['iam:GetRole', 'iam:SimulatePrincipalPolicy']);
      const resources = asList(doctor?.Resource);
      expect(getAtt(resources[0])).toEqual(['ExecutionRole', 'Arn']);
      expect(subOf(resources[1])).toBe(
        'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/crossdeploy/crossdeploy-deploy-${AWS::Region}',
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
        if (!asList(statement.Resource).includes('*')) continue;
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
        if (!actionsOf(statement).some((a) => /:\*$/.test(a))) continue;
        for (const target of asList(statement.Resource).map(subOf)) {
          expect(target, String(statement.Sid)).toMatch(/\$\{StackNamePrefix\}/);
        }
      }
    });

    it('can read the artifacts (Lambda fetches code with its rights)', () => {
      const read = statementsOf('ExecutionRole').find((s) => s.Sid === 'ReadArtifacts');
      expect(actionsOf(read ?? {})).toContain('s3:GetObject');
    });
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
        'Fn::Sub': 'crossdeploy-artifacts-${AWS::AccountId}-${AWS::Region}',
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
      ['AccountId', 'ArtifactsBucketName', 'DeployRoleArn', 'ExecutionRoleArn', 'Region'].sort(),
    );
  });
});
