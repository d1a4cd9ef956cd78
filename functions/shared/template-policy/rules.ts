/**
 * The template policy, as data. Each rule has an id (findings and the README name it), what it refuses, and
 * the facts the engine (engine.ts) compares against. Ideas from CDK's `--require-approval broadening` (any
 * IAM statement or trust that widens access is security-relevant) and cfn-guard (rules are data over the
 * parsed template); the checks themselves are ours and refuse rather than ask.
 */

export type RuleId =
  | 'unreadable-template'
  | 'trust-outside-application'
  | 'admin-managed-policy'
  | 'admin-statement'
  | 'role-without-boundary'
  | 'iam-user'
  | 'resource-policy-outside-account'
  | 'unchecked-code';

export interface Rule {
  id: RuleId;
  refuses: string;
}

export const RULES: readonly Rule[] = [
  {
    id: 'unreadable-template',
    refuses:
      'a built template that is not one JSON or YAML mapping with Resources (duplicate keys and unknown tags included)',
  },
  {
    id: 'trust-outside-application',
    refuses:
      'an IAM role (AWS::IAM::Role, or a role SAM generates) whose trust policy allows a principal other than an AWS service or a role of the same account named with the application prefix; a principal that cannot be resolved before deployment counts as outside',
  },
  {
    id: 'admin-managed-policy',
    refuses: 'attaching an AWS managed administrator policy (by name in SAM Policies, or by ARN)',
  },
  {
    id: 'admin-statement',
    refuses:
      'an Allow statement whose actions, taken together, include any IAM role write (iam:CreateRole, AttachRolePolicy, PutRolePolicy, UpdateAssumeRolePolicy, PassRole, DeleteRolePermissionsBoundary, PutRolePermissionsBoundary, CreatePolicyVersion, SetDefaultPolicyVersion; `*`, `iam:*` and NotAction include them all) on a resource that may be a role or managed policy of the account not named with the application prefix (`*`, `arn:aws:iam::*:role/*`, another role or policy by name, NotResource, or a resource that cannot be resolved)',
  },
  {
    id: 'role-without-boundary',
    refuses:
      "an IAM role (AWS::IAM::Role, or a role SAM generates) whose PermissionsBoundary is not the target's boundary",
  },
  {
    id: 'iam-user',
    refuses: 'IAM users, groups and access keys: long-lived identities no trust policy controls',
  },
  {
    id: 'resource-policy-outside-account',
    refuses:
      'a resource policy (of the resource types in RESOURCE_POLICIES and the Lambda-style permissions in PRINCIPAL_PERMISSIONS) whose Allow lets in a principal other than the target account itself, a principal of that account or an AWS service: another account, everyone ("*") unless a StringEquals condition pins aws:PrincipalAccount, aws:SourceAccount, aws:SourceOwner or kms:CallerAccount to the target account, NotPrincipal, web identities and canonical users; a public function URL (lambda:InvokeFunctionUrl with FunctionUrlAuthType NONE) is allowed, like a public API',
  },
  {
    id: 'unchecked-code',
    refuses:
      'anything that adds template text CloudFormation expands later (nested stacks and applications, Fn::Transform, transforms other than AWS::Serverless-2016-10-31), which this check cannot see',
  },
];

/** AWS managed policies that make a role an administrator of the account, or of its IAM. */
export const ADMIN_MANAGED_POLICIES: readonly string[] = [
  'AdministratorAccess',
  'IAMFullAccess',
  'PowerUserAccess',
];

/**
 * IAM role writes: whoever holds any of them on a role or policy outside the application can create or rewrite
 * a role (its trust, its policies, its boundary) and then become it, or hand it to a service (PassRole). The
 * resource of the role actions is the role, of the policy-version actions the managed policy.
 */
export const ROLE_WRITE_ACTIONS: readonly string[] = [
  'iam:CreateRole',
  'iam:AttachRolePolicy',
  'iam:PutRolePolicy',
  'iam:UpdateAssumeRolePolicy',
  'iam:PassRole',
  'iam:DeleteRolePermissionsBoundary',
  'iam:PutRolePermissionsBoundary',
  'iam:CreatePolicyVersion',
  'iam:SetDefaultPolicyVersion',
];

/**
 * The IAM resources role writes act on, as ARN resource parts of the target account. A resource pattern that
 * can match one of them (`*`, `arn:aws:iam::*:role/*`, `arn:aws:iam::*:*`, a role by name) reaches outside the
 * application unless its literal text already starts with `<kind><prefix>-` (or is `<kind><prefix>`).
 */
export const ROLE_WRITE_RESOURCE_KINDS: readonly string[] = ['role/', 'policy/'];

/** An action pattern is "every action" when it matches every one of these (`*`, `*:*`, `iam:*`, `iam:*Role*`). */
export const ESCALATION_ACTIONS: readonly string[] = [
  'iam:CreateRole',
  'iam:PassRole',
  'iam:PutRolePolicy',
  'iam:AttachRolePolicy',
  'iam:UpdateAssumeRolePolicy',
];

/** A resource pattern is "every resource" when it matches both of these (`*`, `arn:*`, `arn:aws:*`). */
export const EVERY_RESOURCE_CANARIES: readonly string[] = [
  'arn:aws:iam::000000000000:role/any-role',
  'arn:aws:s3:::any-bucket',
];

/** Trust principals of AWS services: `<name>.amazonaws.com` (`.amazonaws.com.cn` in China). */
export const SERVICE_PRINCIPAL_SUFFIXES: readonly string[] = ['.amazonaws.com', '.amazonaws.com.cn'];

/** The only transform whose expansion the engine models (sam.ts). */
export const SAM_TRANSFORM = 'AWS::Serverless-2016-10-31';

/** Resource types whose content CloudFormation fetches or expands later. */
export const UNCHECKABLE_TYPES: readonly string[] = [
  'AWS::CloudFormation::Stack',
  'AWS::Serverless::Application',
  'AWS::CloudFormation::Macro',
];

export const IAM_USER_TYPES: readonly string[] = [
  'AWS::IAM::User',
  'AWS::IAM::Group',
  'AWS::IAM::AccessKey',
  'AWS::IAM::UserToGroupAddition',
  'AWS::IAM::UserPolicy',
  'AWS::IAM::GroupPolicy',
];

/** Whose roles may be trusted, and which boundary every role must carry, for one environment. */
export interface ApplicationScope {
  /** Roles of the target account named `<rolePrefix>` or `<rolePrefix>-...` may be trusted. */
  rolePrefix: string;
  boundaryArn: string;
}

const BOOTSTRAP_PREFIX = /^[a-z][a-z0-9]{1,19}$/;

/**
 * The application prefix and boundary of target-account/template.yaml, read from the environment's deploy role
 * (`role/crossdeploy/crossdeploy-<prefix>-deploy-<region>`): the boundary is `crossdeploy-<prefix>-boundary-<region>`.
 * A deploy role set up by hand says neither: then the stack name is the prefix and the boundary is the
 * single-bootstrap name `crossdeploy-boundary-<region>` (README "Guard rails").
 */
export function applicationScope(
  deployRoleArn: string,
  accountId: string,
  region: string,
  stackName: string,
): ApplicationScope {
  const [, partition = 'aws', , , , resource = ''] = deployRoleArn.split(':');
  const policy = (name: string) => `arn:${partition}:iam::${accountId}:policy/crossdeploy/${name}`;
  const head = 'role/crossdeploy/crossdeploy-';
  const tail = `-deploy-${region}`;
  if (resource.startsWith(head) && resource.endsWith(tail)) {
    const prefix = resource.slice(head.length, resource.length - tail.length);
    if (BOOTSTRAP_PREFIX.test(prefix)) {
      return { rolePrefix: prefix, boundaryArn: policy(`crossdeploy-${prefix}-boundary-${region}`) };
    }
  }
  return { rolePrefix: stackName, boundaryArn: policy(`crossdeploy-boundary-${region}`) };
}

/**
 * Resource types whose resource policy lets principals in, and where the policy document sits (a path of
 * property names). A document may also be JSON text (AWS::Logs::ResourcePolicy). Resource types not listed here
 * are not checked for resource policies.
 */
export const RESOURCE_POLICIES: Readonly<Record<string, readonly (readonly string[])[]>> = {
  'AWS::S3::BucketPolicy': [['PolicyDocument']],
  'AWS::S3::AccessPoint': [['Policy']],
  'AWS::SQS::QueuePolicy': [['PolicyDocument']],
  'AWS::SNS::TopicPolicy': [['PolicyDocument']],
  'AWS::KMS::Key': [['KeyPolicy']],
  'AWS::SecretsManager::ResourcePolicy': [['ResourcePolicy']],
  'AWS::ECR::Repository': [['RepositoryPolicyText']],
  'AWS::DynamoDB::Table': [['ResourcePolicy', 'PolicyDocument']],
  'AWS::ApiGateway::RestApi': [['Policy']],
  'AWS::Logs::ResourcePolicy': [['PolicyDocument']],
  'AWS::EFS::FileSystem': [['FileSystemPolicy']],
  'AWS::Events::EventBusPolicy': [['Statement']],
};

/** Lambda-style permissions: one principal (a string) and the conditions written as properties. */
export const PRINCIPAL_PERMISSIONS: readonly string[] = [
  'AWS::Lambda::Permission',
  'AWS::Lambda::LayerVersionPermission',
  'AWS::Events::EventBusPolicy',
];

/** Condition keys that, pinned with StringEquals to the target account, keep "*" inside that account. */
export const ACCOUNT_PINNING_KEYS: readonly string[] = [
  'aws:PrincipalAccount',
  'aws:SourceAccount',
  'aws:SourceOwner',
  'kms:CallerAccount',
];
