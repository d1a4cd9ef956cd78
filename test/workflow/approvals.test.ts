import { readFileSync } from 'node:fs';
import {
  DeleteChangeSetCommand,
  DescribeChangeSetCommand,
  type DescribeChangeSetCommandOutput,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  GetTemplateCommand,
} from '@aws-sdk/client-cloudformation';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Decision, decide } from '#shared/deployments/approval.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { parseRegistryText } from '#shared/registry/file.ts';
import type { Requester } from '#shared/types.ts';
import {
  createWorkflowHarness,
  type HarnessOptions,
  SECRET_ACCESS_KEY,
  SESSION_TOKEN,
} from '#test/support/workflow.ts';

/**
 * Reviewed changes on the real ASL (statemachine/deploy.asl.json on aws-local-stepfunctions): the deploy
 * job creates the change set, the workflow waits for a decision with a task token, and only an approval
 * executes exactly that change set. CloudFormation and STS are mocked at the SDK boundary.
 */

const registry = parseRegistryText(
  readFileSync(new URL('../fixtures/registry-approvals.yaml', import.meta.url), 'utf8'),
  'test/fixtures/registry-approvals.yaml',
);

const ARN = (account: string) =>
  `arn:aws:cloudformation:eu-west-1:${account}:changeSet/samcli-deploy1733300000/0b8e2c7a-1d2e-4f3a-9b8c-7d6e5f4a3b2c`;

type Changes = NonNullable<DescribeChangeSetCommandOutput['Changes']>;
const change = (
  Action: string,
  LogicalResourceId: string,
  ResourceType: string,
  Replacement?: string,
): Changes[number] => ({
  Type: 'Resource',
  ResourceChange: {
    Action: Action as never,
    LogicalResourceId,
    ResourceType,
    ...(Replacement ? { Replacement: Replacement as never } : {}),
  },
});

/** A change set that adds a role: IAM, so `on-broadening` asks. */
const WITH_IAM: Changes = [
  change('Modify', 'HelloFunction', 'AWS::Lambda::Function', 'False'),
  change('Add', 'HelloFunctionRole', 'AWS::IAM::Role'),
];
/** Code only: `on-broadening` executes it without asking. */
const CODE_ONLY: Changes = [change('Modify', 'HelloFunction', 'AWS::Lambda::Function', 'False')];

const local = (user: string): Requester => ({ type: 'local', user });

type Harness = Awaited<ReturnType<typeof createWorkflowHarness>>;

async function waitUntil(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function types(h: Harness, id: string) {
  return (await h.store.listEvents(id)).map((e) => e.type);
}

async function setup(
  options: HarnessOptions & { changes?: Changes; account?: string; executeError?: string } = {},
) {
  const account = options.account ?? '222222222222';
  const h = await createWorkflowHarness({ registry, ...options });
  h.codebuild.scripts.deploy = {
    status: 'SUCCEEDED',
    exported: { CHANGE_SET_ARN: ARN(account), NO_CHANGES: 'false' },
  };
  h.cfn.on(DescribeChangeSetCommand).callsFake(async ({ ChangeSetName }) => ({
    ChangeSetId: ChangeSetName,
    ChangeSetName: 'samcli-deploy1733300000',
    Status: 'CREATE_COMPLETE',
    ExecutionStatus: 'AVAILABLE',
    Changes: options.changes ?? WITH_IAM,
  }));
  h.cfn.on(ExecuteChangeSetCommand).callsFake(async () => {
    if (options.executeError) {
      throw Object.assign(
        new Error(`ChangeSet [${ARN(account)}] cannot be executed in its current status of [OBSOLETE]`),
        { name: options.executeError },
      );
    }
    return {};
  });
  h.cfn.on(DeleteChangeSetCommand).resolves({});
  const decideAs = (id: string, user: string, decision: Decision, reason?: string) =>
    decide({ deploymentId: id, decision, ...(reason !== undefined ? { reason } : {}) }, local(user), {
      store: h.store,
      registry,
      tokens: h.tokens,
      clock: h.clock,
      scope: {},
    });
  const awaitingApproval = (id: string) =>
    waitUntil(
      async () => (await h.store.getDeployment(id))?.phase === 'AWAITING_APPROVAL',
      'AWAITING_APPROVAL',
    );
  return { h, decideAs, awaitingApproval };
}

async function refusal(promise: Promise<unknown>): Promise<RequestRejectedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RequestRejectedError);
  return error as RequestRejectedError;
}

beforeEach(() => {
  for (const method of ['log', 'info', 'warn', 'error'] as const) {
    vi.spyOn(console, method).mockImplementation(() => {});
  }
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('approval: required', () => {
  it('waits holding the lock, then executes exactly the approved change set by ARN and succeeds', async () => {
    const { h, decideAs, awaitingApproval } = await setup();
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);

    const waiting = await h.store.getDeployment(run.deploymentId);
    expect(waiting).toMatchObject({
      status: 'RUNNING',
      phase: 'AWAITING_APPROVAL',
      changeSetArn: ARN('222222222222'),
      approval: { mode: 'required', state: 'PENDING' },
      changeSetSummary: {
        added: [{ action: 'Add', logicalId: 'HelloFunctionRole', resourceType: 'AWS::IAM::Role' }],
        modified: [{ logicalId: 'HelloFunction', replacement: 'False' }],
        removed: [],
        iam: [{ logicalId: 'HelloFunctionRole' }],
      },
    });
    // The deploy job was told to create the change set only.
    const deployJob = h.codebuild.starts.find((s) =>
      s.environmentVariablesOverride?.some((v) => v.name === 'CROSSDEPLOY_JOB' && v.value === 'deploy'),
    );
    expect(deployJob?.environmentVariablesOverride).toContainEqual(
      expect.objectContaining({ name: 'CHANGE_SET_ONLY', value: 'true' }),
    );
    // The environment stays locked while the decision is pending, for longer than the wait may last.
    const lock = await h.store.getLock('shop', 'prod');
    expect(lock?.owner).toBe(run.deploymentId);
    expect(Date.parse(lock?.leaseExpiresAt ?? '')).toBeGreaterThan(
      Date.parse(waiting?.approval?.expiresAt ?? ''),
    );
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
    // Slack is told once the decision can be taken: a click on its buttons finds the token and PENDING.
    // (The notice is the wait step's last act, just after the state this test saw: wait for it.)
    await vi.waitFor(() =>
      expect(h.approvalNotices).toEqual([
        { deploymentId: run.deploymentId, tokenStored: true, state: 'PENDING' },
      ]),
    );

    const answer = await decideAs(run.deploymentId, 'bob', 'approve', 'reviewed the role');
    expect(answer).toMatchObject({ decision: 'APPROVED' });
    const outcome = await run.settled;
    expect(outcome.ok).toBe(true);

    expect(h.cfn).toReceiveCommandTimes(ExecuteChangeSetCommand, 1);
    expect(h.cfn).toReceiveCommandWith(ExecuteChangeSetCommand, { ChangeSetName: ARN('222222222222') });
    expect(h.cfn).not.toReceiveCommand(DeleteChangeSetCommand);
    const done = await h.store.getDeployment(run.deploymentId);
    expect(done).toMatchObject({
      status: 'SUCCEEDED',
      release: 1,
      approval: { state: 'APPROVED', decidedBy: local('bob'), reason: 'reviewed the role' },
    });
    const events = await types(h, run.deploymentId);
    expect(events).toEqual(
      expect.arrayContaining(['CHANGE_SET_CREATED', 'APPROVAL_REQUESTED', 'APPROVED', 'CHANGE_SET_EXECUTED']),
    );
    expect(events.indexOf('APPROVED')).toBeLessThan(events.indexOf('CHANGE_SET_EXECUTED'));
    const approved = (await h.store.listEvents(run.deploymentId)).find((e) => e.type === 'APPROVED');
    expect(approved?.detail).toMatchObject({ decidedBy: local('bob'), reason: 'reviewed the role' });
    expect(await h.store.getLock('shop', 'prod')).toBeUndefined();

    // Every execute and review ran under a fresh session of the deploy role; no credential was kept.
    const { Items = [] } = await h.doc.send(new ScanCommand({ TableName: h.tableName }));
    for (const text of [JSON.stringify(run.events), JSON.stringify(Items)]) {
      expect(text).not.toContain(SECRET_ACCESS_KEY);
      expect(text).not.toContain(SESSION_TOKEN);
    }
  });

  it('rejects: deletes the change set, ends REJECTED/APPROVAL_REJECTED, releases the lock, applies nothing', async () => {
    const { h, decideAs, awaitingApproval } = await setup();
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'alice', 'reject', 'not during the sale');
    await run.settled;

    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'APPROVAL_REJECTED',
      approval: { state: 'REJECTED', decidedBy: local('alice'), reason: 'not during the sale' },
    });
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
    expect(h.cfn).toReceiveCommandWith(DeleteChangeSetCommand, { ChangeSetName: ARN('222222222222') });
    const events = await types(h, run.deploymentId);
    expect(events).toEqual(
      expect.arrayContaining(['APPROVAL_REJECTED', 'CHANGE_SET_DELETED', 'LOCK_RELEASED']),
    );
    expect(events.at(-1)).toBe('REJECTED');
    expect(await h.store.getLock('shop', 'prod')).toBeUndefined();
  });

  it('times out: deletes the change set, ends FAILED/APPROVAL_TIMEOUT, releases the lock', async () => {
    // The environment's 30 minutes, shortened to one second by the review step's answer only.
    const { h } = await setup({
      wrapFunctions: (fns) => ({
        ...fns,
        ApprovalFunctionArn: async (payload) => {
          const result = await fns.ApprovalFunctionArn!(payload);
          const out = result as { next?: string; timeoutSeconds?: number };
          return out?.next === 'WAIT' ? { ...out, timeoutSeconds: 1 } : result;
        },
      }),
    });
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await run.settled;

    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'FAILED',
      errorCode: 'APPROVAL_TIMEOUT',
      approval: { state: 'TIMED_OUT' },
    });
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
    expect(h.cfn).toReceiveCommandWith(DeleteChangeSetCommand, { ChangeSetName: ARN('222222222222') });
    const events = await types(h, run.deploymentId);
    expect(events).toEqual(expect.arrayContaining(['APPROVAL_TIMED_OUT', 'CHANGE_SET_DELETED']));
    expect(await h.store.getLock('shop', 'prod')).toBeUndefined();
  });

  it('refuses self-approval (problem 403 SELF_APPROVAL) and audits the attempt; another approver still can', async () => {
    const { h, decideAs, awaitingApproval } = await setup();
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('alice') });
    await awaitingApproval(run.deploymentId);

    const error = await refusal(decideAs(run.deploymentId, 'alice', 'approve'));
    expect(error).toMatchObject({ code: 'SELF_APPROVAL', httpStatus: 403 });
    expect((await h.store.getDeployment(run.deploymentId))?.phase).toBe('AWAITING_APPROVAL');
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
    const refused = (await h.store.listEvents(run.deploymentId)).filter((e) => e.type === 'APPROVAL_REFUSED');
    expect(refused.map((e) => e.detail)).toEqual([
      expect.objectContaining({ decidedBy: local('alice'), decision: 'approve', code: 'SELF_APPROVAL' }),
    ]);

    await decideAs(run.deploymentId, 'bob', 'approve');
    expect((await run.settled).ok).toBe(true);
    expect((await h.store.getDeployment(run.deploymentId))?.status).toBe('SUCCEEDED');
  });

  it('lets the requester withdraw (reject) their own change set', async () => {
    const { h, decideAs, awaitingApproval } = await setup();
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('alice') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'alice', 'reject', 'wrong branch');
    await run.settled;
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'APPROVAL_REJECTED',
    });
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
  });

  it('lets the requester approve where allowSelfApproval is on', async () => {
    const { h, decideAs, awaitingApproval } = await setup({ account: '333333333333' });
    const run = h.start({ application: 'shop', environment: 'self-service', requester: local('alice') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'alice', 'approve');
    expect((await run.settled).ok).toBe(true);
    expect((await h.store.getDeployment(run.deploymentId))?.status).toBe('SUCCEEDED');
  });

  it('refuses a non-approver (problem 403 NOT_AN_APPROVER), audits it, and keeps waiting', async () => {
    const { h, decideAs, awaitingApproval } = await setup();
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);

    for (const decision of ['approve', 'reject'] as const) {
      const error = await refusal(decideAs(run.deploymentId, 'mallory', decision));
      expect(error).toMatchObject({ code: 'NOT_AN_APPROVER', httpStatus: 403 });
    }
    const refused = (await h.store.listEvents(run.deploymentId)).filter((e) => e.type === 'APPROVAL_REFUSED');
    expect(refused.map((e) => [e.step, e.detail.code, e.detail.decision])).toEqual([
      ['APPROVAL_REFUSED#1', 'NOT_AN_APPROVER', 'approve'],
      ['APPROVAL_REFUSED#2', 'NOT_AN_APPROVER', 'reject'],
    ]);
    expect((await h.store.getDeployment(run.deploymentId))?.phase).toBe('AWAITING_APPROVAL');

    await decideAs(run.deploymentId, 'bob', 'reject');
    await run.settled;
  });

  it('refuses a decision after the deployment ended (problem 409 NOT_AWAITING_APPROVAL), audited', async () => {
    const { h, decideAs, awaitingApproval } = await setup();
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'bob', 'reject');
    await run.settled;

    const error = await refusal(decideAs(run.deploymentId, 'alice', 'approve'));
    expect(error).toMatchObject({ code: 'NOT_AWAITING_APPROVAL', httpStatus: 409 });
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
    const refused = (await h.store.listEvents(run.deploymentId)).filter((e) => e.type === 'APPROVAL_REFUSED');
    expect(refused.map((e) => e.detail.code)).toEqual(['NOT_AWAITING_APPROVAL']);
    expect((await h.store.getDeployment(run.deploymentId))?.status).toBe('REJECTED');
  });

  it('records a change set CloudFormation refuses as stale as FAILED/CHANGE_SET_STALE with a clear message', async () => {
    const { h, decideAs, awaitingApproval } = await setup({
      executeError: 'InvalidChangeSetStatusException',
    });
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'bob', 'approve');
    await run.settled;

    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'CHANGE_SET_STALE' });
    expect(deployment?.errorMessage).toMatch(/stack changed after it was created/);
    expect(deployment?.errorMessage).not.toContain('OBSOLETE]');
    expect(await h.store.getLock('shop', 'prod')).toBeUndefined();
  });
});

describe('approval: retried steps (Step Functions retries Lambda service errors)', () => {
  /** Every approval step runs twice, as when the first invocation's response was lost. */
  const twice: HarnessOptions['wrapFunctions'] = (fns) => ({
    ...fns,
    ApprovalFunctionArn: async (payload) => {
      await fns.ApprovalFunctionArn!(structuredClone(payload));
      return fns.ApprovalFunctionArn!(payload);
    },
  });

  it('executes once and records each step once when approved', async () => {
    const { h, decideAs, awaitingApproval } = await setup({ wrapFunctions: twice });
    let executed = false;
    h.cfn.on(ExecuteChangeSetCommand).callsFake(async () => {
      if (executed) {
        throw Object.assign(
          new Error('ChangeSet cannot be executed in its current status of [EXECUTE_IN_PROGRESS]'),
          {
            name: 'InvalidChangeSetStatusException',
          },
        );
      }
      executed = true;
      return {};
    });
    h.cfn.on(DescribeChangeSetCommand).callsFake(async ({ ChangeSetName }) => ({
      ChangeSetId: ChangeSetName,
      ChangeSetName: 'samcli-deploy1733300000',
      Status: 'CREATE_COMPLETE',
      ExecutionStatus: executed ? 'EXECUTE_IN_PROGRESS' : 'AVAILABLE',
      Changes: WITH_IAM,
    }));
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'bob', 'approve');
    expect((await run.settled).ok).toBe(true);
    expect((await h.store.getDeployment(run.deploymentId))?.status).toBe('SUCCEEDED');
    const events = await types(h, run.deploymentId);
    for (const type of ['CHANGE_SET_CREATED', 'APPROVAL_REQUESTED', 'APPROVED', 'CHANGE_SET_EXECUTED']) {
      expect(
        events.filter((t) => t === type),
        type,
      ).toHaveLength(1);
    }
  });

  it('deletes once and ends REJECTED when the delete is retried after the change set is gone', async () => {
    const { h, decideAs, awaitingApproval } = await setup({ wrapFunctions: twice });
    let deleted = false;
    h.cfn.on(DeleteChangeSetCommand).callsFake(async () => {
      if (deleted)
        throw Object.assign(new Error('ChangeSet does not exist'), { name: 'ChangeSetNotFoundException' });
      deleted = true;
      return {};
    });
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await awaitingApproval(run.deploymentId);
    await decideAs(run.deploymentId, 'bob', 'reject');
    await run.settled;
    expect(await h.store.getDeployment(run.deploymentId)).toMatchObject({
      status: 'REJECTED',
      errorCode: 'APPROVAL_REJECTED',
    });
    const deletedEvents = (await h.store.listEvents(run.deploymentId)).filter(
      (e) => e.type === 'CHANGE_SET_DELETED',
    );
    expect(deletedEvents.map((e) => e.detail.deleted)).toEqual([true]);
  });
});

/**
 * The IAM review cases: one change set (with, where the case needs it, the templates CloudFormation returns
 * and the parameters of the change set and the stack), run to AWAITING_APPROVAL or to its end.
 */

type Processed = {
  Parameters?: Record<string, unknown>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
};
/** aws-sam-translator's output for test/fixtures/templates/benign/serverless-app.yaml: the stack as it stands. */
const processed = (): Processed =>
  JSON.parse(
    readFileSync(new URL('../fixtures/templates/processed/serverless-app.json', import.meta.url), 'utf8'),
  ) as Processed;
const roleStatements = (template: Processed): unknown[] => {
  const role = template.Resources.ApiFunctionRole as { Properties: Record<string, unknown> };
  const policies = role.Properties.Policies as { PolicyDocument: { Statement: unknown[] } }[];
  return (policies[1] as { PolicyDocument: { Statement: unknown[] } }).PolicyDocument.Statement;
};

interface IamCase {
  changes: Changes;
  /**
   * CloudFormation's two processed templates: the change set's, and the stack's (undefined: the stack does
   * not exist yet); `unreadable`: GetTemplate is denied. Absent: GetTemplate is left as the harness has it.
   */
  templates?: (() => { changeSet: unknown; stack: unknown }) | 'unreadable';
  /** The parameters the change set passes, and those the stack was deployed with (DescribeStacks). */
  changeSetParameters?: Record<string, string>;
  stackParameters?: Record<string, string>;
}

const parameters = (values: Record<string, string>) =>
  Object.entries(values).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue }));

/** Carol deploys shop/staging (on-broadening, approvers include bob) with this change set. */
async function startIamCase(c: IamCase) {
  const { h, decideAs, awaitingApproval } = await setup({ account: '111111111111', changes: c.changes });
  if (c.templates === 'unreadable') {
    h.cfn.on(GetTemplateCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
  } else if (c.templates) {
    const { changeSet, stack } = c.templates();
    h.cfn.on(GetTemplateCommand).callsFake(async (input: { ChangeSetName?: string; StackName?: string }) => {
      if (input.ChangeSetName) return { TemplateBody: JSON.stringify(changeSet) };
      if (stack === undefined) {
        throw Object.assign(new Error(`Stack with id ${input.StackName} does not exist`), {
          name: 'ValidationError',
        });
      }
      return { TemplateBody: JSON.stringify(stack) };
    });
  }
  const { changeSetParameters, stackParameters } = c;
  if (changeSetParameters) {
    h.cfn.on(DescribeChangeSetCommand).callsFake(async ({ ChangeSetName }) => ({
      ChangeSetId: ChangeSetName,
      ChangeSetName: 'samcli-deploy1733300000',
      Status: 'CREATE_COMPLETE',
      ExecutionStatus: 'AVAILABLE',
      Parameters: parameters(changeSetParameters),
      Changes: c.changes,
    }));
  }
  if (stackParameters) {
    h.cfn.on(DescribeStacksCommand).callsFake(async ({ StackName }) => ({
      Stacks: [
        {
          StackName,
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
          Parameters: parameters(stackParameters),
        },
      ],
    }));
  }
  const run = h.start({ application: 'shop', environment: 'staging', requester: local('carol') });
  return { h, run, decideAs, awaitingApproval };
}

/** The case run until it waits for a decision, with the record as it waits. */
async function awaitReview(c: IamCase) {
  const started = await startIamCase(c);
  await started.awaitingApproval(started.run.deploymentId);
  const waiting = await started.h.store.getDeployment(started.run.deploymentId);
  return { ...started, waiting };
}

/**
 * Bob decides. Approve: nothing ran before, the deployment succeeds, the change set runs once. Reject: it
 * ends and the change set never runs.
 */
async function decideReview(review: Awaited<ReturnType<typeof awaitReview>>, decision: Decision) {
  const { h, run, decideAs } = review;
  if (decision === 'approve') {
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
    await decideAs(run.deploymentId, 'bob', 'approve');
    expect((await run.settled).ok).toBe(true);
    expect(h.cfn).toReceiveCommandTimes(ExecuteChangeSetCommand, 1);
  } else {
    await decideAs(run.deploymentId, 'bob', 'reject');
    await run.settled;
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
  }
}

/** The reasons recorded, exactly, or including these. */
type Reasons = { exactly: string[] } | { including: string[] };
const expectReasons = (broadening: string[] | undefined, reasons: Reasons) =>
  'exactly' in reasons
    ? expect(broadening).toEqual(reasons.exactly)
    : expect(broadening).toEqual(expect.arrayContaining(reasons.including));

describe('approval: on-broadening', () => {
  it.each<[string, Changes, string, Decision]>([
    ['adds IAM', WITH_IAM, 'adds access: HelloFunctionRole (AWS::IAM::Role)', 'approve'],
    [
      'removes a resource',
      [change('Remove', 'OldQueue', 'AWS::SQS::Queue')],
      'removes OldQueue (AWS::SQS::Queue)',
      'reject',
    ],
    [
      'replaces a resource',
      [change('Modify', 'Bucket', 'AWS::S3::Bucket', 'True')],
      'replaces Bucket (AWS::S3::Bucket)',
      'reject',
    ],
    [
      'touches a protected resource',
      [change('Modify', 'OrdersTable', 'AWS::DynamoDB::Table', 'False')],
      'touches protected resource OrdersTable',
      'reject',
    ],
  ])('asks when the change set %s', async (_what, changes, reason, decision) => {
    const review = await awaitReview({ changes });
    expect(review.waiting?.changeSetSummary?.broadening).toEqual([reason]);
    await decideReview(review, decision);
  });

  it('executes a change set that broadens nothing without asking, keeping the lock for the stack update', async () => {
    const leases: (string | undefined)[] = [];
    let harness: Harness | undefined;
    const { h } = await setup({
      account: '111111111111',
      changes: CODE_ONLY,
      // A deploy wait longer than the lease Acquire Lock takes (5,400 s in the harness).
      substitutions: { DeployWaitSeconds: '9000' },
      wrapFunctions: (fns) => ({
        ...fns,
        ApprovalFunctionArn: async (payload) => {
          const result = await fns.ApprovalFunctionArn!(payload);
          if ((payload as { action?: string }).action === 'execute') {
            leases.push((await harness?.store.getLock('shop', 'staging'))?.leaseExpiresAt);
          }
          return result;
        },
      }),
    });
    harness = h;
    const started = Date.now();
    const run = h.start({ application: 'shop', environment: 'staging', requester: local('carol') });
    expect((await run.settled).ok).toBe(true);
    expect(h.cfn).toReceiveCommandWith(ExecuteChangeSetCommand, { ChangeSetName: ARN('111111111111') });
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'SUCCEEDED', approval: { state: 'NOT_REQUIRED' } });
    const events = await types(h, run.deploymentId);
    expect(events).toContain('APPROVAL_NOT_REQUIRED');
    expect(events).not.toContain('APPROVAL_REQUESTED');
    // Held, with a lease that covers the deploy wait from the moment the change set was executed.
    expect(leases).toHaveLength(1);
    expect(Date.parse(leases[0] ?? '')).toBeGreaterThanOrEqual(started + 9000 * 1000);
  });
});

describe('approval: on-broadening reads the IAM of the templates (GetTemplate, Processed)', () => {
  const MODIFIED_ROLE = [change('Modify', 'ApiFunctionRole', 'AWS::IAM::Role', 'False')];
  const BY_TYPE = { exactly: ['modifies access: ApiFunctionRole (AWS::IAM::Role)'] };

  it('asks when a modified role gains an action, naming it, and records the inventory', async () => {
    const review = await awaitReview({
      changes: MODIFIED_ROLE,
      templates: () => {
        const widened = processed();
        roleStatements(widened).push({ Effect: 'Allow', Action: 'sqs:PurgeQueue', Resource: '*' });
        return { changeSet: widened, stack: processed() };
      },
    });
    const { h, run, waiting } = review;
    expect(waiting?.changeSetSummary?.broadening).toEqual([
      'IAM: ApiFunctionRole grants sqs:PurgeQueue on *',
    ]);
    expect(waiting?.changeSet).toMatch(/, IAM: 3 roles, \d+ actions, 1 wildcard$/);
    const role = waiting?.changeSetSummary?.iamInventory?.entries.find((e) => e.id === 'ApiFunctionRole');
    expect(role).toMatchObject({ principals: ['service lambda.amazonaws.com'], wildcards: ['Resource *'] });
    expect(role?.actions).toContain('sqs:PurgeQueue');
    const created = (await h.store.listEvents(run.deploymentId)).find((e) => e.type === 'CHANGE_SET_CREATED');
    expect(created?.detail).toMatchObject({ iamInventory: { roles: 3 } });
    expect(h.cfn).toReceiveCommandWith(GetTemplateCommand, {
      ChangeSetName: ARN('111111111111'),
      TemplateStage: 'Processed',
    });
    expect(h.cfn).toReceiveCommandWith(GetTemplateCommand, {
      StackName: 'shop-staging',
      TemplateStage: 'Processed',
    });
    await decideReview(review, 'reject');
  });

  it('executes without asking when a modified role only narrows (an action removed)', async () => {
    const { h, run } = await startIamCase({
      changes: MODIFIED_ROLE,
      templates: () => {
        const narrowed = processed();
        roleStatements(narrowed).pop();
        return { changeSet: narrowed, stack: processed() };
      },
    });
    expect((await run.settled).ok).toBe(true);
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'SUCCEEDED', approval: { state: 'NOT_REQUIRED' } });
    expect(deployment?.changeSetSummary?.broadening).toEqual([]);
    expect(h.cfn).toReceiveCommandTimes(ExecuteChangeSetCommand, 1);
  });

  /** A template whose role trusts the account a `Partner` parameter names. */
  const trustsPartner = () => {
    const template = processed();
    template.Parameters = {
      ...(template.Parameters ?? {}),
      Partner: { Type: 'String', Default: '111111111111' },
    };
    const role = template.Resources.ApiFunctionRole as { Properties: Record<string, unknown> };
    (role.Properties.AssumeRolePolicyDocument as { Statement: unknown[] }).Statement.push({
      Effect: 'Allow',
      Principal: { AWS: { Ref: 'Partner' } },
      Action: 'sts:AssumeRole',
    });
    return template;
  };
  /** A template whose role grants `*` on `*` only if the `Admin` parameter is `yes`. */
  const adminIf = () => {
    const template = processed();
    template.Parameters = { ...(template.Parameters ?? {}), Admin: { Type: 'String', Default: 'no' } };
    template.Conditions = {
      ...(template.Conditions ?? {}),
      IsAdmin: { 'Fn::Equals': [{ Ref: 'Admin' }, 'yes'] },
    };
    roleStatements(template).push({
      'Fn::If': ['IsAdmin', { Effect: 'Allow', Action: '*', Resource: '*' }, { Ref: 'AWS::NoValue' }],
    });
    return template;
  };
  /** The same template text on both sides: only the parameters (or nothing readable) tell them apart. */
  const same = (template: () => unknown) => () => {
    const t = template();
    return { changeSet: t, stack: t };
  };

  it.each<[string, IamCase, Reasons, Decision]>([
    [
      'asks about every role, trust and action when the stack does not exist yet',
      {
        changes: [
          change('Add', 'ApiFunctionRole', 'AWS::IAM::Role'),
          change('Add', 'ApiFunction', 'AWS::Lambda::Function'),
        ],
        templates: () => ({ changeSet: processed(), stack: undefined }),
      },
      { including: ['IAM: adds IAM role ApiFunctionRole', 'IAM: adds IAM role WorkflowRole'] },
      'approve',
    ],
    [
      'asks when a resource whose type is not an access type gains a resource policy letting in another account',
      {
        changes: [change('Modify', 'Table', 'AWS::DynamoDB::Table', 'False')],
        templates: () => {
          const shared = processed();
          (shared.Resources.Table as { Properties: Record<string, unknown> }).Properties.ResourcePolicy = {
            PolicyDocument: {
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: '999999999999' },
                  Action: 'dynamodb:GetItem',
                  Resource: '*',
                },
              ],
            },
          };
          return { changeSet: shared, stack: processed() };
        },
      },
      { exactly: ['IAM: adds resource policy Table'] },
      'reject',
    ],
    [
      "asks when only a parameter changes whom a role trusts (the stack's own parameters, not the registry's)",
      {
        changes: MODIFIED_ROLE,
        // The same template text; the change set passes another account than the stack was deployed with.
        templates: same(trustsPartner),
        changeSetParameters: { Partner: '999999999999' },
        stackParameters: { Partner: '111111111111' },
      },
      { including: ['IAM: ApiFunctionRole trusts account 999999999999'] },
      'reject',
    ],
    [
      'asks by resource type when a NoEcho parameter (`****` on both sides) could hide what changed',
      {
        changes: MODIFIED_ROLE,
        templates: () => ({ changeSet: processed(), stack: processed() }),
        changeSetParameters: { Secret: '****' },
      },
      BY_TYPE,
      'reject',
    ],
    [
      'asks by resource type when a parameter flips an Fn::If in a role (both branches read alike on both sides)',
      {
        changes: MODIFIED_ROLE,
        templates: same(adminIf),
        changeSetParameters: { Admin: 'yes' },
        stackParameters: { Admin: 'no' },
      },
      BY_TYPE,
      'reject',
    ],
    [
      'asks by resource type for an added access resource, whatever the inventory says (a Condition may add it)',
      {
        changes: [change('Add', 'WorkflowRole', 'AWS::IAM::Role')],
        templates: () => ({ changeSet: processed(), stack: processed() }),
      },
      { exactly: ['adds access: WorkflowRole (AWS::IAM::Role)'] },
      'reject',
    ],
    [
      'asks by resource type, as before, when the templates cannot be read',
      { changes: MODIFIED_ROLE, templates: 'unreadable' },
      BY_TYPE,
      'reject',
    ],
  ])('%s', async (_name, iamCase, reasons, decision) => {
    const review = await awaitReview(iamCase);
    expectReasons(review.waiting?.changeSetSummary?.broadening, reasons);
    // Without readable templates there is no inventory to record.
    if (iamCase.templates === 'unreadable')
      expect(review.waiting?.changeSetSummary?.iamInventory).toBeUndefined();
    await decideReview(review, decision);
  });
});

describe('approval: the deploy job', () => {
  it('fails a change-set-only job that reports no change set, applying nothing', async () => {
    const { h } = await setup();
    h.codebuild.scripts.deploy = { status: 'SUCCEEDED', exported: { NO_CHANGES: 'false' } };
    const run = h.start({ application: 'shop', environment: 'prod', requester: local('carol') });
    await run.settled;
    const deployment = await h.store.getDeployment(run.deploymentId);
    expect(deployment).toMatchObject({ status: 'FAILED', errorCode: 'DEPLOY_FAILED' });
    expect(deployment?.errorMessage).toMatch(/no change set to review/);
    expect(h.cfn).not.toReceiveCommand(ExecuteChangeSetCommand);
  });
});
