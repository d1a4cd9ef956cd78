import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { summariseChangeSet } from '#shared/deployments/approval.ts';
import { parseTemplateText } from '#shared/template-policy/cfn-yaml.ts';
import {
  compactInventory,
  comparedIds,
  type InventoryTarget,
  inventoryTemplate,
  inventoryWidening,
} from '#shared/template-policy/inventory.ts';

const fixture = (path: string) =>
  parseTemplateText(readFileSync(new URL(`../fixtures/templates/${path}`, import.meta.url), 'utf8'));

const target: InventoryTarget = {
  accountId: '111111111111',
  region: 'eu-west-1',
  stackName: 'hello-world-prod',
};
const entry = (path: string, id: string) => {
  const found = inventoryTemplate(fixture(path), target).entries.find((e) => e.id === id);
  if (!found) throw new Error(`no entry ${id}`);
  return found;
};

describe('IAM inventory: the hostile template, each access shown', () => {
  it('shows a role that grants every action on every resource, flagged', () => {
    const role = entry('hostile/iam-inventory.yaml', 'AdminRole');
    expect(role).toMatchObject({
      kind: 'role',
      principals: ['service lambda.amazonaws.com'],
      actions: ['*'],
    });
    expect(role.wildcards).toEqual(expect.arrayContaining(['action *', 'Resource *']));
  });

  it('shows a role another account may assume, by kind', () => {
    expect(entry('hostile/iam-inventory.yaml', 'PartnerRole').principals).toEqual([
      'account arn:aws:iam::999999999999:root',
    ]);
  });

  it('shows a role anyone may assume under a condition, with the condition noted, and flags it', () => {
    const role = entry('hostile/iam-inventory.yaml', 'OpenRole');
    expect(role.principals).toEqual(['* (if StringEquals sts:ExternalId)']);
    expect(role.wildcards).toContain('principal *');
  });

  it('shows AdministratorAccess attached by ARN (built with Fn::Sub), flagged', () => {
    const role = entry('hostile/iam-inventory.yaml', 'OpenRole');
    expect(role.managedPolicies).toEqual(['arn:aws:iam::aws:policy/AdministratorAccess']);
    expect(role.wildcards).toContain('AdministratorAccess');
  });

  it('shows NotAction as what it is, flags it, names the role it is attached to, and leaves out Deny', () => {
    const policy = entry('hostile/iam-inventory.yaml', 'EverythingButIam');
    expect(policy).toMatchObject({
      kind: 'policy',
      actions: ['NotAction iam:*'],
      attachedTo: ['PartnerRole'],
    });
    expect(policy.wildcards).toEqual(expect.arrayContaining(['NotAction', 'Resource *']));
    expect(policy.actions).not.toContain('s3:DeleteBucket');
  });

  it('finds a grant hidden in Fn::If, Fn::Sub and Fn::Join, and flags it', () => {
    const role = entry('hostile/iam-inventory.yaml', 'HiddenRole');
    expect(role.actions).toEqual(['iam:*', 's3:GetObject']);
    expect(role.wildcards).toEqual(expect.arrayContaining(['action iam:*', 'Resource *']));
  });

  it('shows a federated trust with its condition', () => {
    expect(entry('hostile/iam-inventory.yaml', 'HiddenRole').principals).toEqual([
      'federated cognito-identity.amazonaws.com (if StringEquals cognito-identity.amazonaws.com:aud)',
    ]);
  });

  it('shows IAM users with what they are granted', () => {
    expect(entry('hostile/iam-inventory.yaml', 'Robot')).toMatchObject({
      kind: 'identity',
      actions: ['sqs:SendMessage'],
    });
  });

  it('shows resource policies with the principals they let in', () => {
    const bucket = entry('hostile/iam-inventory.yaml', 'BucketPolicy');
    expect(bucket).toMatchObject({ kind: 'resource-policy', principals: ['*'], actions: ['s3:GetObject'] });
    expect(bucket.wildcards).toContain('principal *');
    expect(entry('hostile/iam-inventory.yaml', 'PartnerInvoke')).toMatchObject({
      principals: ['account 888888888888'],
      actions: ['lambda:InvokeFunction'],
    });
  });

  it('counts the roles, the distinct actions and the wildcards', () => {
    const inventory = compactInventory(inventoryTemplate(fixture('hostile/iam-inventory.yaml'), target));
    expect(inventory.roles).toBe(4);
    expect(inventory.wildcards).toBeGreaterThanOrEqual(8);
    // *, iam:*, s3:GetObject, NotAction iam:*, sqs:SendMessage, lambda:InvokeFunction
    expect(inventory.actions).toBe(6);
  });
});

describe('IAM inventory: SAM-transformed templates (aws-sam-translator output, as GetTemplate Processed gives it)', () => {
  it("shows the roles SAM generated, with their trust, managed policies and the policy templates' actions", () => {
    const role = entry('processed/serverless-app.json', 'ApiFunctionRole');
    expect(role.principals).toEqual(['service lambda.amazonaws.com']);
    expect(role.managedPolicies).toEqual([
      'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
    ]);
    expect(role.actions).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'sqs:SendMessage', 'xray:PutTraceSegments']),
    );
    expect(role.boundary).toBe('arn:aws:iam::111111111111:policy/crossdeploy/crossdeploy-boundary-eu-west-1');
    // xray's actions need Resource "*": shown, as any Resource * is.
    expect(role.wildcards).toEqual(['Resource *']);
  });

  it('shows the Lambda permission SAM adds for an API event', () => {
    const permission = entry('processed/serverless-app.json', 'ApiFunctionApiPermission');
    expect(permission).toMatchObject({
      principals: ['service apigateway.amazonaws.com (if SourceArn)'],
      actions: ['lambda:InvokeFunction'],
    });
  });

  it('flags AdministratorAccess named in SAM Policies once SAM turned it into an ARN', () => {
    expect(entry('processed/sam-admin-policy.json', 'AdminFunctionRole').wildcards).toContain(
      'AdministratorAccess',
    );
  });

  it("shows another account in a SAM function's AssumeRolePolicyDocument", () => {
    expect(entry('processed/sam-function-trust.json', 'SharedFunctionRole').principals).toEqual([
      'account arn:aws:iam::999999999999:role/partner',
    ]);
  });

  it('shows the same roles from the SAM template before the transform (local mode reads that)', () => {
    const role = entry('benign/serverless-app.yaml', 'ApiFunctionRole');
    expect(role.principals).toEqual(['service lambda.amazonaws.com']);
    expect(role.managedPolicies).toEqual([
      'AWSLambdaBasicExecutionRole',
      'SAM policy template DynamoDBCrudPolicy',
    ]);
    expect(role.actions).toEqual(['sqs:SendMessage', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
  });
});

describe('IAM inventory: what a change set adds or widens, compared with the stack', () => {
  const after = inventoryTemplate(fixture('processed/serverless-app.json'), target);

  it('asks about everything when the stack does not exist yet', () => {
    expect(inventoryWidening(undefined, after)).toEqual(
      expect.arrayContaining(['adds IAM role ApiFunctionRole', 'adds IAM role WorkflowRole']),
    );
  });

  it('asks about nothing when the IAM of the stack stays the same', () => {
    expect(
      inventoryWidening(after, inventoryTemplate(fixture('processed/serverless-app.json'), target)),
    ).toEqual([]);
  });

  it('asks when an existing role gains an action, a trust principal, a managed policy, or loses its boundary', () => {
    const template = fixture('processed/serverless-app.json') as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const props = template.Resources.ApiFunctionRole?.Properties as Record<string, unknown> & {
      Policies: { PolicyDocument: { Statement: unknown[] } }[];
    };
    props.Policies[1]?.PolicyDocument.Statement.push({
      Effect: 'Allow',
      Action: 'sqs:DeleteQueue',
      Resource: { 'Fn::GetAtt': ['Queue', 'Arn'] },
    });
    (props.AssumeRolePolicyDocument as { Statement: unknown[] }).Statement.push({
      Effect: 'Allow',
      Principal: { AWS: '222222222222' },
      Action: 'sts:AssumeRole',
    });
    (props.ManagedPolicyArns as string[]).push('arn:aws:iam::aws:policy/ReadOnlyAccess');
    delete props.PermissionsBoundary;
    const reasons = inventoryWidening(after, inventoryTemplate(template, target));
    expect(reasons).toEqual([
      'ApiFunctionRole trusts account 222222222222',
      'ApiFunctionRole attaches arn:aws:iam::aws:policy/ReadOnlyAccess',
      'ApiFunctionRole grants sqs:DeleteQueue on <Queue>',
      'ApiFunctionRole loses its permissions boundary',
    ]);
  });

  it('asks when an existing action reaches a new resource, or a trust loses its condition', () => {
    const before = inventoryTemplate(fixture('hostile/iam-inventory.yaml'), target);
    const template = fixture('hostile/iam-inventory.yaml') as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const open = template.Resources.OpenRole?.Properties.AssumeRolePolicyDocument as {
      Statement: Record<string, unknown>[];
    };
    delete open.Statement[0]?.Condition;
    const robot = template.Resources.Robot?.Properties.Policies as {
      PolicyDocument: { Statement: Record<string, unknown>[] };
    }[];
    (robot[0]?.PolicyDocument.Statement[0] as Record<string, unknown>).Resource = '*';
    expect(inventoryWidening(before, inventoryTemplate(template, target))).toEqual([
      'OpenRole trusts *',
      'Robot grants sqs:SendMessage on *',
    ]);
  });

  it('ranks a reason by what changed, not by words its template text happens to contain', () => {
    // An S3 key may hold spaces, so a grant's text can read " trusts ": it is still a grant, after the attachment.
    const role = (managed: string[], resources: string[]) => ({
      Resources: {
        Role: {
          Type: 'AWS::IAM::Role',
          Properties: {
            AssumeRolePolicyDocument: {
              Statement: [
                { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
              ],
            },
            ManagedPolicyArns: managed,
            Policies: [
              {
                PolicyName: 'objects',
                PolicyDocument: {
                  Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: resources }],
                },
              },
            ],
          },
        },
      },
    });
    const was = inventoryTemplate(role([], ['arn:aws:s3:::shared/own/*']), target);
    const now = inventoryTemplate(
      role(
        ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
        ['arn:aws:s3:::shared/own/*', 'arn:aws:s3:::shared/who trusts whom/*'],
      ),
      target,
    );
    expect(inventoryWidening(was, now)).toEqual([
      'Role attaches arn:aws:iam::aws:policy/ReadOnlyAccess',
      'Role grants s3:GetObject on arn:aws:s3:::shared/who trusts whom/*',
    ]);
  });

  it('does not ask when access only narrows (an action removed)', () => {
    const template = fixture('processed/serverless-app.json') as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const props = template.Resources.ApiFunctionRole?.Properties as {
      Policies: { PolicyDocument: { Statement: unknown[] } }[];
    };
    props.Policies[1]?.PolicyDocument.Statement.pop();
    expect(inventoryWidening(after, inventoryTemplate(template, target))).toEqual([]);
  });
});

describe('IAM inventory: size', () => {
  it('keeps a template with 200 roles far below the 400 KB DynamoDB item and says how many it left out', () => {
    const resources: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) {
      resources[`Role${i}`] = {
        Type: 'AWS::IAM::Role',
        Properties: {
          AssumeRolePolicyDocument: {
            Statement: [
              { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
            ],
          },
          Policies: [
            {
              PolicyName: 'p',
              PolicyDocument: {
                Statement: [
                  {
                    Effect: 'Allow',
                    Action: Array.from({ length: 60 }, (_, n) => `service${n}:SomeRatherLongActionName${i}`),
                    Resource: `arn:aws:s3:::a-bucket-with-a-long-name-${'x'.repeat(100)}/${i}/*`,
                  },
                ],
              },
            },
          ],
        },
      };
    }
    const inventory = compactInventory(inventoryTemplate({ Resources: resources }, target));
    expect(inventory.roles).toBe(200);
    expect(inventory.actions).toBe(12_000);
    expect(inventory.entries.length).toBeLessThan(200);
    expect(inventory.omitted).toBe(200 - inventory.entries.length);
    expect(inventory.entries[0]?.moreActions).toBeGreaterThan(0);
    expect(JSON.stringify(inventory).length).toBeLessThan(64 * 1024);
  });
});

describe('IAM inventory: more of what widens', () => {
  type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  const hostile = () => fixture('hostile/iam-inventory.yaml') as Template;
  const before = inventoryTemplate(hostile(), target);

  it('asks when a policy is attached to another holder, or a condition value changes', () => {
    const template = hostile();
    (template.Resources.EverythingButIam as { Properties: Record<string, unknown> }).Properties.Roles = [
      { Ref: 'PartnerRole' },
      { Ref: 'AdminRole' },
    ];
    const open = template.Resources.OpenRole?.Properties.AssumeRolePolicyDocument as {
      Statement: { Condition: { StringEquals: Record<string, string> } }[];
    };
    (open.Statement[0] as { Condition: { StringEquals: Record<string, string> } }).Condition.StringEquals[
      'sts:ExternalId'
    ] = 'another';
    expect(inventoryWidening(before, inventoryTemplate(template, target))).toEqual([
      'OpenRole trusts * (if StringEquals sts:ExternalId)',
      'EverythingButIam is now attached to AdminRole',
    ]);
  });

  it('asks when a SAM policy template is added, or a boundary changes', () => {
    const sam = fixture('benign/serverless-app.yaml') as Template & {
      Globals: { Function: Record<string, unknown> };
    };
    const was = inventoryTemplate(sam, target);
    const fn = sam.Resources.ApiFunction as unknown as { Properties: { Policies: unknown[] } };
    fn.Properties.Policies.push({
      SQSSendMessagePolicy: { QueueName: 'q' },
    });
    sam.Globals.Function.PermissionsBoundary = 'arn:aws:iam::111111111111:policy/other';
    expect(inventoryWidening(was, inventoryTemplate(sam, target))).toEqual([
      'ApiFunctionRole adds SAM policy template SQSSendMessagePolicy',
      'ApiFunctionRole changes its permissions boundary',
    ]);
  });

  it('leaves users and groups out of what the comparison judges, so their changes ask by type', () => {
    const ids = comparedIds(before);
    expect(ids).toContain('PartnerRole');
    expect(ids).toContain('BucketPolicy');
    expect(ids).not.toContain('Robot');
    // Read with both branches of an Fn::If: a flipped condition would compare equal, so it asks by type.
    expect(ids).not.toContain('HiddenRole');
    const summary = summariseChangeSet(
      {
        changeSetArn: 'arn',
        changeSetId: 'x',
        changes: [
          {
            action: 'Modify',
            logicalId: 'PartnerRole',
            resourceType: 'AWS::IAM::Role',
            replacement: 'False',
          },
          { action: 'Modify', logicalId: 'Robot', resourceType: 'AWS::IAM::User', replacement: 'False' },
        ],
      },
      [],
      { inventory: compactInventory(before), widening: [], covered: ids },
    );
    expect(summary.broadening).toEqual(['modifies access: Robot (AWS::IAM::User)']);
  });
});

describe('IAM inventory: hostile sizes', () => {
  const roles = (actions: number, resources: number, count: number) => {
    const all: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) {
      all[`Role${i}`] = {
        Type: 'AWS::IAM::Role',
        Properties: {
          Policies: [
            {
              PolicyName: 'p',
              PolicyDocument: {
                Statement: [
                  {
                    Effect: 'Allow',
                    Action: Array.from({ length: actions }, (_, n) => `svc${n}:Action${'x'.repeat(200)}`),
                    Resource: Array.from({ length: resources }, (_, n) => `arn:aws:s3:::bucket-${n}/*`),
                  },
                ],
              },
            },
          ],
        },
      };
    }
    return { Resources: all };
  };

  it('keeps the reasons on the record short when 200 existing roles each gain 60 actions', () => {
    const reasons = inventoryWidening(
      inventoryTemplate(roles(0, 1, 200), target),
      inventoryTemplate(roles(60, 1, 200), target),
    );
    expect(reasons.length).toBeLessThanOrEqual(51);
    expect(reasons.at(-1)).toBe(`… and ${200 * 60 - 50} more IAM changes`);
    expect(JSON.stringify(reasons).length).toBeLessThan(32 * 1024);
  });

  it('does not multiply out a statement of 3,000 actions on 3,000 resources, and still sees a new resource', () => {
    const before = inventoryTemplate(roles(3000, 3000, 1), target);
    const after = roles(3000, 3000, 1);
    const statement = (
      after.Resources.Role0 as {
        Properties: { Policies: { PolicyDocument: { Statement: { Resource: string[] }[] } }[] };
      }
    ).Properties.Policies[0]?.PolicyDocument.Statement[0] as { Resource: string[] };
    statement.Resource.push('arn:aws:s3:::another-bucket/*');
    const widened = inventoryWidening(before, inventoryTemplate(after, target));
    expect(widened).toEqual(['Role0 grants its actions on arn:aws:s3:::another-bucket/*']);
  });
});

describe('IAM inventory: hostile text', () => {
  it('records no control characters from the template (they would reach terminals and chat)', () => {
    const template = {
      Resources: {
        Sneaky: {
          Type: 'AWS::IAM::Role',
          Properties: {
            AssumeRolePolicyDocument: {
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: 'arn:aws:iam::999999999999:root\u001b[2K' },
                  Action: 'sts:AssumeRole',
                },
              ],
            },
            Policies: [
              {
                PolicyName: 'p',
                PolicyDocument: {
                  Statement: [{ Effect: 'Allow', Action: 's3:GetObject\u0007\r', Resource: '*' }],
                },
              },
            ],
          },
        },
      },
    };
    const recorded = JSON.stringify(compactInventory(inventoryTemplate(template, target)));
    expect(recorded).not.toMatch(/\\u00(1b|07|0d)/);
    expect(recorded).toContain('arn:aws:iam::999999999999:root?[2K');
    expect(recorded).toContain('s3:GetObject??');
  });
});

describe('IAM inventory: what else a modification can widen', () => {
  const template = (partner: string, queues: unknown[], maxSession: number) => ({
    Parameters: { Partner: { Type: 'String', Default: partner } },
    Resources: {
      Queue: { Type: 'AWS::SQS::Queue' },
      Other: { Type: 'AWS::SQS::Queue' },
      Role: {
        Type: 'AWS::IAM::Role',
        Properties: {
          MaxSessionDuration: maxSession,
          AssumeRolePolicyDocument: {
            Statement: [
              {
                Effect: 'Allow',
                Principal: { Service: 'events.amazonaws.com' },
                Action: 'sts:AssumeRole',
                Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'Partner' } } },
              },
            ],
          },
        },
      },
      QueuePolicy: {
        Type: 'AWS::SQS::QueuePolicy',
        Properties: {
          Queues: queues,
          PolicyDocument: {
            Statement: [
              {
                Effect: 'Allow',
                Principal: { Service: 'sns.amazonaws.com' },
                Action: 'sqs:SendMessage',
                Resource: '*',
              },
            ],
          },
        },
      },
    },
  });
  const base = inventoryTemplate(template('111111111111', [{ Ref: 'Queue' }], 3600), target);

  it('reads them exactly (a Ref to a resource or a parameter is resolved)', () => {
    expect(comparedIds(base)).toEqual(['Role', 'QueuePolicy']);
  });

  it('asks when a parameter changes a condition value, a queue policy applies to another queue, or sessions last longer', () => {
    expect(
      inventoryWidening(base, inventoryTemplate(template('999999999999', [{ Ref: 'Queue' }], 3600), target)),
    ).toEqual(['Role trusts service events.amazonaws.com (if StringEquals aws:SourceAccount)']);
    expect(
      inventoryWidening(
        base,
        inventoryTemplate(template('111111111111', [{ Ref: 'Queue' }, { Ref: 'Other' }], 3600), target),
      ),
    ).toEqual(['QueuePolicy changes Queues']);
    expect(
      inventoryWidening(base, inventoryTemplate(template('111111111111', [{ Ref: 'Queue' }], 43200), target)),
    ).toEqual(['Role changes MaxSessionDuration']);
  });
});
