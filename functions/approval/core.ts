import {
  approvalNeeded,
  type DecisionOutput,
  describeChangeSet,
  type IamReview,
  summariseChangeSet,
} from '#shared/deployments/approval.ts';
import { recordEvent } from '#shared/deployments/record.ts';
import {
  ApprovalTimeoutError,
  ChangeSetError,
  ChangeSetStaleError,
  describeWorkflowError,
  StackUpdateFailedError,
} from '#shared/errors.ts';
import { assumeParams, PREFLIGHT_DURATION_SECONDS } from '#shared/jobs/target-session.ts';
import { logger } from '#shared/logger.ts';
import type { ApprovalNotices, ChangeSets, Clock, DeploymentStore, StackInspector } from '#shared/ports.ts';
import { findTarget, type Registry, type Target } from '#shared/registry/registry.ts';
import { parseTemplateText } from '#shared/template-policy/cfn-yaml.ts';
import {
  compactInventory,
  comparedIds,
  type FullIamInventory,
  inventoryTemplate,
  inventoryWidening,
} from '#shared/template-policy/inventory.ts';
import type { Deployment } from '#shared/types.ts';

/**
 * The workflow's approval states (statemachine/deploy.asl.json, between "Deploy" and "Record Result"):
 * review the change set the deploy job created, wait for a decision, execute exactly that change set by ARN
 * under a fresh target session, follow the stack, or delete the change set when it is rejected or times out.
 */

export interface ApprovalDeps {
  store: DeploymentStore;
  registry: Registry;
  changeSets: ChangeSets;
  stacks: StackInspector;
  clock: Clock;
  /** AWS: tells the Slack function (and a team's own rules) that a decision is awaited. Local mode's chat
   * follows the APPROVAL_REQUESTED audit event instead. */
  notices?: ApprovalNotices;
}

export type ApprovalInput =
  | { action: 'review'; deploymentId: string }
  | {
      action: 'wait';
      deploymentId: string;
      taskToken: string;
      timeoutSeconds: number;
      stackWaitSeconds: number;
    }
  | { action: 'execute'; deploymentId: string; decision: DecisionOutput; stackWaitSeconds: number }
  | { action: 'stack'; deploymentId: string; stackWaitSeconds: number }
  | { action: 'discard'; deploymentId: string; error: { Error?: string; Cause?: string } };

export type ReviewOutput =
  /** No change set to review (approval off, dry run, nothing changed): the deploy job's result stands. */
  { next: 'RECORD' } | { next: 'EXECUTE' } | { next: 'WAIT'; timeoutSeconds: number };

async function load(
  deploymentId: string,
  deps: ApprovalDeps,
): Promise<{ deployment: Deployment; target: Target }> {
  const deployment = await deps.store.getDeployment(deploymentId);
  if (!deployment) throw new ChangeSetError(`deployment ${deploymentId} does not exist`);
  const target = findTarget(deps.registry, deployment.application, deployment.environment);
  if (!target)
    throw new ChangeSetError(`${deployment.application}/${deployment.environment} left the registry`);
  return { deployment, target };
}

const session = (deployment: Deployment, target: Target, changeSetArn: string) => ({
  ...assumeParams(deployment, target, PREFLIGHT_DURATION_SECONDS),
  changeSetArn,
});

/** "Review Change Set": summarise what the change set does and decide whether someone must approve it. */
export async function review(deploymentId: string, deps: ApprovalDeps): Promise<ReviewOutput> {
  const { deployment, target } = await load(deploymentId, deps);
  const arn = deployment.changeSetArn;
  if (!arn || deployment.dryRun || target.env.approval === 'none') return { next: 'RECORD' };
  const info = await deps.changeSets.describeChangeSet(session(deployment, target, arn));
  if (info.status !== 'CREATE_COMPLETE' || info.executionStatus !== 'AVAILABLE') {
    throw new ChangeSetError(
      `the change set is ${info.status}/${info.executionStatus}${info.statusReason ? `: ${info.statusReason}` : ''}`,
    );
  }
  const summary = summariseChangeSet(
    info,
    target.env.protectedResources,
    await reviewIam(deployment, target, { changeSetArn: arn, parameters: info.parameters }, deps),
  );
  const needed = approvalNeeded(target.env, summary);
  const at = deps.clock.now().toISOString();
  await deps.store.updateDeployment(deploymentId, {
    changeSetSummary: summary,
    changeSet: describeChangeSet(summary),
    approval: {
      mode: target.env.approval as 'required' | 'on-broadening',
      state: needed ? 'PENDING' : 'NOT_REQUIRED',
    },
    updatedAt: at,
  });
  await recordEvent(deps.store, deps.clock, deploymentId, 'CHANGE_SET_CREATED', {
    changeSetArn: summary.changeSetArn,
    summary: describeChangeSet(summary),
    added: summary.added,
    modified: summary.modified,
    removed: summary.removed,
    iam: summary.iam,
    broadening: summary.broadening,
    ...(summary.iamInventory ? { iamInventory: summary.iamInventory } : {}),
  });
  if (!needed) {
    await recordEvent(deps.store, deps.clock, deploymentId, 'APPROVAL_NOT_REQUIRED', {
      mode: target.env.approval,
    });
    return { next: 'EXECUTE' };
  }
  return { next: 'WAIT', timeoutSeconds: target.env.approvalTimeoutMinutes * 60 };
}

/**
 * The IAM of the template the change set applies, compared with the stack's current one (both as
 * CloudFormation processed them, under the deploy role): only what is added or widened asks. When either
 * cannot be read, the review goes on without it and access changes ask by resource type, as they would
 * without the inventory: never less than that.
 */
async function reviewIam(
  deployment: Deployment,
  target: Target,
  changeSet: { changeSetArn: string; parameters: Record<string, string> },
  deps: ApprovalDeps,
): Promise<IamReview | undefined> {
  const env = target.env;
  // Each template with the parameter values it runs with: the change set's, and the stack's own (a registry
  // override that changed would otherwise read both the same and hide a new trusted account).
  const read = (text: string, parameterOverrides: Record<string, string>): FullIamInventory =>
    inventoryTemplate(parseTemplateText(text), {
      accountId: env.accountId,
      region: env.region,
      stackName: env.stackName,
      parameterOverrides,
    });
  try {
    const { proposed, current } = await deps.changeSets.reviewTemplates({
      ...session(deployment, target, changeSet.changeSetArn),
      stackName: env.stackName,
    });
    const after = read(proposed, changeSet.parameters);
    const before = current === undefined ? undefined : read(current.template, current.parameters);
    // A NoEcho value reads `****` on both sides whatever it is: the comparison cannot tell, so access
    // changes ask by type.
    const hidden = [
      ...Object.values(changeSet.parameters),
      ...Object.values(current?.parameters ?? {}),
    ].includes('****');
    return {
      inventory: compactInventory(after),
      widening: inventoryWidening(before, after),
      covered: hidden ? [] : comparedIds(after),
    };
  } catch (error) {
    logger.warn('could not read the IAM of the change set; access changes ask by resource type', {
      deploymentId: deployment.deploymentId,
      error: error instanceof Error ? error.name : 'unknown',
    });
    return undefined;
  }
}

/**
 * "Wait For Approval" (waitForTaskToken): stores the token a decision completes, and keeps the environment's
 * lock for as long as the wait and the stack update after it may take (the lease would otherwise lapse and
 * another deployment could take the environment over while this one waits).
 */
export async function awaitDecision(
  input: { deploymentId: string; taskToken: string; timeoutSeconds: number; stackWaitSeconds: number },
  deps: ApprovalDeps,
): Promise<void> {
  const { deployment } = await load(input.deploymentId, deps);
  const now = deps.clock.now();
  // A retried invocation (Step Functions retries Lambda service errors) keeps the first one's times, so its
  // audit event is the same event and not a conflicting second one.
  const earlier = deployment.approval?.state === 'PENDING' ? deployment.approval : undefined;
  const requestedAt = earlier?.requestedAt ?? now.toISOString();
  const expiresAt = earlier?.expiresAt ?? new Date(now.getTime() + input.timeoutSeconds * 1000).toISOString();
  await extendLease(deployment, Date.parse(expiresAt) + input.stackWaitSeconds * 1000, deps);
  await deps.store.putTaskToken(deployment.deploymentId, 'approval', input.taskToken);
  await deps.store.updateDeployment(deployment.deploymentId, {
    phase: 'AWAITING_APPROVAL',
    approval: {
      mode: deployment.approval?.mode ?? 'required',
      state: 'PENDING',
      requestedAt,
      expiresAt,
    },
    updatedAt: now.toISOString(),
  });
  await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'APPROVAL_REQUESTED', {
    deploymentId: deployment.deploymentId,
    changeSetArn: deployment.changeSetArn,
    summary: deployment.changeSet,
    broadening: deployment.changeSetSummary?.broadening ?? [],
    expiresAt,
  });
  logger.info('awaiting approval', { deploymentId: deployment.deploymentId, expiresAt });
  // After the token and the PENDING state are stored: a click on the buttons this notice leads to finds them.
  await deps.notices?.awaitingApproval(deployment.deploymentId);
}

/**
 * Keeps the environment's lock until `until` (ms): the lease taken for the deploy job would otherwise lapse
 * during a long wait for a decision or the stack update after it, and another deployment could take over.
 */
async function extendLease(deployment: Deployment, until: number, deps: ApprovalDeps): Promise<void> {
  const lock = await deps.store.getLock(deployment.application, deployment.environment);
  if (lock?.owner !== deployment.deploymentId) return;
  const needed = new Date(until).toISOString();
  if (needed > lock.leaseExpiresAt) await deps.store.takeOverLock(lock, { ...lock, leaseExpiresAt: needed });
}

/** "Execute Change Set": exactly the reviewed change set, by ARN, under a fresh session of the deploy role. */
export async function execute(
  input: { deploymentId: string; decision: DecisionOutput; stackWaitSeconds: number },
  deps: ApprovalDeps,
): Promise<{ executedAt: string }> {
  const { deployment, target } = await load(input.deploymentId, deps);
  const arn = deployment.changeSetArn;
  if (!arn) throw new ChangeSetError('there is no change set to execute');
  await extendLease(deployment, deps.clock.now().getTime() + input.stackWaitSeconds * 1000, deps);
  const { decision } = input;
  if (decision.decision === 'APPROVED') {
    await deps.store.updateDeployment(deployment.deploymentId, {
      approval: {
        ...(deployment.approval ?? { mode: 'required' }),
        state: 'APPROVED',
        ...(decision.decidedBy ? { decidedBy: decision.decidedBy } : {}),
        ...(decision.decidedAt ? { decidedAt: decision.decidedAt } : {}),
        ...(decision.reason ? { reason: decision.reason } : {}),
      },
      updatedAt: deps.clock.now().toISOString(),
    });
    await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'APPROVED', {
      decidedBy: decision.decidedBy,
      decidedAt: decision.decidedAt,
      ...(decision.reason ? { reason: decision.reason } : {}),
    });
  }
  try {
    await deps.changeSets.executeChangeSet(session(deployment, target, arn));
  } catch (error) {
    // A retried invocation whose first attempt did execute it finds the change set executing, not stale.
    if (!(error instanceof ChangeSetStaleError)) throw error;
    const info = await deps.changeSets.describeChangeSet(session(deployment, target, arn));
    if (!info.executionStatus.startsWith('EXECUTE_')) throw error;
  }
  const executedAt = deps.clock.now().toISOString();
  await deps.store.updateDeployment(deployment.deploymentId, { phase: 'DEPLOYING', updatedAt: executedAt });
  await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'CHANGE_SET_EXECUTED', {
    changeSetArn: arn,
  });
  return { executedAt };
}

/** "Check Stack": done once the stack completes the update; a rollback or failure ends the deployment. */
export async function checkStack(
  input: { deploymentId: string; stackWaitSeconds: number },
  deps: ApprovalDeps,
): Promise<{ done: boolean; stackStatus: string }> {
  const { deployment, target } = await load(input.deploymentId, deps);
  const status =
    (await deps.stacks.stackStatus({
      ...assumeParams(deployment, target, PREFLIGHT_DURATION_SECONDS),
      stackName: target.env.stackName,
    })) ?? 'DOES_NOT_EXIST';
  if (status.endsWith('_IN_PROGRESS') && !status.includes('ROLLBACK')) {
    const executed = (await deps.store.listEvents(deployment.deploymentId)).find(
      (e) => e.type === 'CHANGE_SET_EXECUTED',
    );
    const since = executed ? Date.parse(executed.at) : deps.clock.now().getTime();
    if (deps.clock.now().getTime() - since > input.stackWaitSeconds * 1000) {
      throw new StackUpdateFailedError(
        `the stack is still ${status} ${input.stackWaitSeconds} s after the change set was executed`,
      );
    }
    return { done: false, stackStatus: status };
  }
  if (['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'IMPORT_COMPLETE'].includes(status)) {
    return { done: true, stackStatus: status };
  }
  if (status.includes('ROLLBACK') && status.endsWith('_IN_PROGRESS'))
    return { done: false, stackStatus: status };
  throw new StackUpdateFailedError(`the stack ended ${status} after the change set was executed`);
}

/**
 * "Discard Change Set": a rejection, a timeout or a failure before execution leaves nothing applied. The
 * change set is deleted (best effort: a stale one may already be gone) and the error handed on for Record
 * Failure, a timeout renamed so it is recorded as APPROVAL_TIMEOUT rather than a job timeout.
 */
export async function discard(
  input: { deploymentId: string; error: { Error?: string; Cause?: string } },
  deps: ApprovalDeps,
): Promise<{ Error?: string; Cause?: string }> {
  const { deployment, target } = await load(input.deploymentId, deps);
  const at = deps.clock.now().toISOString();
  let error = input.error;
  if (error.Error === 'States.Timeout') {
    const minutes = target.env.approvalTimeoutMinutes;
    const timeout = new ApprovalTimeoutError(`no approver decided within ${minutes} minutes`);
    error = {
      Error: timeout.name,
      Cause: JSON.stringify({ errorType: timeout.name, errorMessage: timeout.message, code: timeout.code }),
    };
    await deps.store.updateDeployment(deployment.deploymentId, {
      approval: { ...(deployment.approval ?? { mode: 'required' }), state: 'TIMED_OUT' },
      updatedAt: at,
    });
    await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'APPROVAL_TIMED_OUT', {
      minutes,
    });
  } else if (error.Error === 'ApprovalRejectedError') {
    const cause = parseCause(error.Cause);
    await deps.store.updateDeployment(deployment.deploymentId, {
      approval: {
        ...(deployment.approval ?? { mode: 'required' }),
        state: 'REJECTED',
        ...(cause.decidedBy ? { decidedBy: cause.decidedBy as never } : {}),
        ...(typeof cause.decidedAt === 'string' ? { decidedAt: cause.decidedAt } : {}),
        ...(typeof cause.reason === 'string' ? { reason: cause.reason } : {}),
      },
      updatedAt: at,
    });
    await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'APPROVAL_REJECTED', {
      decidedBy: cause.decidedBy,
      decidedAt: cause.decidedAt,
      ...(typeof cause.reason === 'string' ? { reason: cause.reason } : {}),
    });
  }
  const arn = deployment.changeSetArn;
  if (arn) {
    let deleted = true;
    try {
      await deps.changeSets.deleteChangeSet(session(deployment, target, arn));
    } catch (failure) {
      deleted = false;
      logger.warn('could not delete the change set', {
        error: failure,
        deploymentId: deployment.deploymentId,
      });
    }
    await recordEvent(deps.store, deps.clock, deployment.deploymentId, 'CHANGE_SET_DELETED', {
      changeSetArn: arn,
      deleted,
      because: describeWorkflowError(error).code,
    });
  }
  return error;
}

function parseCause(text: string | undefined): Record<string, unknown> {
  try {
    const value = JSON.parse(text ?? '') as unknown;
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export async function runApprovalStep(input: ApprovalInput, deps: ApprovalDeps): Promise<unknown> {
  switch (input.action) {
    case 'review':
      return review(input.deploymentId, deps);
    case 'wait':
      return awaitDecision(input, deps);
    case 'execute':
      return execute(input, deps);
    case 'stack':
      return checkStack(input, deps);
    case 'discard':
      return discard(input, deps);
  }
}
