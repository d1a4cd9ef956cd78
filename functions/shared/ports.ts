/**
 * Ports: what the cores need from the outside world. AWS adapters live in ./aws/, local-mode adapters in
 * local/, and tests pass real (dynalite) or in-memory implementations. Cores never import an SDK.
 */
import type {
  AuditEvent,
  Deployment,
  JobKind,
  JobStatus,
  Lock,
  Release,
  ResourceChangeSummary,
  TerminalStatus,
  Ticket,
  TokenKind,
} from './types.ts';

export interface Clock {
  now(): Date;
}

/**
 * When commits were made (lead time, GET /metrics). Local mode asks the registry's source repositories; the
 * deployed orchestrator has no such source, so it passes none. Commits it cannot date are left out.
 */
export interface CommitTimes {
  lookup(application: string, commits: string[]): Promise<Map<string, string>>;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

export interface DeploymentStore {
  /** Conditional put: creates the deployment unless one with that id exists, and returns what is stored. */
  createDeployment(deployment: Deployment): Promise<{ created: boolean; deployment: Deployment }>;
  getDeployment(deploymentId: string): Promise<Deployment | undefined>;
  /** Updates a deployment that is not terminal; returns undefined when it is already terminal. */
  updateDeployment(
    deploymentId: string,
    changes: Partial<Omit<Deployment, 'deploymentId' | 'status'>> & { status?: 'RUNNING' },
  ): Promise<Deployment | undefined>;
  /** Moves a deployment to a terminal status unless it already has one (the first terminal status wins). */
  finishDeployment(
    deploymentId: string,
    status: TerminalStatus,
    changes: Partial<Omit<Deployment, 'deploymentId' | 'status'>>,
  ): Promise<{ changed: boolean; deployment: Deployment | undefined }>;
  /** Records that the settle step confirmed nothing runs any more (allowed on terminal deployments). */
  markSettled(deploymentId: string, settledAt: string): Promise<void>;
  /**
   * Appends an audit event with a conditional put: an event is never overwritten. Writing the same
   * type and detail again is a success (Step Functions may invoke a Lambda twice); anything else throws.
   */
  appendEvent(event: AuditEvent): Promise<{ written: boolean }>;
  listEvents(deploymentId: string): Promise<AuditEvent[]>;
  /** History of an application+environment, newest first, by Query on an index. */
  listHistory(
    application: string,
    environment: string,
    options: { limit: number; cursor?: string },
  ): Promise<Page<Deployment>>;
  /** Deployments requested in [from, to), oldest first, by Query on an index (metrics, audit export). */
  listRequestedBetween(
    application: string,
    environment: string,
    window: { from: string; to: string },
    options: { limit: number },
  ): Promise<{ items: Deployment[]; more: boolean }>;
  lastSuccessful(application: string, environment: string): Promise<Deployment | undefined>;
  /** Deployments that are not terminal (the reconciler and local start-up settle these). */
  listActive(): Promise<Deployment[]>;

  getLock(application: string, environment: string): Promise<Lock | undefined>;
  /**
   * Conditional write: succeeds only when no lock item exists. A caller that finds itself as the holder
   * (Step Functions ran Acquire Lock twice) keeps the lease it already has.
   */
  acquireLock(lock: Lock): Promise<{ acquired: true } | { acquired: false; holder: Lock | undefined }>;
  /** Replaces an expired lease, conditional on the previous owner and lease still being in place. */
  takeOverLock(previous: Lock, next: Lock): Promise<boolean>;
  /** Deletes the lock only if `owner` still owns it. */
  releaseLock(application: string, environment: string, owner: string): Promise<boolean>;

  /** The newest release of an application+environment, if any. */
  latestRelease(application: string, environment: string): Promise<Release | undefined>;
  getRelease(application: string, environment: string, release: number): Promise<Release | undefined>;
  /** Conditional put: false when that number is already taken. */
  putRelease(release: Release): Promise<boolean>;

  /** The environment's queue: a ticket per accepted request, in request order. */
  putTicket(ticket: Ticket): Promise<void>;
  /** The oldest tickets first (or the newest first), at most `limit`. */
  listTickets(
    application: string,
    environment: string,
    options: { limit: number; newestFirst?: boolean },
  ): Promise<Ticket[]>;
  deleteTicket(ticket: Ticket): Promise<void>;
  /** Stores the parked waiter's task token on its ticket; false when the ticket is gone (it ended). */
  parkTicket(ticket: Ticket, taskToken: string): Promise<boolean>;

  putTaskToken(deploymentId: string, job: TokenKind, taskToken: string): Promise<void>;
  getTaskToken(deploymentId: string, job: TokenKind): Promise<string | undefined>;

  /** Claims an Idempotency-Key for a request body hash; returns the earlier claim when there is one. */
  claimIdempotencyKey(
    key: string,
    bodyHash: string,
    deploymentId: string,
    at: string,
  ): Promise<{ claimed: true } | { claimed: false; bodyHash: string; deploymentId: string }>;
}

export interface JobStart {
  deploymentId: string;
  job: JobKind;
  /** Derived from deploymentId + job: a retried task never starts a second job. */
  idempotencyToken: string;
  environmentVariables: Record<string, string>;
  /** The build job checks out a source; the deploy job has none. */
  source?: { type: string; location: string; version: string; connectionArn?: string; localPath?: string };
}

export interface JobInfo {
  buildId: string;
  deploymentId?: string;
  job?: JobKind;
  status: JobStatus;
  complete: boolean;
  resolvedCommit?: string;
  exportedVariables: Record<string, string>;
  /** The job's own (non-secret) environment variables: where its output goes, which deployment it serves. */
  environmentVariables: Record<string, string>;
  logUrl?: string;
}

export interface JobRunner {
  start(job: JobStart): Promise<{ buildId: string; logUrl?: string }>;
  describe(buildIds: string[]): Promise<JobInfo[]>;
  stop(buildId: string): Promise<void>;
}

/**
 * Tells whoever listens (in AWS: an EventBridge event on the default bus, which the Slack function turns
 * into the approval request with its buttons) that a deployment now awaits a decision. Best effort: a
 * notice that cannot be sent is logged, and the CLI and API still decide.
 */
export interface ApprovalNotices {
  awaitingApproval(deploymentId: string): Promise<void>;
}
export const APPROVAL_NOTICE_SOURCE = 'crossdeploy';
export const AWAITING_APPROVAL_DETAIL_TYPE = 'Deployment Awaiting Approval';

/** Completes a waiting Task. `gone` means the task no longer exists (TaskDoesNotExist / TaskTimedOut). */
export interface TaskTokens {
  succeed(taskToken: string, output: unknown): Promise<'delivered' | 'gone'>;
  fail(taskToken: string, error: string, cause: string): Promise<'delivered' | 'gone'>;
}

export interface AssumeRoleParams {
  roleArn: string;
  externalId?: string;
  sourceIdentity: string;
  sessionName: string;
  durationSeconds: number;
  region: string;
}

/** Only non-secret facts leave a RoleAssumer: credentials stay inside the adapter. */
export interface AssumedIdentity {
  assumedRoleArn: string;
  account: string;
  expiration: string;
}

export interface RoleAssumer {
  /** Assumes the role, then asks GetCallerIdentity with the assumed credentials. */
  preflight(params: AssumeRoleParams): Promise<AssumedIdentity>;
}

export interface StackInspector {
  /** The target stack's status through the deploy role, or undefined when the stack does not exist. */
  stackStatus(params: AssumeRoleParams & { stackName: string }): Promise<string | undefined>;
}

/** A change set as DescribeChangeSet reports it (reduced: no template; its parameters as strings). */
export interface ChangeSetInfo {
  changeSetArn: string;
  changeSetId: string;
  /** CREATE_COMPLETE, FAILED, ... */
  status: string;
  /** AVAILABLE, OBSOLETE, EXECUTE_IN_PROGRESS, EXECUTE_COMPLETE, EXECUTE_FAILED, UNAVAILABLE */
  executionStatus: string;
  statusReason?: string;
  changes: ResourceChangeSummary[];
  /** The parameter values the change set applies (empty when the template has none; NoEcho ones as `****`). */
  parameters: Record<string, string>;
}

/** The templates one review compares (ChangeSets.reviewTemplates). */
export interface ReviewTemplates {
  /** The change set's processed template. */
  proposed: string;
  /**
   * The stack's processed template and the parameter values it runs with (a NoEcho value reads `****`);
   * absent when the stack does not exist yet.
   */
  current?: { template: string; parameters: Record<string, string> };
}

/**
 * The deploy job's change set in the target account, each call under a fresh session of the deploy role
 * (the job's session is long gone by the time an approver decides).
 */
export interface ChangeSets {
  describeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<ChangeSetInfo>;
  /** Executes exactly this change set by ARN; throws ChangeSetStaleError when CloudFormation refuses it as stale. */
  executeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void>;
  deleteChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void>;
  /**
   * What the review compares, under ONE session of the deploy role: the change set's template and the stack's
   * as it stands now, each as CloudFormation applies it (GetTemplate, stage Processed: the SAM transform
   * applied), with the parameter values the stack runs with (DescribeStacks). The review reads the IAM of both
   * (template-policy/inventory.ts). Throws ChangeSetError when the change set's template cannot be read.
   */
  reviewTemplates(
    params: AssumeRoleParams & { changeSetArn: string; stackName: string },
  ): Promise<ReviewTemplates>;
}

export interface WorkflowStarter {
  /** Starts the state machine with name = deploymentId (a duplicate name is not an error). */
  start(deploymentId: string, input: unknown): Promise<void>;
}

/** What Step Functions says of a deployment's execution (the execution name is the deployment id). */
export interface ExecutionStatuses {
  /** RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED or PENDING_REDRIVE; undefined when there is no such execution. */
  status(deploymentId: string): Promise<string | undefined>;
}

export interface LogLine {
  job: JobKind;
  at: string;
  message: string;
}

export interface LogReader {
  read(deployment: Deployment, options: { cursor?: string; limit: number }): Promise<Page<LogLine>>;
}
