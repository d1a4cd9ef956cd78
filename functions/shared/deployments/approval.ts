import { ApprovalRejectedError, ConflictError, RequestRejectedError } from '../errors.ts';
import { logger } from '../logger.ts';
import type { Clock, DeploymentStore, TaskTokens } from '../ports.ts';
import { findTarget, type Registry } from '../registry/registry.ts';
import { describeRequester, isAllowed, type RuleScope } from '../registry/requester.ts';
import type { EnvironmentConfig } from '../registry/schema.ts';
import type { IamInventory } from '../template-policy/inventory.ts';
import { inventoryHeadline, inventoryLines } from '../template-policy/inventory-lines.ts';
import type { ChangeSetSummary, Deployment, Requester, ResourceChangeSummary } from '../types.ts';
import { recordEvent } from './record.ts';

/**
 * Reviewed changes (docs/approvals.md): what a change set does, whether `on-broadening` asks for a decision,
 * and who may decide. No AWS SDK here: the change set arrives through the ChangeSets port.
 */

/**
 * Resource types whose add or change grants or widens access: IAM itself and the resource policies that
 * let other principals in. A modification may also narrow access; telling the two apart needs a policy
 * diff, so any add or modify counts (an approver may be asked when nothing widened, never the reverse).
 */
const ACCESS_TYPES = [
  /^AWS::IAM::/,
  /^AWS::SSO::/,
  /^AWS::Lambda::(Permission|LayerVersionPermission|Url)$/,
  /^AWS::S3::(BucketPolicy|AccessPoint)$/,
  /^AWS::SQS::QueuePolicy$/,
  /^AWS::SNS::TopicPolicy$/,
  /^AWS::KMS::(Key|Grant)$/,
  /^AWS::SecretsManager::ResourcePolicy$/,
  /^AWS::Events::EventBusPolicy$/,
  /^AWS::Logs::ResourcePolicy$/,
  /^AWS::ApiGateway::RestApi$/,
];

export const isAccessResource = (resourceType: string): boolean =>
  ACCESS_TYPES.some((pattern) => pattern.test(resourceType));

/**
 * The IAM of the change set's template compared with the stack's (template-policy/inventory.ts): what it
 * holds, what it adds or widens, and the logical ids it read (their access is judged by the comparison).
 */
export interface IamReview {
  inventory: IamInventory;
  widening: string[];
  covered: readonly string[];
}

/**
 * The resource changes a change set lists, summarised with the reasons `on-broadening` would ask. With the
 * IAM review, a modified access resource it read exactly asks only when its grants, principals or attachments
 * widen; any other access change (an add, a resource it does not read, every one without it) asks by type.
 */
export function summariseChangeSet(
  changeSet: { changeSetArn: string; changeSetId: string; changes: ResourceChangeSummary[] },
  protectedResources: readonly string[],
  review?: IamReview,
): ChangeSetSummary {
  const { changes } = changeSet;
  const iam = changes.filter(
    (c) => (c.action === 'Add' || c.action === 'Modify') && isAccessResource(c.resourceType),
  );
  const covered = new Set(review?.covered ?? []);
  const broadening: string[] = [];
  for (const change of changes) {
    const what = `${change.logicalId} (${change.resourceType})`;
    if (change.action === 'Remove') broadening.push(`removes ${what}`);
    else if (change.replacement === 'True' || change.replacement === 'Conditional')
      broadening.push(`${change.replacement === 'True' ? 'replaces' : 'may replace'} ${what}`);
    // Dynamic: a nested stack's or macro's change CloudFormation cannot predict; it could be anything.
    else if (change.action === 'Dynamic')
      broadening.push(`changes ${what} in a way CloudFormation cannot predict`);
    // Only a modification is judged by the comparison: an add asks by type, whatever the stack's template says
    // (a resource with a Condition is in both templates, yet only now created).
    if (iam.includes(change) && !(change.action === 'Modify' && covered.has(change.logicalId)))
      broadening.push(`${change.action === 'Add' ? 'adds' : 'modifies'} access: ${what}`);
    if (protectedResources.includes(change.logicalId))
      broadening.push(`touches protected resource ${change.logicalId}`);
  }
  broadening.push(...(review?.widening ?? []).map((reason) => `IAM: ${reason}`));
  return {
    changeSetArn: changeSet.changeSetArn,
    changeSetId: changeSet.changeSetId,
    added: changes.filter((c) => c.action === 'Add' || c.action === 'Import'),
    modified: changes.filter((c) => c.action === 'Modify' || c.action === 'Dynamic'),
    removed: changes.filter((c) => c.action === 'Remove'),
    iam,
    broadening,
    ...(review ? { iamInventory: review.inventory } : {}),
  };
}

/** One line for the record, the CLI and chat: `+2 ~1 -0 (1 replacement), access changes: 1, IAM: 2 roles, 14 actions, 1 wildcard`. */
export function describeChangeSet(summary: ChangeSetSummary): string {
  const replacements = summary.modified.filter((c) => c.replacement === 'True').length;
  const inventory = summary.iamInventory;
  return [
    `+${summary.added.length} ~${summary.modified.length} -${summary.removed.length}`,
    replacements > 0 ? ` (${replacements} replacement${replacements === 1 ? '' : 's'})` : '',
    summary.iam.length > 0 ? `, access changes: ${summary.iam.length}` : '',
    inventory ? `, ${inventoryHeadline(inventory)}` : '',
  ].join('');
}

/**
 * The IAM inventory as short text lines (CLI, API clients, chat): each role with whom it trusts, each holder
 * with its actions, managed policies and wildcards (marked `!`), then "… and N more" for what the record left out.
 */
export function iamInventoryLines(summary: ChangeSetSummary): string[] {
  return summary.iamInventory ? inventoryLines(summary.iamInventory) : [];
}

/** Whether the environment asks for a decision on this change set. */
export function approvalNeeded(env: EnvironmentConfig, summary: ChangeSetSummary): boolean {
  if (env.approval === 'required') return true;
  return env.approval === 'on-broadening' && summary.broadening.length > 0;
}

export type Decision = 'approve' | 'reject';

/** Same person: the same IAM principal, Slack user, schedule or local user (whatever the channel's extras). */
export function samePerson(a: Requester, b: Requester): boolean {
  switch (a.type) {
    case 'iam':
      return b.type === 'iam' && a.principal === b.principal;
    case 'slack':
      return b.type === 'slack' && a.teamId === b.teamId && a.userId === b.userId;
    case 'schedule':
      return b.type === 'schedule' && a.scheduleName === b.scheduleName;
    case 'local':
      return b.type === 'local' && a.user === b.user;
  }
}

/**
 * The checks every decision passes, whatever its channel (API, CLI, Slack). Throws the refusal the caller
 * turns into problem+json or an ephemeral message; the caller also audits it.
 */
export function checkDecision(
  deployment: Deployment,
  env: EnvironmentConfig,
  decider: Requester,
  scope: RuleScope,
  decision: Decision,
): void {
  if (!isAllowed(decider, env.approvers, scope)) {
    throw new RequestRejectedError(
      'NOT_AN_APPROVER',
      403,
      `${describeRequester(decider)} is not an approver of ${deployment.application}/${deployment.environment}`,
    );
  }
  if (deployment.approval?.state !== 'PENDING' || deployment.status !== 'RUNNING') {
    const now = deployment.approval?.state ?? deployment.status;
    throw new RequestRejectedError(
      'NOT_AWAITING_APPROVAL',
      409,
      `deployment ${deployment.deploymentId} is not awaiting approval (${now})`,
    );
  }
  // Withdrawing one's own change set is always allowed; approving it needs a second person unless allowed.
  if (decision === 'approve' && !env.allowSelfApproval && samePerson(deployment.requester, decider)) {
    throw new RequestRejectedError(
      'SELF_APPROVAL',
      403,
      `${describeRequester(decider)} requested deployment ${deployment.deploymentId} and may not decide on it (allowSelfApproval is off)`,
    );
  }
}

/** What the decision carries through the task token (never credentials: who, when, why). */
export interface DecisionOutput {
  decision: 'APPROVED' | 'NOT_REQUIRED';
  decidedBy?: Requester;
  decidedAt?: string;
  reason?: string;
}

/** The rejection as SendTaskFailure carries it: the Cause is read back by describeWorkflowError. */
export function rejectionCause(decider: Requester, decidedAt: string, reason: string | undefined): string {
  const error = new ApprovalRejectedError('');
  return JSON.stringify({
    errorType: error.name,
    errorMessage: `rejected by ${describeRequester(decider)}${reason ? `: ${reason}` : ''}`,
    code: error.code,
    decidedBy: decider,
    decidedAt,
    ...(reason ? { reason } : {}),
  });
}

export interface DecideDeps {
  store: DeploymentStore;
  registry: Registry;
  tokens: TaskTokens;
  clock: Clock;
  scope: RuleScope;
}

export interface DecisionRequest {
  deploymentId: string;
  decision: Decision;
  reason?: string;
}

export const MAX_DECISION_REASON = 500;

/** A decision delivered to the waiting workflow. */
export interface DecisionResult {
  deploymentId: string;
  decision: 'APPROVED' | 'REJECTED';
  decidedAt: string;
  /**
   * The deployment as decide() read it to check the decision. Deciding writes nothing to it (the workflow
   * records the decision as it moves on, later), so this is what a confirmation shows, without a second read.
   * Not for an API answer: the API returns the fields above.
   */
  deployment: Deployment;
}

/**
 * An approver's decision, from any channel (API, CLI through the API, Slack). A refused decision is audited
 * on the deployment (APPROVAL_REFUSED) and thrown for the channel to answer; an accepted one completes the
 * waiting task, and the workflow records who decided, when and why as it moves on.
 */
export async function decide(
  request: DecisionRequest,
  decider: Requester,
  deps: DecideDeps,
): Promise<DecisionResult> {
  const { store, clock } = deps;
  const deployment = await store.getDeployment(request.deploymentId);
  if (!deployment) {
    throw new RequestRejectedError('NOT_FOUND', 404, `no deployment ${JSON.stringify(request.deploymentId)}`);
  }
  const target = findTarget(deps.registry, deployment.application, deployment.environment);
  const reason = request.reason;
  try {
    if (reason !== undefined) checkDecisionReason(reason);
    if (!target) {
      throw new RequestRejectedError(
        'NOT_AWAITING_APPROVAL',
        409,
        `${deployment.application}/${deployment.environment} is no longer in the registry`,
      );
    }
    checkDecision(deployment, target.env, decider, deps.scope, request.decision);
    const token = await store.getTaskToken(deployment.deploymentId, 'approval');
    const decidedAt = clock.now().toISOString();
    const delivered = !token
      ? 'gone'
      : request.decision === 'approve'
        ? await deps.tokens.succeed(token, {
            decision: 'APPROVED',
            decidedBy: decider,
            decidedAt,
            ...(reason ? { reason } : {}),
          } satisfies DecisionOutput)
        : await deps.tokens.fail(token, 'ApprovalRejectedError', rejectionCause(decider, decidedAt, reason));
    if (delivered === 'gone') {
      // Timed out or decided a moment ago: the workflow no longer waits for this decision.
      throw new RequestRejectedError(
        'NOT_AWAITING_APPROVAL',
        409,
        `deployment ${deployment.deploymentId} is no longer awaiting approval`,
      );
    }
    logger.info('approval decided', {
      audit: 'decided',
      deploymentId: deployment.deploymentId,
      decision: request.decision,
      decidedBy: describeRequester(decider),
    });
    return {
      deploymentId: deployment.deploymentId,
      decision: request.decision === 'approve' ? 'APPROVED' : 'REJECTED',
      decidedAt,
      deployment,
    };
  } catch (error) {
    if (error instanceof RequestRejectedError) {
      await auditRefusal(deployment.deploymentId, decider, request, error, deps);
    }
    throw error;
  }
}

function checkDecisionReason(reason: string): void {
  // Control characters (other than tab and newline) could rewrite a terminal or a chat message.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(reason) || reason.length > MAX_DECISION_REASON) {
    throw new RequestRejectedError(
      'INVALID_REASON',
      400,
      `reason may be at most ${MAX_DECISION_REASON} characters, without control characters`,
      { details: { field: 'reason' } },
    );
  }
}

/** One APPROVAL_REFUSED event per refused attempt (`APPROVAL_REFUSED#n`), so every attempt stays on record. */
async function auditRefusal(
  deploymentId: string,
  decider: Requester,
  request: DecisionRequest,
  error: RequestRejectedError,
  deps: DecideDeps,
): Promise<void> {
  const detail = {
    decidedBy: decider,
    decision: request.decision,
    code: error.code,
    message: error.message,
    ...(request.reason !== undefined && error.code !== 'INVALID_REASON' ? { reason: request.reason } : {}),
  };
  logger.warn('approval refused', {
    audit: 'refused',
    deploymentId,
    code: error.code,
    requester: describeRequester(decider),
  });
  for (let attempt = 0; attempt < 5; attempt++) {
    const n =
      (await deps.store.listEvents(deploymentId)).filter((e) => e.type === 'APPROVAL_REFUSED').length + 1;
    try {
      await recordEvent(deps.store, deps.clock, deploymentId, 'APPROVAL_REFUSED', detail, n);
      return;
    } catch (conflict) {
      // Two refusals counted the same n at once: take the next number.
      if (!(conflict instanceof ConflictError)) throw conflict;
    }
  }
}
