import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CfnTemplate, isRecord, loadTemplate } from '../../scripts/cfn-yaml.ts';
import { CfnResolver } from '../support/cfn-resolve.ts';
import { type Decision, evaluate, type Request } from '../support/iam-evaluate.ts';

/**
 * What a hostile template can and cannot do once deployed, computed from the policy documents the two templates
 * create (resolved for one installation) by an IAM policy evaluator. Each row is (principal's policies,
 * boundary, action, resource) -> decision. README "Onboarding a target account" states these results.
 */

const root = resolve(import.meta.dirname, '../..');
const target = loadTemplate(join(root, 'target-account/template.yaml'));
const orchestrator = loadTemplate(join(root, 'template.yaml'));

const ACCOUNT = '222222222222';
const ORCHESTRATOR = '123456789012';
const REGION = 'eu-west-1';
const DEPLOYER = `arn:aws:iam::${ORCHESTRATOR}:role/crossdeploy/crossdeploy-deployer`;
const DEPLOY_JOB = `arn:aws:iam::${ORCHESTRATOR}:role/crossdeploy/crossdeploy-deploy-job`;

/** One installation of target-account/template.yaml for one application prefix in the same account and region. */
const bootstrap = (prefix: string) =>
  new CfnResolver(target, {
    account: ACCOUNT,
    region: REGION,
    stackName: `crossdeploy-target-${prefix}`,
    parameters: {
      OrchestratorAccountId: ORCHESTRATOR,
      DeployerRoleArn: DEPLOYER,
      DeployJobRoleArn: DEPLOY_JOB,
      ApplicationPrefix: prefix,
    },
  });

const asList = (value: unknown): unknown[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** The role's inline policies and the template's own managed policies attached to it, resolved. */
function policiesOf(template: CfnTemplate, at: CfnResolver, roleId: string): unknown[] {
  const props = template.Resources[roleId]?.Properties;
  if (!props) throw new Error(`no role ${roleId}`);
  const inline = asList(at.resolve(props.Policies))
    .filter(isRecord)
    .map((p) => p.PolicyDocument);
  // Managed policies without a fixed name have a generated ARN: they must not be attached here.
  const own = new Map(
    Object.entries(template.Resources)
      .filter(
        ([, r]) => r.Type === 'AWS::IAM::ManagedPolicy' && r.Properties?.ManagedPolicyName !== undefined,
      )
      .map(([id, r]) => [String(at.ref(id)), r.Properties?.PolicyDocument]),
  );
  const attached = asList(at.resolve(props.ManagedPolicyArns)).filter((a) => typeof a === 'string');
  const managed = attached.map((arn) => {
    if (!own.has(arn)) throw new Error(`${roleId}: managed policy ${arn} is not modelled`);
    return at.resolve(own.get(arn));
  });
  return [...inline, ...managed];
}

const document = (template: CfnTemplate, at: CfnResolver, id: string, key: string) =>
  at.resolve(template.Resources[id]?.Properties?.[key]);

const ADMINISTRATOR = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};
/** A role that trusts its whole account: what `sts:AssumeRole` into "any role that trusts the account" meets. */
const TRUSTS_THE_ACCOUNT = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' },
  ],
};

/** A key policy that leaves the decision to IAM policies (the default key policy): KMS needs one. */
const KEY_POLICY_DELEGATING_TO_IAM = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' },
  ],
};

const hello = bootstrap('hello');
const billing = bootstrap('billing');
const arn = {
  boundary: (at: CfnResolver) => String(at.ref('PermissionsBoundary')),
  executionRole: (at: CfnResolver) => at.getAtt('ExecutionRole', 'Arn'),
  deployRole: (at: CfnResolver) => at.getAtt('DeployRole', 'Arn'),
  bucket: (at: CfnResolver) => at.getAtt('ArtifactsBucket', 'Arn'),
  stack: (name: string) =>
    `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${name}/6c0ffee0-0000-0000-0000-000000000000`,
  fn: (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`,
  role: (path: string) => `arn:aws:iam::${ACCOUNT}:role/${path}`,
};

type Case = [
  description: string,
  request: Omit<Request, 'principal' | 'identity' | 'boundary'>,
  expected: Decision,
];

const run = async (base: () => Pick<Request, 'principal' | 'identity' | 'boundary'>, request: Case[1]) =>
  evaluate({ ...base(), ...request });

describe('a role created by a deployed template (hello), whatever policy it attached (AdministratorAccess)', () => {
  // The backdoor: CreateRole with a trust policy naming an outside account, then AttachRolePolicy
  // AdministratorAccess. The boundary is what such a role can do, for whoever assumes it.
  const backdoor = () => ({
    principal: arn.role('hello-world-prod-Backdoor-1ABC'),
    identity: [ADMINISTRATOR],
    boundary: document(target, hello, 'PermissionsBoundary', 'PolicyDocument'),
  });

  const cases: Case[] = [
    [
      'may not assume a role outside the prefix that trusts the account',
      { action: 'sts:AssumeRole', resource: arn.role('ops-admin'), resourcePolicy: TRUSTS_THE_ACCOUNT },
      'ExplicitlyDenied',
    ],
    [
      "may not assume another application's deploy role",
      { action: 'sts:AssumeRole', resource: arn.deployRole(billing), resourcePolicy: TRUSTS_THE_ACCOUNT },
      'ExplicitlyDenied',
    ],
    [
      'may assume a role of its own prefix',
      {
        action: 'sts:AssumeRole',
        resource: arn.role('hello-world-prod-Worker-9XYZ'),
        resourcePolicy: TRUSTS_THE_ACCOUNT,
      },
      'Allowed',
    ],
    [
      "may not change another application's function code",
      { action: 'lambda:UpdateFunctionCode', resource: arn.fn('billing-prod-Api-1A2B') },
      'ExplicitlyDenied',
    ],
    [
      'may invoke a function of its own prefix',
      { action: 'lambda:InvokeFunction', resource: arn.fn('hello-world-prod-Other-1A2B') },
      'Allowed',
    ],
    [
      'may not start a CodeBuild build (with overrides it would run anything as the project role)',
      { action: 'codebuild:StartBuild', resource: `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/ci` },
      'ExplicitlyDenied',
    ],
    [
      'may not run commands on instances (ssm:SendCommand)',
      {
        action: 'ssm:SendCommand',
        resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`,
      },
      'ExplicitlyDenied',
    ],
    [
      "may not update another application's stack",
      { action: 'cloudformation:UpdateStack', resource: arn.stack('billing-prod') },
      'ExplicitlyDenied',
    ],
    [
      'may not update the bootstrap stack that holds its own boundary',
      { action: 'cloudformation:UpdateStack', resource: String(hello.ref('AWS::StackId')) },
      'ExplicitlyDenied',
    ],
    [
      'may not read or write its own artifacts bucket (deployed code)',
      { action: 's3:PutObject', resource: `${arn.bucket(hello)}/hello-world-prod/code.zip` },
      'ExplicitlyDenied',
    ],
    [
      "may not read another application's artifacts bucket",
      { action: 's3:GetObject', resource: `${arn.bucket(billing)}/billing-prod/code.zip` },
      'ExplicitlyDenied',
    ],
    [
      'may not create a role, even one of its own prefix',
      { action: 'iam:CreateRole', resource: arn.role('hello-world-prod-Another') },
      'ExplicitlyDenied',
    ],
    [
      'may not attach a policy to a role outside the prefix',
      {
        action: 'iam:AttachRolePolicy',
        resource: arn.role('ops-admin'),
        context: { 'iam:PolicyARN': 'arn:aws:iam::aws:policy/AdministratorAccess' },
      },
      'ExplicitlyDenied',
    ],
    [
      'may not pass a role to a service',
      {
        action: 'iam:PassRole',
        resource: arn.role('hello-world-prod-Worker-9XYZ'),
        context: { 'iam:PassedToService': 'lambda.amazonaws.com' },
      },
      'ExplicitlyDenied',
    ],
    [
      "may not read another application's table",
      {
        action: 'dynamodb:GetItem',
        resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/billing-prod-Ledger-1`,
      },
      'ImplicitlyDenied',
    ],
    [
      'may write a table of its own prefix',
      {
        action: 'dynamodb:PutItem',
        resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/hello-world-prod-Table-1ABC`,
      },
      'Allowed',
    ],
    [
      'may send to a queue of its own prefix',
      { action: 'sqs:SendMessage', resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:hello-world-prod-Queue-1ABC` },
      'Allowed',
    ],
    [
      "may not receive from another application's queue",
      { action: 'sqs:ReceiveMessage', resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:billing-prod-Queue-1ABC` },
      'ImplicitlyDenied',
    ],
    [
      'may publish to a topic of its own prefix',
      { action: 'sns:Publish', resource: `arn:aws:sns:${REGION}:${ACCOUNT}:hello-world-prod-Topic-1ABC` },
      'Allowed',
    ],
    [
      'may write objects to a bucket of its own prefix',
      { action: 's3:PutObject', resource: 'arn:aws:s3:::hello-world-prod-uploads-1abc/photo.jpg' },
      'Allowed',
    ],
    [
      "may not read another application's bucket",
      { action: 's3:GetObject', resource: 'arn:aws:s3:::billing-prod-invoices-1abc/invoice.pdf' },
      'ImplicitlyDenied',
    ],
    [
      'may put events on the default event bus',
      { action: 'events:PutEvents', resource: `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/default` },
      'Allowed',
    ],
    [
      'may write its function logs',
      {
        action: 'logs:PutLogEvents',
        resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/hello-world-prod-Fn-1ABC:log-stream:x`,
      },
      'Allowed',
    ],
    ['may send traces to X-Ray', { action: 'xray:PutTraceSegments', resource: '*' }, 'Allowed'],
    [
      'may use a KMS key aliased with its prefix',
      {
        action: 'kms:Decrypt',
        resource: `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-2222-3333-4444-555555555555`,
        context: { 'kms:ResourceAliases': ['alias/hello-data'] },
        resourcePolicy: KEY_POLICY_DELEGATING_TO_IAM,
      },
      'Allowed',
    ],
    [
      "may not use another application's KMS key directly",
      {
        action: 'kms:Decrypt',
        resource: `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-2222-3333-4444-555555555555`,
        context: { 'kms:ResourceAliases': ['alias/billing-data'] },
        resourcePolicy: KEY_POLICY_DELEGATING_TO_IAM,
      },
      'ImplicitlyDenied',
    ],
    [
      'may read a parameter of its own prefix',
      { action: 'ssm:GetParameter', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/hello/db-url` },
      'Allowed',
    ],
    [
      "may not read another application's secret",
      {
        action: 'secretsmanager:GetSecretValue',
        resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:billing/stripe-AbCdEf`,
      },
      'ImplicitlyDenied',
    ],
    [
      'may not open a session on an instance (ssm:StartSession)',
      {
        action: 'ssm:StartSession',
        resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`,
      },
      'ExplicitlyDenied',
    ],
    [
      'may start executions of its own state machines',
      {
        action: 'states:StartExecution',
        resource: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:hello-world-prod-Flow-1ABC`,
      },
      'Allowed',
    ],
  ];

  it.each(cases)('%s', async (_, request, expected) => {
    expect(await run(backdoor, request)).toBe(expected);
  });
});

describe('the execution role of one application (hello): what any of its templates can make CloudFormation do', () => {
  const execution = () => ({
    principal: arn.executionRole(hello),
    identity: policiesOf(target, hello, 'ExecutionRole'),
  });
  const withBoundary = (boundary: string) => ({ 'iam:PermissionsBoundary': boundary });

  const cases: Case[] = [
    [
      'may create a role of its prefix with its boundary',
      {
        action: 'iam:CreateRole',
        resource: arn.role('hello-world-prod-FnRole-1ABC'),
        context: withBoundary(arn.boundary(hello)),
      },
      'Allowed',
    ],
    [
      'may not create a role without a boundary (the backdoor)',
      { action: 'iam:CreateRole', resource: arn.role('hello-world-prod-Backdoor-1ABC') },
      'ImplicitlyDenied',
    ],
    [
      "may not create a role with another application's boundary",
      {
        action: 'iam:CreateRole',
        resource: arn.role('hello-world-prod-FnRole-1ABC'),
        context: withBoundary(arn.boundary(billing)),
      },
      'ImplicitlyDenied',
    ],
    [
      'may not create a role outside its prefix, even with its boundary',
      {
        action: 'iam:CreateRole',
        resource: arn.role('billing-prod-FnRole-1ABC'),
        context: withBoundary(arn.boundary(hello)),
      },
      'ExplicitlyDenied',
    ],
    [
      'may not attach AdministratorAccess, even to a role with the boundary',
      {
        action: 'iam:AttachRolePolicy',
        resource: arn.role('hello-world-prod-Backdoor-1ABC'),
        context: {
          ...withBoundary(arn.boundary(hello)),
          'iam:PolicyARN': 'arn:aws:iam::aws:policy/AdministratorAccess',
        },
      },
      'ExplicitlyDenied',
    ],
    [
      'may attach a managed policy to a role of its prefix that carries the boundary',
      {
        action: 'iam:AttachRolePolicy',
        resource: arn.role('hello-world-prod-FnRole-1ABC'),
        context: {
          ...withBoundary(arn.boundary(hello)),
          'iam:PolicyARN': 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
        },
      },
      'Allowed',
    ],
    [
      'may not take the boundary off a role',
      { action: 'iam:DeleteRolePermissionsBoundary', resource: arn.role('hello-world-prod-FnRole-1ABC') },
      'ExplicitlyDenied',
    ],
    [
      'may pass a role of its prefix to Lambda',
      {
        action: 'iam:PassRole',
        resource: arn.role('hello-world-prod-FnRole-1ABC'),
        context: { 'iam:PassedToService': 'lambda.amazonaws.com' },
      },
      'Allowed',
    ],
    [
      "may not pass another application's execution role",
      {
        action: 'iam:PassRole',
        resource: arn.executionRole(billing),
        context: { 'iam:PassedToService': 'cloudformation.amazonaws.com' },
      },
      'ExplicitlyDenied',
    ],
    [
      "may not change another application's function",
      { action: 'lambda:UpdateFunctionCode', resource: arn.fn('billing-prod-Api-1A2B') },
      'ImplicitlyDenied',
    ],
    [
      "may not update another application's stack",
      { action: 'cloudformation:UpdateStack', resource: arn.stack('billing-prod') },
      'ImplicitlyDenied',
    ],
    [
      'may not write its artifacts bucket',
      { action: 's3:PutObject', resource: `${arn.bucket(hello)}/hello-world-prod/code.zip` },
      'ExplicitlyDenied',
    ],
    [
      'may read its artifacts (Lambda fetches code with the rights of the function creator)',
      { action: 's3:GetObject', resource: `${arn.bucket(hello)}/hello-world-prod/code.zip` },
      'Allowed',
    ],
    [
      // Reading is not granted; an ExecutionRoleExtraPolicyArns policy could grant it (writes stay denied).
      "may not read another application's artifacts",
      { action: 's3:GetObject', resource: `${arn.bucket(billing)}/billing-prod/code.zip` },
      'ImplicitlyDenied',
    ],
    [
      "may not write another application's artifacts",
      { action: 's3:PutObject', resource: `${arn.bucket(billing)}/billing-prod/code.zip` },
      'ExplicitlyDenied',
    ],
    [
      'may not start a CodeBuild build',
      { action: 'codebuild:StartBuild', resource: `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/ci` },
      'ExplicitlyDenied',
    ],
    [
      'may not run commands on instances',
      {
        action: 'ssm:SendCommand',
        resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`,
      },
      'ExplicitlyDenied',
    ],
    [
      "may not delete another application's bucket",
      { action: 's3:DeleteBucket', resource: 'arn:aws:s3:::billing-prod-invoices-1abc' },
      'ImplicitlyDenied',
    ],
    [
      "may not put a policy on another application's role",
      {
        action: 'iam:PutRolePolicy',
        resource: arn.role('billing-prod-FnRole-1ABC'),
        context: withBoundary(arn.boundary(billing)),
      },
      'ExplicitlyDenied',
    ],
    [
      'may create a REST API named with its prefix',
      {
        action: 'apigateway:POST',
        resource: `arn:aws:apigateway:${REGION}::/restapis`,
        context: { 'apigateway:Request/ApiName': 'hello-world-prod' },
      },
      'Allowed',
    ],
    [
      'may not create a REST API named outside its prefix',
      {
        action: 'apigateway:POST',
        resource: `arn:aws:apigateway:${REGION}::/restapis`,
        context: { 'apigateway:Request/ApiName': 'billing-prod' },
      },
      'ExplicitlyDenied',
    ],
    [
      'may not delete a REST API named outside its prefix',
      {
        action: 'apigateway:DELETE',
        resource: `arn:aws:apigateway:${REGION}::/restapis/a1b2c3d4e5`,
        context: { 'apigateway:Resource/ApiName': 'billing-prod' },
      },
      'ExplicitlyDenied',
    ],
    [
      'may rename a REST API of its prefix only within the prefix',
      {
        action: 'apigateway:PATCH',
        resource: `arn:aws:apigateway:${REGION}::/restapis/a1b2c3d4e5`,
        context: {
          'apigateway:Resource/ApiName': 'hello-world-prod',
          'apigateway:Request/ApiName': 'billing-prod',
        },
      },
      'ExplicitlyDenied',
    ],
    [
      'may update a REST API of its prefix',
      {
        action: 'apigateway:PATCH',
        resource: `arn:aws:apigateway:${REGION}::/restapis/a1b2c3d4e5`,
        context: { 'apigateway:Resource/ApiName': 'hello-world-prod' },
      },
      'Allowed',
    ],
    [
      // The documented limit: an API's parts are named by the generated API id only, and API Gateway gives
      // no API-name key for them, so IAM cannot tell whose API a stage belongs to.
      "CAN delete a stage of another application's API (IAM cannot tell: README says so)",
      {
        action: 'apigateway:DELETE',
        resource: `arn:aws:apigateway:${REGION}::/restapis/f6g7h8i9j0/stages/prod`,
      },
      'Allowed',
    ],
  ];

  it.each(cases)('%s', async (_, request, expected) => {
    expect(await run(execution, request)).toBe(expected);
  });
});

describe('the execution role widened with ExecutionRoleExtraPolicyArns=AdministratorAccess: its denials still hold', () => {
  const widened = () => ({
    principal: arn.executionRole(hello),
    identity: [...policiesOf(target, hello, 'ExecutionRole'), ADMINISTRATOR],
  });
  const cases: Case[] = [
    [
      'no role outside the prefix',
      {
        action: 'iam:CreateRole',
        resource: arn.role('ops-backdoor'),
        context: { 'iam:PermissionsBoundary': arn.boundary(hello) },
      },
      'ExplicitlyDenied',
    ],
    [
      "no policy on crossdeploy's own roles",
      { action: 'iam:PutRolePolicy', resource: arn.deployRole(hello) },
      'ExplicitlyDenied',
    ],
    ...['AdministratorAccess', 'IAMFullAccess', 'PowerUserAccess'].map(
      (policy): Case => [
        `no ${policy} attached, even to a role of its prefix with the boundary`,
        {
          action: 'iam:AttachRolePolicy',
          resource: arn.role('hello-world-prod-FnRole-1ABC'),
          context: {
            'iam:PermissionsBoundary': arn.boundary(hello),
            'iam:PolicyARN': `arn:aws:iam::aws:policy/${policy}`,
          },
        },
        'ExplicitlyDenied',
      ],
    ),
    [
      'no boundary taken off',
      { action: 'iam:DeleteRolePermissionsBoundary', resource: arn.role('hello-world-prod-FnRole-1ABC') },
      'ExplicitlyDenied',
    ],
    [
      'no write to any crossdeploy bucket',
      { action: 's3:PutObject', resource: `${arn.bucket(billing)}/billing-prod/code.zip` },
      'ExplicitlyDenied',
    ],
    [
      'no CodeBuild',
      { action: 'codebuild:StartBuild', resource: `arn:aws:codebuild:${REGION}:${ACCOUNT}:project/ci` },
      'ExplicitlyDenied',
    ],
    [
      'no ssm:StartSession',
      {
        action: 'ssm:StartSession',
        resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`,
      },
      'ExplicitlyDenied',
    ],
    [
      'but service-linked roles, which AWS defines, can be created',
      {
        action: 'iam:CreateServiceLinkedRole',
        resource: arn.role('aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway'),
      },
      'Allowed',
    ],
  ];
  it.each(cases)('%s', async (_, request, expected) => {
    expect(await run(widened, request)).toBe(expected);
  });
});

describe('the deploy role of one application (hello)', () => {
  const deploy = () => ({
    principal: arn.deployRole(hello),
    identity: policiesOf(target, hello, 'DeployRole'),
  });
  const cases: Case[] = [
    [
      'may run change sets on its stacks',
      { action: 'cloudformation:ExecuteChangeSet', resource: arn.stack('hello-world-prod') },
      'Allowed',
    ],
    [
      "may not run change sets on another application's stack",
      { action: 'cloudformation:ExecuteChangeSet', resource: arn.stack('billing-prod') },
      'ImplicitlyDenied',
    ],
    [
      'may pass its own execution role to CloudFormation',
      {
        action: 'iam:PassRole',
        resource: arn.executionRole(hello),
        context: { 'iam:PassedToService': 'cloudformation.amazonaws.com' },
      },
      'Allowed',
    ],
    [
      "may not pass another application's execution role",
      {
        action: 'iam:PassRole',
        resource: arn.executionRole(billing),
        context: { 'iam:PassedToService': 'cloudformation.amazonaws.com' },
      },
      'ImplicitlyDenied',
    ],
    [
      'may upload code under its stacks in its artifacts bucket',
      { action: 's3:PutObject', resource: `${arn.bucket(hello)}/hello-world-prod/code.zip` },
      'Allowed',
    ],
    [
      "may not upload into another application's artifacts bucket",
      { action: 's3:PutObject', resource: `${arn.bucket(billing)}/billing-prod/code.zip` },
      'ImplicitlyDenied',
    ],
  ];
  it.each(cases)('%s', async (_, request, expected) => {
    expect(await run(deploy, request)).toBe(expected);
  });

  describe('is assumed (trust policy and the caller side) by', () => {
    const orch = new CfnResolver(orchestrator, {
      account: ORCHESTRATOR,
      region: REGION,
      stackName: 'crossdeploy',
      parameters: {},
      resources: {
        DeployLogGroup: {
          arn: `arn:aws:logs:${REGION}:${ORCHESTRATOR}:log-group:/aws/codebuild/crossdeploy-deploy:*`,
        },
        ArtifactsBucket: { ref: 'crossdeploy-artifactsbucket-1abc' },
        JobSpecsBucket: { ref: 'crossdeploy-jobspecsbucket-1abc' },
      },
    });
    const trust = () => document(target, hello, 'DeployRole', 'AssumeRolePolicyDocument');
    const assume = (principal: string, identity: unknown[]) =>
      evaluate({
        principal,
        identity,
        action: 'sts:AssumeRole',
        resource: arn.deployRole(hello),
        resourcePolicy: trust(),
      });
    const ALL_DEPLOY_ROLES = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: arn.deployRole(hello) }],
    };

    it("names the orchestrator's two roles as the orchestrator template creates them", () => {
      expect(orch.getAtt('DeployJobRole', 'Arn')).toBe(DEPLOY_JOB);
      expect(orch.getAtt('DeployerRole', 'Arn')).toBe(DEPLOYER);
    });
    it('the deploy job role, with its own policies', async () => {
      expect(await assume(DEPLOY_JOB, [ALL_DEPLOY_ROLES])).toBe('Allowed');
    });
    it('the deployer role (the Lambda steps: preflight, settle, doctor)', async () => {
      expect(await assume(DEPLOYER, [ALL_DEPLOY_ROLES])).toBe('Allowed');
    });
    it('with an ExternalId, only when the job sends it', async () => {
      const withId = new CfnResolver(target, {
        ...hello.installation,
        parameters: { ...hello.installation.parameters, ExternalId: 'crossdeploy-prod-7f3a' },
      });
      const request = (context: Record<string, string>) =>
        evaluate({
          principal: DEPLOY_JOB,
          identity: [ALL_DEPLOY_ROLES],
          action: 'sts:AssumeRole',
          resource: arn.deployRole(hello),
          resourcePolicy: document(target, withId, 'DeployRole', 'AssumeRolePolicyDocument'),
          context,
        });
      expect(await request({ 'sts:ExternalId': 'crossdeploy-prod-7f3a' })).toBe('Allowed');
      expect(await request({ 'sts:ExternalId': 'guessed' })).toBe('ImplicitlyDenied');
      expect(await request({})).toBe('ImplicitlyDenied');
    });
    it('and by no other role of the orchestrator account, whatever its own policy says', async () => {
      const build = `arn:aws:iam::${ORCHESTRATOR}:role/crossdeploy/crossdeploy-BuildRole-1ABC`;
      expect(await assume(build, [ADMINISTRATOR])).toBe('ImplicitlyDenied');
    });
    it('and by no role of another account named like the deploy job', async () => {
      const lookalike = `arn:aws:iam::999999999999:role/crossdeploy/crossdeploy-deploy-job`;
      expect(await assume(lookalike, [ADMINISTRATOR])).toBe('ImplicitlyDenied');
    });
    it('the orchestrator template lets the deploy job role assume exactly the registry deploy roles', async () => {
      const identity = policiesOf(orchestrator, orch, 'DeployJobRole');
      // The registry's prod environment is this bootstrap's deploy role: both sides agree end to end.
      expect(arn.deployRole(hello)).toBe(
        `arn:aws:iam::${ACCOUNT}:role/crossdeploy/crossdeploy-hello-deploy-${REGION}`,
      );
      expect(
        await evaluate({
          principal: DEPLOY_JOB,
          identity,
          action: 'sts:AssumeRole',
          resource: arn.deployRole(hello),
          resourcePolicy: trust(),
        }),
      ).toBe('Allowed');
      expect(
        await evaluate({
          principal: DEPLOY_JOB,
          identity,
          action: 'sts:AssumeRole',
          resource: arn.role('ops-admin'),
        }),
      ).toBe('ImplicitlyDenied');
    });
  });
});

describe('the orchestrator: the deploy job identity does only its job', () => {
  const TABLE = `arn:aws:dynamodb:${REGION}:${ORCHESTRATOR}:table/crossdeploy-DeploymentsTable-1ABC`;
  const orch = new CfnResolver(orchestrator, {
    account: ORCHESTRATOR,
    region: REGION,
    stackName: 'crossdeploy',
    parameters: {},
    resources: {
      DeploymentsTable: { arn: TABLE },
      ArtifactsBucket: { ref: 'crossdeploy-artifactsbucket-1abc' },
      JobSpecsBucket: { ref: 'crossdeploy-jobspecsbucket-1abc' },
      ...Object.fromEntries(
        [
          'DeployLogGroup',
          'AssumeTargetRoleFunctionLogGroup',
          'RecordResultFunctionLogGroup',
          'ReconcileFunctionLogGroup',
          'DoctorFunctionLogGroup',
        ].map((id) => [id, { arn: `arn:aws:logs:${REGION}:${ORCHESTRATOR}:log-group:/crossdeploy/${id}:*` }]),
      ),
    },
  });
  const BUILD_OUTPUT = 'arn:aws:s3:::crossdeploy-artifactsbucket-1abc/builds/hello-world/01JABCDEF.zip';
  const STATE_MACHINE = `arn:aws:states:${REGION}:${ORCHESTRATOR}:stateMachine:crossdeploy-deploy`;
  const DEPLOY_PROJECT = `arn:aws:codebuild:${REGION}:${ORCHESTRATOR}:project/crossdeploy-deploy`;
  const JOB_SPECS_BUCKET = 'arn:aws:s3:::crossdeploy-jobspecsbucket-1abc';
  const PUBLISHER = `arn:aws:lambda:${REGION}:${ORCHESTRATOR}:function:crossdeploy-PublishJobSpecsFunction-1ABC`;

  const job = () => ({ principal: DEPLOY_JOB, identity: policiesOf(orchestrator, orch, 'DeployJobRole') });
  const lambdas = () => ({ principal: DEPLOYER, identity: policiesOf(orchestrator, orch, 'DeployerRole') });

  const DEFAULT_BUS = `arn:aws:events:${REGION}:${ORCHESTRATOR}:event-bus/default`;
  // Multivalued keys: one value per entry of the PutEvents call.
  const notice = (sources: string[], detailTypes: string[]) => ({
    action: 'events:PutEvents',
    resource: DEFAULT_BUS,
    context: { 'events:source': sources, 'events:detail-type': detailTypes },
  });

  const cases: [string, () => Pick<Request, 'principal' | 'identity'>, Case[1], Decision][] = [
    // Wait For Approval tells the Slack function through the default bus: only that event, under our source.
    [
      "the deployer may put crossdeploy's awaiting-approval event",
      lambdas,
      notice(['crossdeploy'], ['Deployment Awaiting Approval']),
      'Allowed',
    ],
    [
      'the deployer may not put an event of another source (a forged CodeBuild or Step Functions event)',
      lambdas,
      notice(['aws.codebuild'], ['CodeBuild Build State Change']),
      'ImplicitlyDenied',
    ],
    [
      'the deployer may not put another crossdeploy event type',
      lambdas,
      notice(['crossdeploy'], ['Deployment Succeeded']),
      'ImplicitlyDenied',
    ],
    [
      'the deployer may not slip a forged entry into a call with a genuine one',
      lambdas,
      notice(
        ['crossdeploy', 'aws.codebuild'],
        ['Deployment Awaiting Approval', 'CodeBuild Build State Change'],
      ),
      'ImplicitlyDenied',
    ],
    [
      'the deployer may not put an event without a source or detail type in the request context',
      lambdas,
      { action: 'events:PutEvents', resource: DEFAULT_BUS, context: {} },
      'ImplicitlyDenied',
    ],
    [
      'the deploy job may not put events at all',
      job,
      notice(['crossdeploy'], ['Deployment Awaiting Approval']),
      'ImplicitlyDenied',
    ],
    [
      'the deploy job may read a build output',
      job,
      { action: 's3:GetObjectVersion', resource: BUILD_OUTPUT },
      'Allowed',
    ],
    [
      'the deploy job may not write a build output',
      job,
      { action: 's3:PutObject', resource: BUILD_OUTPUT },
      'ImplicitlyDenied',
    ],
    [
      'the deploy job may not write the table',
      job,
      { action: 'dynamodb:PutItem', resource: TABLE },
      'ImplicitlyDenied',
    ],
    [
      'the deploy job may not read the table',
      job,
      { action: 'dynamodb:GetItem', resource: TABLE },
      'ImplicitlyDenied',
    ],
    // SendTask* have no resource-level permissions in IAM's reference: asked on '*', no statement grants them.
    [
      'the deploy job may not complete task tokens',
      job,
      { action: 'states:SendTaskSuccess', resource: '*' },
      'ImplicitlyDenied',
    ],
    [
      'the deploy job may not fail task tokens',
      job,
      { action: 'states:SendTaskFailure', resource: '*' },
      'ImplicitlyDenied',
    ],
    [
      'the deploy job may not stop builds',
      job,
      { action: 'codebuild:StopBuild', resource: DEPLOY_PROJECT },
      'ImplicitlyDenied',
    ],
    [
      'the Lambda steps still write the table',
      lambdas,
      { action: 'dynamodb:UpdateItem', resource: TABLE },
      'Allowed',
    ],
    [
      'the Lambda steps still read executions',
      lambdas,
      {
        action: 'states:DescribeExecution',
        resource: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:01JABCDEF`,
      },
      'Allowed',
    ],
    [
      'the Lambda steps still stop jobs when settling',
      lambdas,
      { action: 'codebuild:StopBuild', resource: DEPLOY_PROJECT },
      'Allowed',
    ],
    [
      'the Lambda steps no longer read build outputs',
      lambdas,
      { action: 's3:GetObject', resource: BUILD_OUTPUT },
      'ImplicitlyDenied',
    ],
    // The JobSpecs bucket policy keeps everyone but the publisher from writing a buildspec; it holds only
    // against identities that can neither rewrite it nor the publisher (test/template/job-specs.test.ts).
    ...(
      [
        ['the deploy job', job],
        ['the Lambda steps', lambdas],
      ] as const
    ).flatMap(([who, identity]) =>
      (
        [
          ['s3:PutBucketPolicy', JOB_SPECS_BUCKET],
          ['s3:DeleteBucketPolicy', JOB_SPECS_BUCKET],
          ['lambda:UpdateFunctionCode', PUBLISHER],
          ['lambda:UpdateFunctionConfiguration', PUBLISHER],
        ] as const
      ).map(([action, resource]): (typeof cases)[number] => [
        `${who} may not ${action} (the published buildspecs' guard)`,
        identity,
        { action, resource },
        'ImplicitlyDenied',
      ]),
    ),
  ];
  it.each(cases)('%s', async (_, who, request, expected) => {
    expect(await evaluate({ ...who(), ...request })).toBe(expected);
  });

  describe('the deployer role is assumed only by Lambda, for its own functions', () => {
    const trust = () => document(orchestrator, orch, 'DeployerRole', 'AssumeRolePolicyDocument');
    const DEPLOYER_FUNCTIONS = [
      'AssumeTargetRoleFunction',
      'RecordResultFunction',
      'ReconcileFunction',
      'DoctorFunction',
    ];
    const functionArn = (id: string) => {
      const name = orch.resolve(orchestrator.Resources[id]?.Properties?.FunctionName);
      if (typeof name !== 'string') throw new Error(`${id} has no fixed FunctionName`);
      return `arn:aws:lambda:${REGION}:${ORCHESTRATOR}:function:${name}`;
    };
    const assume = (principal: string, context: Record<string, string>) =>
      evaluate({ principal, action: 'sts:AssumeRole', resource: DEPLOYER, resourcePolicy: trust(), context });

    it.each(DEPLOYER_FUNCTIONS)('Lambda for %s', async (id) => {
      expect(
        await assume('lambda.amazonaws.com', {
          'aws:SourceAccount': ORCHESTRATOR,
          'aws:SourceArn': functionArn(id),
        }),
      ).toBe('Allowed');
    });
    it('not Lambda for another function of the account', async () => {
      expect(
        await assume('lambda.amazonaws.com', {
          'aws:SourceAccount': ORCHESTRATOR,
          'aws:SourceArn': `arn:aws:lambda:${REGION}:${ORCHESTRATOR}:function:someone-elses`,
        }),
      ).toBe('ImplicitlyDenied');
    });
    it('not Lambda on behalf of another account', async () => {
      expect(
        await assume('lambda.amazonaws.com', {
          'aws:SourceAccount': '999999999999',
          'aws:SourceArn': functionArn('DoctorFunction').replace(ORCHESTRATOR, '999999999999'),
        }),
      ).toBe('ImplicitlyDenied');
    });
    it('not CodeBuild (the deploy job has its own role now)', async () => {
      expect(
        await assume('codebuild.amazonaws.com', {
          'aws:SourceAccount': ORCHESTRATOR,
          'aws:SourceArn': DEPLOY_PROJECT,
        }),
      ).toBe('ImplicitlyDenied');
    });
  });
});

it('the evaluator (AGPL-3.0, a dev dependency) is imported by no shipped code', () => {
  const shipped = ['functions', 'local', 'bin', 'scripts'].flatMap((dir) =>
    readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => /\.(ts|mjs|js)$/.test(file))
      .map((file) => join(root, dir, file)),
  );
  expect(shipped.length).toBeGreaterThan(20);
  expect(shipped.filter((file) => readFileSync(file, 'utf8').includes('@cloud-copilot/'))).toEqual([]);
});
