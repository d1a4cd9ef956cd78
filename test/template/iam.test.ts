import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistryFile } from '#shared/registry/file.ts';
import { type CfnTemplate, getAtt, isRecord, loadTemplate, refName } from '../../scripts/cfn-yaml.ts';
import { REGISTRY_FILE, registryGrants } from '../../scripts/registry-derive.ts';

const root = resolve(import.meta.dirname, '../..');
const template = loadTemplate(join(root, 'template.yaml'));
const registry = loadRegistryFile(join(root, REGISTRY_FILE));

interface Statement {
  /** The role whose permissions this is (SAM names a function's generated role <Function>Role). */
  role: string;
  source: string;
  Effect: string;
  Action: string[];
  Resource: unknown[];
  raw: Record<string, unknown>;
}

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

function statementsOf(document: unknown, role: string, source: string): Statement[] {
  if (!isRecord(document)) return [];
  return asList(document.Statement)
    .flatMap(branches)
    .filter(isRecord)
    .map((raw) => ({
      role,
      source,
      Effect: String(raw.Effect),
      Action: asList(raw.Action).map(String),
      Resource: asList(raw.Resource),
      raw,
    }));
}

/** What the SAM policy templates in use grant (samtranslator's policy_templates.json). */
const POLICY_TEMPLATES: Record<string, string[]> = {
  LambdaInvokePolicy: ['lambda:InvokeFunction'],
  StepFunctionsExecutionPolicy: ['states:StartExecution'],
  StepFunctionsCallbackPolicy: [
    'states:SendTaskFailure',
    'states:SendTaskHeartbeat',
    'states:SendTaskSuccess',
  ],
};

function managedPolicyStatements(t: CfnTemplate, arns: unknown, role: string): Statement[] {
  return asList(arns)
    .flatMap(branches)
    .flatMap((arn) => (Array.isArray(arn) ? arn : [arn]))
    .flatMap((arn) => {
      const id = refName(arn);
      const policy = id ? t.Resources[id] : undefined;
      if (policy?.Type !== 'AWS::IAM::ManagedPolicy') {
        throw new Error(
          `${role}: managed policy ${JSON.stringify(arn)} is not one of this template's policies`,
        );
      }
      return statementsOf(policy.Properties?.PolicyDocument, role, id ?? '');
    });
}

/** Every permission statement the stack grants, attributed to the role that holds it. */
function allStatements(t: CfnTemplate): Statement[] {
  const out: Statement[] = [];
  for (const [id, resource] of Object.entries(t.Resources)) {
    const properties = resource.Properties ?? {};
    switch (resource.Type) {
      case 'AWS::IAM::Role':
        for (const policy of asList(properties.Policies).flatMap(branches).filter(isRecord)) {
          out.push(...statementsOf(policy.PolicyDocument, id, `${id}.${policy.PolicyName}`));
        }
        out.push(...managedPolicyStatements(t, properties.ManagedPolicyArns, id));
        break;
      case 'AWS::IAM::Policy':
        for (const role of asList(properties.Roles)) {
          out.push(...statementsOf(properties.PolicyDocument, refName(role) ?? '?', id));
        }
        break;
      case 'AWS::Serverless::Function':
      case 'AWS::Serverless::StateMachine': {
        const role = getAtt(properties.Role)?.[0] ?? `${id}Role`;
        for (const policy of asList(properties.Policies).flatMap(branches)) {
          if (typeof policy === 'string') throw new Error(`${id}: AWS managed policy ${policy} is too broad`);
          if (refName(policy)) {
            out.push(...managedPolicyStatements(t, policy, role));
            continue;
          }
          if (!isRecord(policy)) continue;
          if ('Statement' in policy) {
            out.push(...statementsOf(policy, role, `${id}.Policies`));
            continue;
          }
          for (const [name, parameters] of Object.entries(policy)) {
            const actions = POLICY_TEMPLATES[name];
            if (!actions) throw new Error(`${id}: policy template ${name} is not reviewed by this test`);
            out.push({
              role,
              source: `${id}.${name}`,
              Effect: 'Allow',
              Action: actions,
              Resource: [parameters],
              raw: { [name]: parameters },
            });
          }
        }
        break;
      }
    }
  }
  return out;
}

const statements = allStatements(template);
const allows = statements.filter((s) => s.Effect === 'Allow');

/** Whether an IAM action pattern (wildcards allowed, case-insensitive) covers the given action. */
const covers = (pattern: string, action: string): boolean =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(action);
const grants = (statement: Statement, action: string) => statement.Action.some((p) => covers(p, action));

/** Actions with no resource-level permissions in IAM, so `*` is the only possible Resource. */
const RESOURCELESS_ACTIONS = new Set([
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'logs:CreateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:DescribeLogGroups',
  'logs:DescribeResourcePolicies',
  'logs:GetLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:UpdateLogDelivery',
]);

describe('IAM', () => {
  it('finds the statements of every role (sanity check of this test)', () => {
    const roles = new Set(allows.map((s) => s.role));
    for (const role of [
      'DeployerRole',
      'DeployJobRole',
      'BuildRole',
      'ApiFunctionRole',
      'DeployStateMachineRole',
      'SchedulerRole',
    ]) {
      expect(roles).toContain(role);
    }
  });

  it('never allows Action "*" or "<service>:*" on Resource "*"', () => {
    const offenders = allows.filter(
      (s) =>
        s.Resource.includes('*') && s.Action.some((action) => action === '*' || /^[\w-]+:\*$/.test(action)),
    );
    expect(offenders.map((s) => s.source)).toEqual([]);
  });

  it('uses Resource "*" only for actions that have no resource-level permissions', () => {
    const wide = allows.filter((s) => s.Resource.includes('*'));
    for (const statement of wide) {
      expect(
        statement.Action.filter((action) => !RESOURCELESS_ACTIONS.has(action)),
        statement.source,
      ).toEqual([]);
    }
  });

  it('never uses NotAction or NotResource in an Allow', () => {
    for (const statement of allows) {
      expect(statement.raw, statement.source).not.toHaveProperty('NotAction');
      expect(statement.raw, statement.source).not.toHaveProperty('NotResource');
    }
  });

  describe('role assumption', () => {
    const assumers = allows.filter((s) => grants(s, 'sts:AssumeRole'));

    it('the build job role can assume no role at all', () => {
      expect(getAtt(template.Resources.BuildProject?.Properties?.ServiceRole)).toEqual(['BuildRole', 'Arn']);
      const build = statements.filter((s) => s.role === 'BuildRole');
      expect(build.length).toBeGreaterThan(0);
      expect(
        build.filter((s) =>
          s.Action.some((action) => covers(action, 'sts:AssumeRole') || /^sts:/i.test(action)),
        ),
      ).toEqual([]);
      expect(template.Resources.BuildRole?.Properties).not.toHaveProperty('ManagedPolicyArns');
      expect(template.Resources.BuildRole?.Properties).not.toHaveProperty('PermissionsBoundary');
    });

    it('only the deploy job role and the deployer role may assume roles, through one shared policy', () => {
      expect(assumers.map((s) => s.role).sort()).toEqual(['DeployJobRole', 'DeployerRole']);
      expect(new Set(assumers.map((s) => s.source))).toEqual(new Set(['AssumeTargetDeployRolesPolicy']));
    });

    it("they may assume exactly the registry's deploy roles, with SourceIdentity and no session tags", () => {
      const wanted = registryGrants(registry).deployRoleArns;
      expect(wanted.length).toBeGreaterThan(0);
      for (const statement of assumers) {
        expect(statement.Action.sort()).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity']);
        expect([...statement.Resource].map(String).sort()).toEqual(wanted);
      }
      expect(allows.filter((s) => grants(s, 'sts:TagSession'))).toEqual([]);
    });

    it('both roles have fixed names and path, so target trust policies survive a replacement', () => {
      for (const [id, name] of [
        ['DeployerRole', 'deployer'],
        ['DeployJobRole', 'deploy-job'],
      ] as const) {
        const role = template.Resources[id]?.Properties ?? {};
        expect(role.RoleName).toEqual({ 'Fn::Sub': `\${AWS::StackName}-${name}` });
        expect(role.Path).toBe('/crossdeploy/');
      }
    });

    it('the deployer is trusted by Lambda only, for the account and its own functions; the deploy job by CodeBuild only', () => {
      const trust = (id: string) =>
        asList(
          (
            template.Resources[id]?.Properties?.AssumeRolePolicyDocument as
              | { Statement?: unknown }
              | undefined
          )?.Statement,
        );
      const [deployer, ...moreDeployer] = trust('DeployerRole') as Record<string, unknown>[];
      expect(moreDeployer).toEqual([]);
      expect(deployer?.Principal).toEqual({ Service: 'lambda.amazonaws.com' });
      expect(deployer?.Condition).toMatchObject({
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      });
      // Every function that runs as the deployer has the fixed name the trust policy names, and no other does.
      const condition = (deployer?.Condition ?? {}) as Record<string, Record<string, unknown[]>>;
      const sourceArns = condition.ArnEquals?.['aws:SourceArn'] ?? [];
      const trusted = sourceArns.map(
        (arn) => String((arn as Record<string, unknown>)['Fn::Sub']).split(':function:')[1],
      );
      const asDeployer = Object.values(template.Resources)
        .filter(
          (r) => r.Type === 'AWS::Serverless::Function' && getAtt(r.Properties?.Role)?.[0] === 'DeployerRole',
        )
        .map((r) => String((r.Properties?.FunctionName as Record<string, unknown>)?.['Fn::Sub']));
      expect(asDeployer.length).toBe(5);
      expect(trusted.sort()).toEqual(asDeployer.sort());
      const [job, ...moreJob] = trust('DeployJobRole') as Record<string, unknown>[];
      expect(moreJob).toEqual([]);
      expect(job?.Principal).toEqual({ Service: 'codebuild.amazonaws.com' });
      expect(JSON.stringify(job?.Condition)).toContain(`project/\${AWS::StackName}-deploy"`);
    });

    it('the deploy job runs as its own role, which holds nothing but its logs, build outputs, the published buildspecs and the deploy roles', () => {
      expect(getAtt(template.Resources.DeployProject?.Properties?.ServiceRole)).toEqual([
        'DeployJobRole',
        'Arn',
      ]);
      const job = statements.filter((s) => s.role === 'DeployJobRole');
      expect(job.flatMap((s) => s.Action).sort()).toEqual(
        [
          'logs:CreateLogStream',
          'logs:PutLogEvents',
          's3:GetObject',
          's3:GetObject',
          's3:GetObjectVersion',
          'sts:AssumeRole',
          'sts:SetSourceIdentity',
        ].sort(),
      );
    });
  });

  it("the build role may use exactly the registry's CodeConnections", () => {
    const connectionStatements = allows.filter((s) =>
      s.Action.some((a) => /^(codeconnections|codestar-connections):/.test(a)),
    );
    expect(new Set(connectionStatements.map((s) => s.role))).toEqual(
      new Set(registryGrants(registry).connectionArns.length > 0 ? ['BuildRole'] : []),
    );
    const granted = connectionStatements.flatMap((s) => s.Resource.map(String)).sort();
    expect(granted).toEqual(registryGrants(registry).connectionArns);
  });

  it('only the API, Slack and the scheduler start executions; only JobEvents, the deployer, the lock steps (hand-over), the API and Slack (approval decisions) complete task tokens', () => {
    expect(
      [...new Set(allows.filter((s) => grants(s, 'states:StartExecution')).map((s) => s.role))].sort(),
    ).toEqual(['ApiFunctionRole', 'SchedulerRole', 'SlackFunctionRole']);
    expect(
      [...new Set(allows.filter((s) => grants(s, 'states:SendTaskSuccess')).map((s) => s.role))].sort(),
    ).toEqual([
      'AcquireLockFunctionRole',
      'ApiFunctionRole',
      'DeployerRole',
      'JobEventsFunctionRole',
      'ReleaseLockFunctionRole',
      'SlackFunctionRole',
    ]);
    // The lock steps only complete a waiter's token: they may not fail one or send heartbeats. The API and
    // Slack fail an approval wait when an approver rejects; they send no heartbeats.
    expect(
      [...new Set(allows.filter((s) => grants(s, 'states:SendTaskFailure')).map((s) => s.role))].sort(),
    ).toEqual(['ApiFunctionRole', 'DeployerRole', 'JobEventsFunctionRole', 'SlackFunctionRole']);
    expect(
      [...new Set(allows.filter((s) => grants(s, 'states:SendTaskHeartbeat')).map((s) => s.role))].sort(),
    ).toEqual(['DeployerRole', 'JobEventsFunctionRole']);
  });

  it('only StartJob starts builds; nothing may change the projects', () => {
    expect([...new Set(allows.filter((s) => grants(s, 'codebuild:StartBuild')).map((s) => s.role))]).toEqual([
      'StartJobFunctionRole',
    ]);
    expect(allows.filter((s) => grants(s, 'codebuild:UpdateProject') || grants(s, 'iam:PassRole'))).toEqual(
      [],
    );
  });

  it('nobody may scan the table or delete build outputs', () => {
    expect(allows.filter((s) => grants(s, 'dynamodb:Scan')).map((s) => s.source)).toEqual([]);
    expect(
      allows
        .filter((s) => grants(s, 's3:DeleteObject') || grants(s, 's3:DeleteObjectVersion'))
        .map((s) => s.source),
    ).toEqual([]);
  });

  it('the state machine may invoke exactly its seven task functions', () => {
    const invokes = allows.filter(
      (s) => s.role === 'DeployStateMachineRole' && grants(s, 'lambda:InvokeFunction'),
    );
    const targets = invokes
      .flatMap((s) => s.Resource)
      .map((r) => refName(isRecord(r) ? r.FunctionName : undefined));
    expect(targets.sort()).toEqual(
      [
        'AcquireLockFunction',
        'ApprovalFunction',
        'AssumeTargetRoleFunction',
        'RecordResultFunction',
        'ReleaseLockFunction',
        'StartJobFunction',
        'ValidateRequestFunction',
      ].sort(),
    );
  });
});
