import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkTemplate,
  checkTemplateText,
  globMatches,
  globsIntersect,
  type PolicyTarget,
} from '#shared/template-policy/engine.ts';
import { applicationScope, RULES } from '#shared/template-policy/rules.ts';

const fixture = (path: string) =>
  readFileSync(new URL(`../fixtures/templates/${path}`, import.meta.url), 'utf8');

const target: PolicyTarget = {
  accountId: '111111111111',
  region: 'eu-west-1',
  stackName: 'hello-world-staging',
  rolePrefix: 'hello-world-staging',
  boundaryArn: 'arn:aws:iam::111111111111:policy/crossdeploy/crossdeploy-boundary-eu-west-1',
};

const check = (path: string, overrides: Partial<PolicyTarget> = {}) =>
  checkTemplateText(fixture(path), { ...target, ...overrides });

const rulesOf = (path: string, overrides: Partial<PolicyTarget> = {}) =>
  check(path, overrides).findings.map((f) => `${f.rule} ${f.resource}`);

describe('template policy: benign templates', () => {
  it('passes a typical serverless app (YAML, SAM shorthand, Globals boundary, policy templates)', () => {
    expect(check('benign/serverless-app.yaml')).toEqual({ findings: [], exceptionsUsed: [] });
  });

  it('passes a typical serverless app written as JSON', () => {
    expect(check('benign/serverless-app.json')).toEqual({ findings: [], exceptionsUsed: [] });
  });
});

describe('template policy: the hostile fixtures, each refused with its reason', () => {
  it('refuses the backdoor role: outside trust and AdministratorAccess, naming the role', () => {
    const { findings } = check('hostile/backdoor-role.yaml');
    expect(findings.map((f) => `${f.rule} ${f.resource}`).sort()).toEqual([
      'admin-managed-policy BackdoorRole',
      'trust-outside-application BackdoorRole',
    ]);
    expect(findings.find((f) => f.rule === 'trust-outside-application')?.message).toContain(
      'arn:aws:iam::999999999999:root',
    );
    expect(findings.find((f) => f.rule === 'admin-managed-policy')?.message).toContain(
      'arn:aws:iam::aws:policy/AdministratorAccess',
    );
  });

  it('refuses a trust principal built with Fn::Sub from a parameter', () => {
    const { findings } = check('hostile/sub-trust-principal.yaml');
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ rule: 'trust-outside-application', resource: 'PartnerRole' });
    expect(findings[0]?.message).toContain('arn:aws:iam::999999999999:root');
  });

  it('resolves Fn::Sub with the registry parameter override, not only the default', () => {
    expect(
      rulesOf('hostile/sub-trust-principal.yaml', { parameterOverrides: { Partner: '111111111111' } }),
    ).toEqual(['trust-outside-application PartnerRole']);
  });

  it('refuses an inline policy with iam:* on *', () => {
    const { findings } = check('hostile/inline-iam-star.yaml');
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ rule: 'admin-statement', resource: 'EscalatorRole' });
    expect(findings[0]?.message).toContain('RewriteAnyRole granting iam:* on every resource');
  });

  it('refuses an AWS::Serverless::Function with Policies: AdministratorAccess', () => {
    const { findings } = check('hostile/sam-admin-policy.yaml');
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ rule: 'admin-managed-policy', resource: 'AdminFunction' });
    expect(findings[0]?.message).toContain('AdministratorAccess');
  });

  it('refuses a role without the permissions boundary', () => {
    const { findings } = check('hostile/role-without-boundary.yaml');
    expect(findings).toEqual([
      {
        rule: 'role-without-boundary',
        resource: 'UnboundedRole',
        message: `role UnboundedRole has no PermissionsBoundary (it must be ${target.boundaryArn})`,
      },
    ]);
  });

  it('refuses a role whose boundary is another policy', () => {
    const template = {
      Resources: {
        R: {
          Type: 'AWS::IAM::Role',
          Properties: {
            PermissionsBoundary: 'arn:aws:iam::aws:policy/AdministratorAccess',
            AssumeRolePolicyDocument: { Statement: [] },
          },
        },
      },
    };
    expect(checkTemplate(template, target).findings.map((f) => f.rule)).toEqual(['role-without-boundary']);
  });

  it('refuses an outside principal in either branch of Fn::If', () => {
    expect(rulesOf('hostile/if-branch-trust.yaml')).toEqual(['trust-outside-application SwitchRole']);
  });

  it('refuses a statement hidden behind a YAML merge key, as SAM CLI (PyYAML) merges it', () => {
    expect(rulesOf('hostile/merge-key-statement.yaml')).toEqual(['admin-statement MergedRole']);
  });

  it('refuses a principal it cannot resolve (Fn::ImportValue)', () => {
    const { findings } = check('hostile/unresolvable-principal.yaml');
    expect(findings.map((f) => `${f.rule} ${f.resource}`)).toEqual([
      'trust-outside-application ImportedTrustRole',
    ]);
    expect(findings[0]?.message).toContain('Fn::ImportValue cannot be resolved');
  });

  it('refuses the role SAM generates for a function: outside AssumeRolePolicyDocument, no boundary', () => {
    expect(rulesOf('hostile/sam-function-trust.yaml').sort()).toEqual([
      'role-without-boundary SharedFunction',
      'trust-outside-application SharedFunction',
    ]);
  });

  it('refuses IAM users, groups and access keys', () => {
    expect(rulesOf('hostile/iam-user.yaml')).toEqual(['iam-user Operator', 'iam-user OperatorKey']);
    expect(
      checkTemplate({ Resources: { G: { Type: 'AWS::IAM::Group' } } }, target).findings.map((f) => f.rule),
    ).toEqual(['iam-user']);
  });

  it('checks a local nested template of the build output with the parameters the parent passes', () => {
    const parent = {
      Resources: {
        Inner: {
          Type: 'AWS::Serverless::Application',
          Properties: { Location: 'nested/template.yaml', Parameters: { Partner: '999999999999' } },
        },
      },
    };
    const loadNested = (location: string) =>
      location === 'nested/template.yaml'
        ? fixture('hostile/sub-trust-principal.yaml').replace(
            "Default: '999999999999'",
            "Default: '111111111111'",
          )
        : undefined;
    const report = checkTemplate(parent, { ...target, loadNested });
    expect(report.findings.map((f) => `${f.rule} ${f.resource}`)).toEqual([
      'trust-outside-application Inner/PartnerRole',
    ]);
    expect(report.findings[0]?.message).toContain('arn:aws:iam::999999999999:root');
    expect(checkTemplate(parent, target).findings.map((f) => f.rule)).toEqual(['unchecked-code']);
  });

  it('refuses a nested stack whose template it cannot see', () => {
    expect(rulesOf('hostile/nested-stack.yaml')).toEqual(['unchecked-code Hidden']);
  });

  it('refuses duplicate keys rather than guess which one SAM CLI keeps', () => {
    expect(rulesOf('hostile/duplicate-key.yaml')).toEqual(['unreadable-template (template)']);
  });

  it('refuses dynamic references and SSM-typed parameters as unresolvable, not as their text or Default', () => {
    const { findings } = check('hostile/dynamic-reference.yaml');
    expect(findings.map((f) => `${f.rule} ${f.resource}`).sort()).toEqual([
      'admin-managed-policy ResolvedManagedRole',
      'admin-managed-policy SsmParameterFunction',
      'admin-statement ResolvedActionRole',
    ]);
    expect(findings.find((f) => f.resource === 'ResolvedActionRole')?.message).toContain('{{resolve:');
    expect(findings.find((f) => f.resource === 'SsmParameterFunction')?.message).toContain(
      'AWS::SSM::Parameter::Value',
    );
    // A registry override of an SSM-typed parameter is a parameter-store name, not the value either.
    expect(
      rulesOf('hostile/dynamic-reference.yaml', { parameterOverrides: { PolicyFromSsm: 'ReadOnlyAccess' } }),
    ).toContain('admin-managed-policy SsmParameterFunction');
    // Built with Fn::Sub or a boundary: the same.
    const boundary = {
      Resources: {
        R: {
          Type: 'AWS::IAM::Role',
          Properties: {
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub, not a JS template
            PermissionsBoundary: { 'Fn::Sub': '{{resolve:ssm:${AWS::Region}}}' },
            AssumeRolePolicyDocument: { Statement: [] },
          },
        },
      },
    };
    expect(checkTemplate(boundary, target).findings.map((f) => f.rule)).toEqual(['role-without-boundary']);
    const trust = {
      Resources: {
        T: {
          Type: 'AWS::IAM::Role',
          Properties: {
            PermissionsBoundary: target.boundaryArn,
            AssumeRolePolicyDocument: {
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: 'arn:aws:iam::111111111111:role/hello-world-staging-{{resolve:ssm:r}}' },
                  Action: 'sts:AssumeRole',
                },
              ],
            },
          },
        },
      },
    };
    expect(checkTemplate(trust, target).findings.map((f) => f.rule)).toEqual(['trust-outside-application']);
  });

  it('refuses IAM role writes split over actions or on role/IAM patterns that reach other roles', () => {
    const { findings } = check('hostile/split-role-writes.yaml');
    expect(findings.map((f) => `${f.rule} ${f.resource}`).sort()).toEqual([
      'admin-statement AnyIamPolicy',
      'admin-statement AnyRolePolicy',
      'admin-statement SplitWritesRole',
    ]);
    expect(findings.find((f) => f.resource === 'SplitWritesRole')?.message).toContain('iam:CreateRole');
    expect(findings.find((f) => f.resource === 'AnyRolePolicy')?.message).toContain('arn:aws:iam::*:role/*');
  });

  it('refuses an unknown YAML tag rather than read its bare value', () => {
    const text =
      'Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      PermissionsBoundary: !Foo x\n';
    expect(checkTemplateText(text, target).findings.map((f) => f.rule)).toEqual(['unreadable-template']);
  });
});

describe('template policy: one test per rule on inline templates', () => {
  const role = (props: Record<string, unknown>) => ({
    Resources: {
      R: {
        Type: 'AWS::IAM::Role',
        Properties: {
          PermissionsBoundary: target.boundaryArn,
          AssumeRolePolicyDocument: {
            Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
          },
          ...props,
        },
      },
    },
  });
  const trusting = (principal: unknown) =>
    role({
      AssumeRolePolicyDocument: {
        Statement: [{ Effect: 'Allow', Principal: principal, Action: 'sts:AssumeRole' }],
      },
    });
  const statement = (s: Record<string, unknown>) =>
    role({ Policies: [{ PolicyName: 'p', PolicyDocument: { Statement: [{ Effect: 'Allow', ...s }] } }] });
  const rules = (template: unknown, overrides: Partial<PolicyTarget> = {}) =>
    checkTemplate(template, { ...target, ...overrides }).findings.map((f) => f.rule);

  it('every rule is documented once', () => {
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  });

  it('trust: allows a role of the same account named with the application prefix', () => {
    expect(rules(trusting({ AWS: 'arn:aws:iam::111111111111:role/hello-world-staging-worker' }))).toEqual([]);
  });

  it('trust: refuses a same-account role outside the prefix, the account root, a look-alike prefix and "*"', () => {
    for (const principal of [
      { AWS: 'arn:aws:iam::111111111111:role/other-team' },
      { AWS: 'arn:aws:iam::111111111111:root' },
      { AWS: '111111111111' },
      { AWS: 'arn:aws:iam::111111111111:role/hello-world-stagingX' },
      { AWS: 'arn:aws:iam::111111111111:role/hello-world-staging-*' },
      '*',
      { AWS: '*' },
      { Federated: 'cognito-identity.amazonaws.com' },
      { Service: 'evil.example.com' },
    ]) {
      expect(rules(trusting(principal)), JSON.stringify(principal)).toEqual(['trust-outside-application']);
    }
  });

  it('trust: refuses NotPrincipal in an Allow statement', () => {
    const template = role({
      AssumeRolePolicyDocument: {
        Statement: [{ Effect: 'Allow', NotPrincipal: { AWS: 'arn:aws:iam::111111111111:root' } }],
      },
    });
    expect(rules(template)).toEqual(['trust-outside-application']);
  });

  it('trust: Fn::Join and Ref to a parameter are resolved before judging', () => {
    const joined = trusting({
      AWS: { 'Fn::Join': ['', ['arn:aws:iam::', { Ref: 'AWS::AccountId' }, ':role/', { Ref: 'Name' }]] },
    });
    const withParam = (Default: string) => ({ ...joined, Parameters: { Name: { Type: 'String', Default } } });
    expect(rules(withParam('hello-world-staging-api'))).toEqual([]);
    expect(rules(withParam('admin'))).toEqual(['trust-outside-application']);
  });

  it('trust: Fn::FindInMap and Fn::Select are resolved before judging', () => {
    const mapped = {
      ...trusting({ AWS: { 'Fn::FindInMap': ['Principals', { Ref: 'AWS::Region' }, 'Trusted'] } }),
      Mappings: { Principals: { 'eu-west-1': { Trusted: 'arn:aws:iam::999999999999:root' } } },
    };
    expect(rules(mapped)).toEqual(['trust-outside-application']);
    const selected = trusting({
      AWS: {
        'Fn::Select': [
          1,
          ['arn:aws:iam::111111111111:role/hello-world-staging-a', 'arn:aws:iam::999999999999:root'],
        ],
      },
    });
    expect(rules(selected)).toEqual(['trust-outside-application']);
    const first = trusting({
      AWS: {
        'Fn::Select': [
          0,
          ['arn:aws:iam::111111111111:role/hello-world-staging-a', 'arn:aws:iam::999999999999:root'],
        ],
      },
    });
    expect(rules(first)).toEqual([]);
  });

  it('admin managed policy: refuses each of the three by ARN, also through Fn::Sub', () => {
    for (const name of ['AdministratorAccess', 'IAMFullAccess', 'PowerUserAccess']) {
      expect(rules(role({ ManagedPolicyArns: [`arn:aws:iam::aws:policy/${name}`] }))).toEqual([
        'admin-managed-policy',
      ]);
      expect(
        rules(role({ ManagedPolicyArns: [{ 'Fn::Sub': `arn:\${AWS::Partition}:iam::aws:policy/${name}` }] })),
      ).toEqual(['admin-managed-policy']);
    }
    expect(rules(role({ ManagedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] }))).toEqual([]);
  });

  it('admin statement: refuses *, *:*, iam:*, iam:*Role* and NotAction on * or arn:*; allows scoped ones', () => {
    for (const s of [
      { Action: '*', Resource: '*' },
      { Action: ['s3:GetObject', '*:*'], Resource: '*' },
      { Action: 'IAM:*', Resource: 'arn:*' },
      { Action: 'iam:*Role*', Resource: ['*'] },
      { NotAction: 's3:*', Resource: '*' },
      { Action: '*', NotResource: 'arn:aws:s3:::x' },
    ]) {
      expect(rules(statement(s)), JSON.stringify(s)).toEqual(['admin-statement']);
    }
    for (const s of [
      { Action: 's3:*', Resource: '*' },
      { Action: '*', Resource: 'arn:aws:s3:::my-bucket/*' },
      { Effect: 'Deny', Action: '*', Resource: '*' },
    ]) {
      expect(rules(statement(s)), JSON.stringify(s)).toEqual([]);
    }
  });

  it('admin statement: refuses any one IAM role write on roles or policies outside the prefix, allows prefixed', () => {
    for (const s of [
      { Action: 'iam:PassRole', Resource: '*' },
      { Action: 'iam:PutRolePolicy', Resource: 'arn:aws:iam::111111111111:role/any-other-role' },
      { Action: 'iam:DeleteRolePermissionsBoundary', Resource: 'arn:aws:iam::111111111111:role/hello-*' },
      { Action: 'iam:CreatePolicyVersion', Resource: 'arn:aws:iam::111111111111:policy/*' },
      { Action: 'iam:SetDefaultPolicyVersion', Resource: 'arn:aws:iam::111111111111:policy/other' },
      { Action: 'iam:Put*', Resource: 'arn:aws:iam::111111111111:role/crossdeploy/*' },
      { Action: 'iam:UpdateAssumeRolePolicy', Resource: { 'Fn::ImportValue': 'x' } },
      {
        Action: 'iam:PassRole',
        Resource: 'arn:aws:iam::111111111111:role/hello-world-staging-{{resolve:ssm:r}}',
      },
      { Action: 'iam:PassRole', NotResource: 'arn:aws:iam::111111111111:role/hello-world-staging-x' },
    ]) {
      expect(rules(statement(s)), JSON.stringify(s)).toEqual(['admin-statement']);
    }
    for (const s of [
      {
        Action: ['iam:PassRole', 'iam:PutRolePolicy'],
        Resource: 'arn:aws:iam::111111111111:role/hello-world-staging-*',
      },
      {
        Action: 'iam:*',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub, not a JS template
        Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-fn' },
      },
      {
        Action: 'iam:CreatePolicyVersion',
        Resource: 'arn:aws:iam::111111111111:policy/hello-world-staging-p',
      },
      { Action: ['iam:GetRole', 'iam:ListRoles'], Resource: '*' },
      { Action: 'iam:PassRole', Resource: { 'Fn::GetAtt': ['R', 'Arn'] } },
    ]) {
      expect(rules(statement(s)), JSON.stringify(s)).toEqual([]);
    }
  });

  it('admin statement: applies to AWS::IAM::Policy and AWS::IAM::ManagedPolicy too', () => {
    for (const Type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::RolePolicy']) {
      const template = {
        Resources: {
          P: {
            Type,
            Properties: { PolicyDocument: { Statement: { Effect: 'Allow', Action: '*', Resource: '*' } } },
          },
        },
      };
      expect(checkTemplate(template, target).findings).toEqual([
        expect.objectContaining({ rule: 'admin-statement', resource: 'P' }),
      ]);
    }
  });

  it('boundary: a SAM function takes it from Globals, and its own value wins', () => {
    const sam = (globals: unknown, own: unknown) => ({
      Globals: { Function: { PermissionsBoundary: globals } },
      Resources: {
        F: {
          Type: 'AWS::Serverless::Function',
          Properties: own === undefined ? {} : { PermissionsBoundary: own },
        },
      },
    });
    expect(rules(sam(target.boundaryArn, undefined))).toEqual([]);
    expect(rules(sam(target.boundaryArn, 'arn:aws:iam::111111111111:policy/other'))).toEqual([
      'role-without-boundary',
    ]);
    expect(rules({ Resources: { F: { Type: 'AWS::Serverless::Function', Properties: {} } } })).toEqual([
      'role-without-boundary',
    ]);
    expect(rules({ Resources: { S: { Type: 'AWS::Serverless::StateMachine', Properties: {} } } })).toEqual([
      'role-without-boundary',
    ]);
  });

  it('boundary: a ScheduleV2 event role SAM generates needs its own', () => {
    const template = {
      Resources: {
        F: {
          Type: 'AWS::Serverless::Function',
          Properties: {
            PermissionsBoundary: target.boundaryArn,
            Events: { Tick: { Type: 'ScheduleV2', Properties: {} } },
          },
        },
      },
    };
    expect(rules(template)).toEqual(['role-without-boundary']);
  });

  it('unchecked code: refuses other transforms and Fn::Transform', () => {
    expect(rules({ Transform: ['AWS::Serverless-2016-10-31', 'MyMacro'], Resources: {} })).toEqual([
      'unchecked-code',
    ]);
    expect(
      rules({
        Resources: { B: { 'Fn::Transform': { Name: 'AWS::Include', Parameters: { Location: 's3://b/k' } } } },
      }),
    ).toContain('unchecked-code');
  });

  it('unreadable: refuses a document without Resources', () => {
    expect(checkTemplateText('[]', target).findings.map((f) => f.rule)).toEqual(['unreadable-template']);
  });
});

describe('template policy: registry exceptions', () => {
  it('lets a named trust principal and managed policy through, and reports each use', () => {
    const report = check('hostile/backdoor-role.yaml', {
      allowedTrustPrincipals: ['arn:aws:iam::999999999999:root'],
      allowedManagedPolicies: ['AdministratorAccess'],
    });
    expect(report.findings).toEqual([]);
    expect(report.exceptionsUsed).toEqual([
      {
        kind: 'allowedManagedPolicies',
        value: 'arn:aws:iam::aws:policy/AdministratorAccess',
        resource: 'BackdoorRole',
      },
      { kind: 'allowedTrustPrincipals', value: 'arn:aws:iam::999999999999:root', resource: 'BackdoorRole' },
    ]);
  });

  it('an exception for one principal does not let another through', () => {
    const report = check('hostile/backdoor-role.yaml', {
      allowedTrustPrincipals: ['arn:aws:iam::888888888888:root'],
      allowedManagedPolicies: ['PowerUserAccess'],
    });
    expect(report.findings.map((f) => f.rule).sort()).toEqual([
      'admin-managed-policy',
      'trust-outside-application',
    ]);
    expect(report.exceptionsUsed).toEqual([]);
  });

  it('a managed-policy exception never excuses a * on * statement', () => {
    const report = check('hostile/inline-iam-star.yaml', { allowedManagedPolicies: ['AdministratorAccess'] });
    expect(report.findings.map((f) => f.rule)).toEqual(['admin-statement']);
  });
});

describe('template policy: helpers', () => {
  it('globMatches follows IAM wildcards', () => {
    expect(globMatches('iam:*', 'iam:PassRole', true)).toBe(true);
    expect(globMatches('iam:Pass?ole', 'IAM:passrole', true)).toBe(true);
    expect(globMatches('iam:Get*', 'iam:PassRole', true)).toBe(false);
    expect(globMatches('arn:*', 'arn:aws:s3:::b', false)).toBe(true);
  });

  it('globsIntersect finds a text both patterns match, or none', () => {
    expect(globsIntersect('*', 'arn:aws:iam::1:role/*')).toBe(true);
    expect(globsIntersect('arn:aws:iam::*:*', 'arn:aws:iam::1:policy/*')).toBe(true);
    expect(globsIntersect('arn:aws:iam::1:role/o?her', 'arn:aws:iam::1:role/*')).toBe(true);
    expect(globsIntersect('arn:aws:s3:::*', 'arn:aws:iam::1:role/*')).toBe(false);
    expect(globsIntersect('arn:aws:iam::1:user/*', 'arn:aws:iam::1:role/*')).toBe(false);
  });
});

// SAM policy templates are accepted without expanding them: hold that none grants an admin statement, against
// aws-sam-translator's own list when python3 has it (CI and these machines do).
const translator = spawnSync(
  'python3',
  ['-c', 'import samtranslator, os; print(os.path.dirname(samtranslator.__file__))'],
  { encoding: 'utf8' },
);
const templatesFile = `${translator.stdout.trim()}/policy_templates_data/policy_templates.json`;
describe.runIf(translator.status === 0 && existsSync(templatesFile))('SAM policy templates', () => {
  it('none of aws-sam-translator policy templates grants * on * or an IAM write on *', () => {
    const { Templates } = JSON.parse(readFileSync(templatesFile, 'utf8')) as {
      Templates: Record<string, { Definition: unknown }>;
    };
    expect(Object.keys(Templates).length).toBeGreaterThan(50);
    const offenders = Object.entries(Templates).filter(([name, { Definition }]) => {
      const template = {
        Parameters: {},
        Resources: { R: { Type: 'AWS::IAM::ManagedPolicy', Properties: { PolicyDocument: Definition } } },
      };
      void name;
      return checkTemplate(template, target).findings.some((f) => f.rule === 'admin-statement');
    });
    expect(offenders.map(([name]) => name)).toEqual([]);
  });
});

void readdirSync;

describe('template policy: the application scope of an environment', () => {
  it("reads the prefix and boundary from a target-account bootstrap's deploy role", () => {
    expect(
      applicationScope(
        'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-deploy-eu-west-1',
        '222222222222',
        'eu-west-1',
        'hello-prod',
      ),
    ).toEqual({
      rolePrefix: 'hello',
      boundaryArn: 'arn:aws:iam::222222222222:policy/crossdeploy/crossdeploy-hello-boundary-eu-west-1',
    });
    expect(
      applicationScope(
        'arn:aws-cn:iam::222222222222:role/crossdeploy/crossdeploy-app2-deploy-cn-north-1',
        '222222222222',
        'cn-north-1',
        'app2-x',
      ).boundaryArn,
    ).toBe('arn:aws-cn:iam::222222222222:policy/crossdeploy/crossdeploy-app2-boundary-cn-north-1');
  });

  it('falls back to the stack name and the single-bootstrap boundary for a deploy role set up by hand', () => {
    for (const arn of [
      'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-deploy',
      'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-hello-deploy-us-east-1',
      'arn:aws:iam::222222222222:role/crossdeploy/crossdeploy-Bad_Prefix-deploy-eu-west-1',
    ]) {
      expect(applicationScope(arn, '222222222222', 'eu-west-1', 'hello-prod'), arn).toEqual({
        rolePrefix: 'hello-prod',
        boundaryArn: 'arn:aws:iam::222222222222:policy/crossdeploy/crossdeploy-boundary-eu-west-1',
      });
    }
  });
});

describe('template policy: resource policies that let another account in', () => {
  const resourcePolicy = (type: string, properties: Record<string, unknown>) => ({
    Resources: { Subject: { Type: type, Properties: properties } },
  });
  const bucketStatement = (s: Record<string, unknown>) =>
    resourcePolicy('AWS::S3::BucketPolicy', {
      Bucket: 'b',
      PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*', ...s }] },
    });
  const rules = (template: unknown, overrides: Partial<PolicyTarget> = {}) =>
    checkTemplate(template, { ...target, ...overrides }).findings.map((f) => `${f.rule} ${f.resource}`);

  it('passes the resource policies a serverless app writes (own account, services, pinned callers, Deny)', () => {
    expect(check('benign/resource-policies.yaml')).toEqual({ findings: [], exceptionsUsed: [] });
  });

  it('refuses each resource of the hostile fixture, naming the principal', () => {
    const { findings } = check('hostile/resource-policies.yaml');
    expect(findings.map((f) => `${f.rule} ${f.resource}`).sort()).toEqual(
      [
        'resource-policy-outside-account BusPolicy',
        'resource-policy-outside-account DataBucketPolicy',
        'resource-policy-outside-account JobsPolicy',
        'resource-policy-outside-account Key',
        'resource-policy-outside-account SecretPolicy',
        'resource-policy-outside-account TopicPolicy',
        'resource-policy-outside-account WorkerInvokedByPartner',
      ].sort(),
    );
    const message = (resource: string) => findings.find((f) => f.resource === resource)?.message ?? '';
    expect(message('DataBucketPolicy')).toContain('arn:aws:iam::999999999999:root');
    expect(message('DataBucketPolicy')).toContain('PartnerReads');
    expect(message('JobsPolicy')).toContain('"*"');
    expect(message('Key')).toContain('kms:CallerAccount');
    expect(message('WorkerInvokedByPartner')).toContain('999999999999');
    expect(message('TopicPolicy')).toContain('NotPrincipal');
    expect(message('SecretPolicy')).toContain('Federated');
    expect(message('BusPolicy')).toContain('999999999999');
  });

  it.each([
    ['another account by id', { Principal: { AWS: '999999999999' } }],
    ['another account by root ARN', { Principal: { AWS: 'arn:aws:iam::999999999999:root' } }],
    ['a role of another account', { Principal: { AWS: 'arn:aws:iam::999999999999:role/x' } }],
    ['everyone', { Principal: '*' }],
    [
      'everyone, with a condition that pins nothing',
      { Principal: '*', Condition: { Bool: { 'aws:SecureTransport': 'true' } } },
    ],
    [
      'everyone in an organisation',
      { Principal: '*', Condition: { StringEquals: { 'aws:PrincipalOrgID': 'o-abc' } } },
    ],
    [
      'everyone, pinned to another account',
      { Principal: '*', Condition: { StringEquals: { 'aws:PrincipalAccount': '999999999999' } } },
    ],
    [
      'everyone, pinned by a pattern',
      { Principal: '*', Condition: { StringLike: { 'aws:PrincipalAccount': '1111*' } } },
    ],
    [
      'everyone, pinned to this account or another',
      {
        Principal: '*',
        Condition: { StringEquals: { 'aws:PrincipalAccount': ['111111111111', '999999999999'] } },
      },
    ],
    ['an account from a parameter without a value', { Principal: { AWS: { Ref: 'Nope' } } }],
    ['a canonical user', { Principal: { CanonicalUser: 'abc' } }],
    ['a web identity', { Principal: { Federated: 'accounts.google.com' } }],
  ])('refuses a bucket policy that allows %s', (_, statement) => {
    expect(rules(bucketStatement(statement))).toEqual(['resource-policy-outside-account Subject']);
  });

  it.each([
    ['this account by id', { Principal: { AWS: '111111111111' } }],
    ['a role of this account', { Principal: { AWS: 'arn:aws:iam::111111111111:role/anything' } }],
    ['an AWS service', { Principal: { Service: 'logs.eu-west-1.amazonaws.com' } }],
    [
      'everyone, pinned to this account',
      { Principal: '*', Condition: { StringEquals: { 'aws:PrincipalAccount': '111111111111' } } },
    ],
    [
      'everyone, pinned by source account',
      { Principal: { AWS: '*' }, Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } } },
    ],
    ['everyone, as a Deny', { Effect: 'Deny', Principal: '*' }],
  ])('passes a bucket policy that allows %s', (_, statement) => {
    expect(rules(bucketStatement(statement))).toEqual([]);
  });

  it('refuses a Lambda permission for everyone unless pinned to this account or a public function URL', () => {
    const permission = (p: Record<string, unknown>) =>
      resourcePolicy('AWS::Lambda::Permission', { FunctionName: 'f', Action: 'lambda:InvokeFunction', ...p });
    expect(rules(permission({ Principal: '*' }))).toEqual(['resource-policy-outside-account Subject']);
    expect(rules(permission({ Principal: 'arn:aws:iam::999999999999:role/x' }))).toEqual([
      'resource-policy-outside-account Subject',
    ]);
    expect(rules(permission({ Principal: '*', SourceAccount: '999999999999' }))).toEqual([
      'resource-policy-outside-account Subject',
    ]);
    expect(rules(permission({ Principal: '*', SourceAccount: '111111111111' }))).toEqual([]);
    expect(rules(permission({ Principal: 's3.amazonaws.com', SourceAccount: '111111111111' }))).toEqual([]);
    // A function URL with no auth is a public HTTP endpoint, like an API: a legitimate application choice.
    expect(
      rules(permission({ Principal: '*', Action: 'lambda:InvokeFunctionUrl', FunctionUrlAuthType: 'NONE' })),
    ).toEqual([]);
    // ... but only for the URL: the same permission for InvokeFunction is everyone's.
    expect(rules(permission({ Principal: '*', FunctionUrlAuthType: 'NONE' }))).toEqual([
      'resource-policy-outside-account Subject',
    ]);
  });

  it('reads the policy documents of the other resource types it knows', () => {
    const open = { Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }] };
    for (const [type, properties] of [
      ['AWS::SNS::TopicPolicy', { Topics: ['t'], PolicyDocument: open }],
      ['AWS::ECR::Repository', { RepositoryPolicyText: open }],
      ['AWS::DynamoDB::Table', { ResourcePolicy: { PolicyDocument: open } }],
      ['AWS::ApiGateway::RestApi', { Policy: open }],
      ['AWS::Logs::ResourcePolicy', { PolicyName: 'p', PolicyDocument: JSON.stringify(open) }],
      ['AWS::Events::EventBusPolicy', { StatementId: 's', Statement: open.Statement[0] }],
      [
        'AWS::Lambda::LayerVersionPermission',
        { LayerVersionArn: 'l', Action: 'lambda:GetLayerVersion', Principal: '*' },
      ],
    ] as const) {
      expect(rules(resourcePolicy(type, properties)), type).toEqual([
        'resource-policy-outside-account Subject',
      ]);
    }
  });

  it('lets a principal named in allowedTrustPrincipals through, and reports the use', () => {
    const report = checkTemplate(bucketStatement({ Principal: { AWS: 'arn:aws:iam::999999999999:root' } }), {
      ...target,
      allowedTrustPrincipals: ['arn:aws:iam::999999999999:root'],
    });
    expect(report.findings).toEqual([]);
    expect(report.exceptionsUsed).toEqual([
      { kind: 'allowedTrustPrincipals', value: 'arn:aws:iam::999999999999:root', resource: 'Subject' },
    ]);
  });
});
