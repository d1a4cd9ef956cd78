// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation !Sub placeholders, not JavaScript
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envShapes } from '#shared/config.ts';
import { evaluate } from '#test/support/iam-evaluate.ts';
import { createSandbox, removeSandboxes, runBuildspec } from '#test/support/run-buildspec.ts';
import { type CfnResource, getAtt, isRecord, loadTemplate, refName } from '../../scripts/cfn-yaml.ts';

/**
 * How the buildspecs reach CodeBuild. The deploy buildspec carries the template policy check (a bundle of
 * ~120 kB), far over the 25,600 characters CodeBuild is reported to accept inline (in a project's BuildSpec
 * and in StartBuild's buildspecOverride). So the stack publishes both buildspecs to a bucket of its own at
 * deploy time (the JobSpecs custom resource) and StartBuild names them by S3 ARN; the projects carry only a
 * short buildspec that refuses to run, for a build started by hand.
 */

const INLINE_LIMIT = 25_600;
const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const resource = (id: string): CfnResource => {
  const found = template.Resources[id];
  if (!found) throw new Error(`template.yaml has no resource ${id}`);
  return found;
};
const props = (id: string): Record<string, unknown> => resource(id).Properties ?? {};
const sha256 = (file: string) =>
  createHash('sha256')
    .update(readFileSync(join(root, file)))
    .digest('hex');

afterAll(removeSandboxes);

describe('what CodeBuild receives inline', () => {
  it.each(['BuildProject', 'DeployProject'])('%s carries a buildspec under the inline limit', (id) => {
    const source = props(id).Source as Record<string, unknown>;
    expect(typeof source.BuildSpec).toBe('string');
    expect((source.BuildSpec as string).length).toBeLessThanOrEqual(INLINE_LIMIT);
  });

  it.each(['BuildProject', 'DeployProject'])(
    '%s, started by hand without the orchestrator, runs nothing and fails',
    async (id) => {
      const sandbox = createSandbox();
      const result = await runBuildspec(sandbox, (props(id).Source as { BuildSpec: string }).BuildSpec, {});
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('crossdeploy');
      expect(result.calls).toEqual([]);
    },
  );
});

describe('the published buildspecs (JobSpecs)', () => {
  it('publishes only after the bucket policy exists, and gives up on a lost answer in 5 minutes', () => {
    expect(resource('JobSpecs').DependsOn).toBe('JobSpecsBucketPolicy');
    expect(props('JobSpecs').ServiceTimeout).toBe(300);
  });

  it('is a custom resource of the stack’s own publisher function', () => {
    expect(resource('JobSpecs').Type).toBe('Custom::JobSpecs');
    expect(getAtt(props('JobSpecs').ServiceToken)).toEqual(['PublishJobSpecsFunction', 'Arn']);
    expect(refName(props('JobSpecs').Bucket)).toBe('JobSpecsBucket');
  });

  it('names the SHA-256 of buildspecs/*.yml, so a changed buildspec is published again (npm run registry:derive)', () => {
    expect(props('JobSpecs').BuildSpecSha256).toBe(sha256('buildspecs/build.yml'));
    expect(props('JobSpecs').DeploySpecSha256).toBe(sha256('buildspecs/deploy.yml'));
  });

  it('hands StartJob (and only StartJob) the published locations and their bucket, which config.ts requires', () => {
    const env = (props('StartJobFunction').Environment as { Variables: Record<string, unknown> }).Variables;
    expect(refName(env.JOB_SPECS_BUCKET)).toBe('JobSpecsBucket');
    expect(getAtt(env.BUILD_BUILDSPEC_LOCATION)).toEqual(['JobSpecs', 'BuildSpecArn']);
    expect(getAtt(env.DEPLOY_BUILDSPEC_LOCATION)).toEqual(['JobSpecs', 'DeploySpecArn']);
    expect(Object.keys(envShapes.jobSpecs)).toEqual([
      'JOB_SPECS_BUCKET',
      'BUILD_BUILDSPEC_LOCATION',
      'DEPLOY_BUILDSPEC_LOCATION',
    ]);
  });

  it('lives in a versioned, private bucket the stack keeps', () => {
    const bucket = resource('JobSpecsBucket');
    expect(bucket.Type).toBe('AWS::S3::Bucket');
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(props('JobSpecsBucket')).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
  });
});

// The identities a buildspec could be replaced by: the build job runs repository code; the deploy job reads
// attacker-influenced build output; an account administrator is named as a stand-in for "anyone else".
describe('who may change a published buildspec', () => {
  const ACCOUNT = '123456789012';
  const BUCKET = 'crossdeploy-jobspecsbucket-abc123';
  const STACK = 'crossdeploy';
  const roleArn = (logicalId: string) => {
    const properties = props(logicalId);
    const name =
      typeof properties.RoleName === 'string'
        ? properties.RoleName
        : isRecord(properties.RoleName)
          ? String(properties.RoleName['Fn::Sub']).replace('${AWS::StackName}', STACK)
          : `${STACK}-${logicalId}-GENERATED`;
    return `arn:aws:iam::${ACCOUNT}:role${String(properties.Path ?? '/')}${name}`;
  };
  const publisherRole = `arn:aws:iam::${ACCOUNT}:role/${STACK}-PublishJobSpecsFunctionRole-GENERATED`;
  /** The bucket policy with the stack's values in place of its intrinsics. */
  const bucketPolicy = () => {
    const text = JSON.stringify(props('JobSpecsBucketPolicy').PolicyDocument)
      .replaceAll('{"Fn::GetAtt":["JobSpecsBucket","Arn"]}', JSON.stringify(`arn:aws:s3:::${BUCKET}`))
      .replaceAll('{"Fn::Sub":"${JobSpecsBucket.Arn}/*"}', JSON.stringify(`arn:aws:s3:::${BUCKET}/*`))
      .replaceAll('{"Fn::GetAtt":["PublishJobSpecsFunctionRole","Arn"]}', JSON.stringify(publisherRole));
    expect(text).not.toContain('Fn::');
    return JSON.parse(text);
  };
  const allowAll = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };
  const object = `arn:aws:s3:::${BUCKET}/job-specs/deploy-${'0'.repeat(64)}.yml`;

  it.each([
    ['the build job', 'BuildRole'],
    ['the deploy job', 'DeployJobRole'],
    ['the deployer', 'DeployerRole'],
  ])('%s cannot overwrite or delete one, even were it granted s3:* on *', async (_, logicalId) => {
    for (const action of [
      's3:PutObject',
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:PutObjectTagging',
      's3:ReplicateObject',
      's3:ReplicateDelete',
    ]) {
      const decision = await evaluate({
        principal: roleArn(logicalId),
        action,
        resource: object,
        context: { 'aws:SecureTransport': 'true' },
        identity: [allowAll],
        resourcePolicy: bucketPolicy(),
      });
      expect(decision, `${logicalId} ${action}`).toBe('ExplicitlyDenied');
    }
  });

  it('the publisher can write one', async () => {
    const publisher = (props('PublishJobSpecsFunction').Policies as unknown[]).filter(isRecord);
    const statements = publisher.flatMap((p) => (Array.isArray(p.Statement) ? p.Statement : []));
    expect(statements).toEqual([
      {
        Sid: 'PublishJobSpecs',
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: { 'Fn::Sub': '${JobSpecsBucket.Arn}/job-specs/*' },
      },
      {
        Sid: 'FindPublishedJobSpecs',
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: { 'Fn::Sub': '${JobSpecsBucket.Arn}/job-specs/*' },
      },
    ]);
    const identity = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::${BUCKET}/job-specs/*` },
      ],
    };
    const decision = await evaluate({
      principal: publisherRole,
      action: 's3:PutObject',
      resource: object,
      context: { 'aws:SecureTransport': 'true' },
      identity: [identity],
      resourcePolicy: bucketPolicy(),
    });
    expect(decision).toBe('Allowed');
  });

  it.each(['BuildRole', 'DeployJobRole'])(
    '%s may read the published buildspecs (CodeBuild fetches them as the project’s role)',
    (logicalId) => {
      const statements = (
        props(logicalId).Policies as { PolicyDocument: { Statement: Record<string, unknown>[] } }[]
      )
        .flatMap((p) => p.PolicyDocument.Statement)
        .filter((s) => s.Sid === 'ReadJobSpecs');
      expect(statements).toEqual([
        {
          Sid: 'ReadJobSpecs',
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource: { 'Fn::Sub': '${JobSpecsBucket.Arn}/job-specs/*' },
        },
      ]);
    },
  );
});
