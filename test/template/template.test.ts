import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TABLE_DEFINITION } from '#shared/aws/store.ts';
import { envShapes } from '#shared/config.ts';
import {
  type CfnResource,
  getAtt,
  isRecord,
  loadTemplate,
  refName,
  resourcesOfType,
} from '../../scripts/cfn-yaml.ts';

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const resource = (id: string): CfnResource => {
  const found = template.Resources[id];
  if (!found) throw new Error(`template.yaml has no resource ${id}`);
  return found;
};
const props = (id: string): Record<string, unknown> => resource(id).Properties ?? {};

/** The functions table of docs/design.md: the contract for logical ids, entry points and roles. */
function designedFunctions(): { logicalId: string; entry: string; deployer: boolean }[] {
  const design = readFileSync(join(root, 'docs/design.md'), 'utf8');
  const rows = [...design.matchAll(/^\| (\w+Function) \| (functions\/[\w-]+\/handler\.ts) \|(.*)\|$/gm)];
  return rows.map(([, logicalId = '', entry = '', notes = '']) => ({
    logicalId,
    entry,
    deployer: notes.includes('role: deployer'),
  }));
}

const functions = designedFunctions();
const globals = template.Globals?.Function ?? {};
const globalEnv = isRecord(globals.Environment)
  ? (globals.Environment.Variables as Record<string, unknown>)
  : {};

describe('samconfig.toml', () => {
  it('never builds from cache: a function folder holds only its handler, so its hash misses #shared changes', () => {
    // `sam build --cached` reuses a function's bundle while the hash of its CodeUri folder is unchanged; the
    // shared code it bundles lives outside that folder, so a cached build could deploy a stale bundle.
    const config = readFileSync(join(root, 'samconfig.toml'), 'utf8');
    expect(config).not.toMatch(/^\s*cached\s*=\s*true/m);
    expect(config).toMatch(/^\s*cached\s*=\s*false/m);
  });
});

describe('functions', () => {
  it('declares every function of docs/design.md, and no other', () => {
    expect(functions.length).toBeGreaterThanOrEqual(9);
    const declared = resourcesOfType(template, 'AWS::Serverless::Function').map(([id]) => id);
    expect(declared.sort()).toEqual(functions.map((f) => f.logicalId).sort());
  });

  it('shares runtime, architecture, tracing and JSON logs through Globals', () => {
    expect(globals).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Tracing: 'Active',
      LoggingConfig: { LogFormat: 'JSON' },
    });
    expect(typeof globals.Timeout).toBe('number');
    expect(globalEnv).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'crossdeploy',
      POWERTOOLS_LOG_LEVEL: { Ref: 'LogLevel' },
      TABLE_NAME: { Ref: 'DeploymentsTable' },
      NODE_OPTIONS: '--enable-source-maps',
    });
  });

  it('sets every environment variable functions/shared/config.ts reads', () => {
    // The published buildspec locations are StartJob's alone (they come from the JobSpecs custom resource,
    // which the other functions must not wait for): test/template/job-specs.test.ts.
    const { jobSpecs, ...shared } = envShapes;
    const read = Object.values(shared).flatMap((shape) => Object.keys(shape));
    expect(read.filter((name) => !Object.hasOwn(globalEnv, name))).toEqual([]);
    expect(Object.keys(jobSpecs).filter((name) => Object.hasOwn(globalEnv, name))).toEqual([]);
  });

  describe.each(functions)('$logicalId', ({ logicalId, entry, deployer }) => {
    const fn = resource(logicalId);
    const buildProperties = (fn.Metadata?.BuildProperties ?? {}) as Record<string, unknown>;

    it('is bundled by esbuild as CommonJS .cjs (from ESM sources) for node24 from its design.md entry point', () => {
      expect(fn.Metadata?.BuildMethod).toBe('esbuild');
      expect(buildProperties).toMatchObject({
        Format: 'cjs',
        OutExtension: ['.js=.cjs'],
        Target: 'node24',
        MainFields: 'module,main',
      });
      expect(existsSync(join(root, entry)), `${entry} exists`).toBe(true);
      expect(buildProperties.EntryPoints).toHaveLength(1);
    });

    it("packs only its own folder: CodeUri is the entry's folder, with no package.json in it", () => {
      // Without a package.json in CodeUri, aws-lambda-builders' esbuild workflow bundles in place: no copy
      // of the folder, no `npm install` (the repository's own `npm ci` provides node_modules and #shared/*).
      // At the repository root it would copy the whole repository and install every dev dependency.
      expect(fn.Properties?.CodeUri).toBe(`${dirname(entry)}/`);
      expect(existsSync(join(root, dirname(entry), 'package.json'))).toBe(false);
      expect(buildProperties.EntryPoints).toEqual([basename(entry)]);
      expect(fn.Properties?.Handler).toBe(basename(entry).replace(/\.ts$/, '.handler'));
    });

    it('logs to its own log group with the retention parameter', () => {
      const logGroupId = refName(
        (fn.Properties?.LoggingConfig as Record<string, unknown> | undefined)?.LogGroup,
      );
      expect(logGroupId).toBe(`${logicalId}LogGroup`);
      const logGroup = resource(logGroupId ?? '');
      expect(logGroup.Type).toBe('AWS::Logs::LogGroup');
      expect(logGroup.Properties?.RetentionInDays).toEqual({ Ref: 'LogRetentionDays' });
    });

    it(deployer ? 'runs as the deployer role' : 'has its own role, not the deployer', () => {
      const role = getAtt(fn.Properties?.Role);
      if (deployer) expect(role).toEqual(['DeployerRole', 'Arn']);
      else expect(fn.Properties?.Role).toBeUndefined();
    });
  });
});

describe('log groups', () => {
  it('every log group has the retention parameter', () => {
    const groups = resourcesOfType(template, 'AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(functions.length + 4);
    for (const [id, group] of groups) {
      expect(group.Properties?.RetentionInDays, id).toEqual({ Ref: 'LogRetentionDays' });
    }
  });
});

describe('deployments table', () => {
  const table = resource('DeploymentsTable');
  const tableProps = props('DeploymentsTable');

  it('is kept on delete and replacement, with deletion protection and point-in-time recovery', () => {
    expect(table.Type).toBe('AWS::DynamoDB::Table');
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
    expect(tableProps.DeletionProtectionEnabled).toBe(true);
    expect(tableProps.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
  });

  it('has the single-table keys and the two GSIs of docs/design.md, on demand', () => {
    expect(tableProps.BillingMode).toBe('PAY_PER_REQUEST');
    expect(tableProps.KeySchema).toEqual([
      { AttributeName: 'PK', KeyType: 'HASH' },
      { AttributeName: 'SK', KeyType: 'RANGE' },
    ]);
    expect(tableProps.GlobalSecondaryIndexes).toEqual(
      (
        [
          ['GSI1', 'ALL'],
          ['GSI2', 'KEYS_ONLY'],
        ] as const
      ).map(([name, projection]) => ({
        IndexName: name,
        KeySchema: [
          { AttributeName: `${name}PK`, KeyType: 'HASH' },
          { AttributeName: `${name}SK`, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: projection },
      })),
    );
    // The table the tests, local mode and the bench create is the one the template declares.
    expect(tableProps.GlobalSecondaryIndexes).toEqual(TABLE_DEFINITION.GlobalSecondaryIndexes);
    expect(tableProps.AttributeDefinitions).toEqual(TABLE_DEFINITION.AttributeDefinitions);
    expect(tableProps).not.toHaveProperty('TimeToLiveSpecification');
  });

  it('states its encryption: an AWS owned key unless a KMS key ARN is given', () => {
    expect(tableProps.SSESpecification).toEqual({
      'Fn::If': [
        'UseTableKmsKey',
        { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { Ref: 'TableKmsKeyArn' } },
        { SSEEnabled: false },
      ],
    });
    expect(template.Conditions?.UseTableKmsKey).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'TableKmsKeyArn' }, ''] }],
    });
  });
});

describe('artifacts bucket', () => {
  const bucket = resource('ArtifactsBucket');
  const bucketProps = props('ArtifactsBucket');

  it('is versioned, encrypted, private, owner-enforced and kept', () => {
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    expect(bucketProps.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(JSON.stringify(bucketProps.BucketEncryption)).toMatch(/"SSEAlgorithm":"(AES256|aws:kms)"/);
    expect(bucketProps.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucketProps.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(JSON.stringify(bucketProps.LifecycleConfiguration ?? {})).not.toMatch(/Expiration/);
  });

  it('refuses requests without TLS', () => {
    const policies = resourcesOfType(template, 'AWS::S3::BucketPolicy').filter(
      ([, p]) => refName(p.Properties?.Bucket) === 'ArtifactsBucket',
    );
    expect(policies).toHaveLength(1);
    const document = policies[0]?.[1].Properties?.PolicyDocument as { Statement: Record<string, unknown>[] };
    const statements = document.Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Deny',
        Principal: '*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
  });
});

describe('CodeBuild projects', () => {
  const cases = [
    {
      id: 'BuildProject',
      role: 'BuildRole',
      timeout: 'BuildTimeoutMinutes',
      buildspec: 'buildspecs/build.yml',
    },
    {
      id: 'DeployProject',
      role: 'DeployJobRole',
      timeout: 'DeployTimeoutMinutes',
      buildspec: 'buildspecs/deploy.yml',
    },
  ];

  describe.each(cases)('$id', ({ id, role, timeout, buildspec }) => {
    const project = props(id);

    it(`runs as ${role} on a small arm64 standard image`, () => {
      expect(getAtt(project.ServiceRole)).toEqual([role, 'Arn']);
      expect(project.Environment).toMatchObject({
        Type: 'ARM_CONTAINER',
        ComputeType: 'BUILD_GENERAL1_SMALL',
        Image: 'aws/codebuild/amazonlinux-aarch64-standard:3.0',
        PrivilegedMode: false,
      });
      expect(project.Artifacts).toEqual({ Type: 'NO_ARTIFACTS' });
    });

    it('has the short queued timeout and its own timeout, both parameters', () => {
      expect(project.QueuedTimeoutInMinutes).toEqual({ Ref: 'QueuedTimeoutMinutes' });
      expect(project.TimeoutInMinutes).toEqual({ Ref: timeout });
    });

    it('logs to its own log group with retention', () => {
      const logs = (project.LogsConfig as { CloudWatchLogs: Record<string, unknown> }).CloudWatchLogs;
      expect(logs.Status).toBe('ENABLED');
      const group = resource(refName(logs.GroupName) ?? '');
      expect(group.Properties?.RetentionInDays).toEqual({ Ref: 'LogRetentionDays' });
    });

    it(`has no source; ${buildspec} reaches it only as the published copy (test/template/job-specs.test.ts)`, () => {
      const source = project.Source as Record<string, unknown>;
      expect(source.Type).toBe('NO_SOURCE');
      expect(existsSync(join(root, buildspec)), `${buildspec} exists`).toBe(true);
      expect(source.BuildSpec).not.toContain(readFileSync(join(root, buildspec), 'utf8').split('\n')[0]);
    });
  });
});

interface HttpApiEvent {
  ApiId: unknown;
  Method: string;
  Path: string;
  Auth?: unknown;
}

describe('HTTP API', () => {
  const api = props('HttpApi');

  it('authorizes every route with IAM and writes access logs', () => {
    expect(api.Auth).toMatchObject({ DefaultAuthorizer: 'AWS_IAM', EnableIamAuthorizer: true });
    const destination = getAtt((api.AccessLogSettings as Record<string, unknown>).DestinationArn);
    expect(resource(destination?.[0] ?? '').Type).toBe('AWS::Logs::LogGroup');
  });

  it('routes exactly the documented API, only the signed Slack routes opting out of IAM', () => {
    const routes = resourcesOfType(template, 'AWS::Serverless::Function').flatMap(([id, fn]) =>
      Object.values(
        (fn.Properties?.Events ?? {}) as Record<string, { Type: string; Properties: HttpApiEvent }>,
      )
        .filter((event) => event.Type === 'HttpApi')
        .map((event) => ({ id, ...event.Properties })),
    );
    expect(routes.map(({ id, Method, Path }) => `${id} ${Method} ${Path}`).sort()).toEqual(
      [
        'GET /applications',
        'GET /deployments',
        'GET /deployments/{id}',
        'GET /deployments/{id}/events',
        'GET /deployments/{id}/follow',
        'GET /deployments/{id}/logs',
        'GET /metrics',
        'POST /deployments',
        'POST /deployments/{id}/approval',
        'POST /promotions',
        'POST /rollbacks',
      ]
        .map((route) => `ApiFunction ${route}`)
        // The doctor runs as the deployer role, the principal the targets trust (docs/doctor.md).
        .concat(['DoctorFunction GET /doctor/runs/{id}', 'DoctorFunction POST /doctor/runs'])
        .concat(['SlackFunction POST /slack/commands', 'SlackFunction POST /slack/interactions']),
    );
    for (const route of routes) {
      expect(route.ApiId).toEqual({ Ref: 'HttpApi' });
      if (route.Path === '/slack/commands' || route.Path === '/slack/interactions') {
        // Slack cannot sign with SigV4; the function verifies Slack's own signature instead.
        expect(route.Auth).toEqual({ Authorizer: 'NONE' });
      } else {
        expect(route).not.toHaveProperty('Auth');
      }
    }
  });
});

describe('EventBridge', () => {
  const eventsOf = (id: string) =>
    (props(id).Events ?? {}) as Record<string, { Type: string; Properties: Record<string, unknown> }>;

  it('sends terminal CodeBuild state changes of the two projects to JobEventsFunction', () => {
    const rules = Object.values(eventsOf('JobEventsFunction')).filter((e) => e.Type === 'EventBridgeRule');
    expect(rules).toHaveLength(1);
    expect(rules[0]?.Properties.Pattern).toEqual({
      source: ['aws.codebuild'],
      'detail-type': ['CodeBuild Build State Change'],
      detail: {
        'project-name': [{ Ref: 'BuildProject' }, { Ref: 'DeployProject' }],
        'build-status': expect.arrayContaining(['SUCCEEDED', 'FAILED', 'STOPPED']),
      },
    });
    expect(JSON.stringify(rules[0]?.Properties.Pattern)).not.toContain('IN_PROGRESS');
  });

  it('sends failed, timed-out and aborted executions to ReconcileFunction, and sweeps on a schedule', () => {
    const events = Object.values(eventsOf('ReconcileFunction'));
    const rule = events.find((e) => e.Type === 'EventBridgeRule');
    expect(rule?.Properties.Pattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: {
        stateMachineArn: [{ Ref: 'DeployStateMachine' }],
        status: ['FAILED', 'TIMED_OUT', 'ABORTED'],
      },
    });
    expect(events.find((e) => e.Type === 'Schedule')?.Properties.Schedule).toBe('rate(5 minutes)');
  });
});

describe('parameters and outputs', () => {
  it('has the installation parameters, and no silent ARN default', () => {
    expect(Object.keys(template.Parameters ?? {}).sort()).toEqual(
      [
        'BuildTimeoutMinutes',
        'DeployTimeoutMinutes',
        'LogLevel',
        'LogRetentionDays',
        'QueuedTimeoutMinutes',
        'TableKmsKeyArn',
      ].sort(),
    );
    for (const [name, parameter] of Object.entries(template.Parameters ?? {})) {
      if (/Arn$/.test(name)) expect(parameter.Default ?? '', name).toBe('');
    }
  });

  it('outputs what an operator and a target account need', () => {
    expect(Object.keys(template.Outputs ?? {}).sort()).toEqual(
      [
        'ApiUrl',
        'ArtifactsBucketName',
        'DeployJobRoleArn',
        'DeployerRoleArn',
        'StateMachineArn',
        'TableName',
      ].sort(),
    );
    expect(template.Outputs?.DeployerRoleArn?.Value).toEqual({ 'Fn::GetAtt': ['DeployerRole', 'Arn'] });
    expect(template.Outputs?.DeployJobRoleArn?.Value).toEqual({ 'Fn::GetAtt': ['DeployJobRole', 'Arn'] });
  });
});
