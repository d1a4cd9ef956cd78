import type { IamInventory } from './template-policy/inventory.ts';

/** Domain types shared by every function, local mode and the CLI. */

export const TERMINAL_STATUSES = [
  'SUCCEEDED',
  'FAILED',
  'REJECTED',
  'CANCELLED',
  'SUPERSEDED',
  'SKIPPED',
] as const;
export const STATUSES = ['QUEUED', 'RUNNING', ...TERMINAL_STATUSES] as const;
export type DeploymentStatus = (typeof STATUSES)[number];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export const PHASES = [
  'VALIDATING',
  'BUILDING',
  'WAITING_FOR_LOCK',
  'DEPLOYING',
  'AWAITING_APPROVAL',
  'SETTLING',
] as const;
export type Phase = (typeof PHASES)[number];

export const isTerminal = (status: DeploymentStatus): status is TerminalStatus =>
  (TERMINAL_STATUSES as readonly string[]).includes(status);

export type Trigger = 'api' | 'chat' | 'schedule' | 'local';

/** Who asked. Recorded in full on the deployment; a short form becomes the STS SourceIdentity. */
export type Requester =
  /**
   * `principal` is the role ARN for an assumed-role session. `rolePath` is set only when the boundary looked the
   * role's path up (a session ARN carries none): without it, rules that depend on the path do not match.
   */
  | { type: 'iam'; arn: string; principal: string; rolePath?: string }
  | { type: 'slack'; teamId: string; userId: string; userName?: string }
  | { type: 'schedule'; scheduleName: string }
  | { type: 'local'; user: string };

/** An immutable build output: one object version in the orchestrator's artifacts bucket (or local dir). */
export interface BuildOutput {
  bucket: string;
  key: string;
  versionId: string;
  sha256: string;
  resolvedCommit: string;
  /** The commit's committer time (UTC ISO-8601) as the build job read it; absent on builds before it did. */
  commitTime?: string;
}

export type JobKind = 'build' | 'deploy';

/** What a stored task token completes: a job, or the wait for an approval decision. */
export type TokenKind = JobKind | 'approval';

export interface JobRecord {
  buildId: string;
  logUrl?: string;
  startedAt: string;
  status?: JobStatus;
  finishedAt?: string;
}

export type JobStatus = 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'FAULT' | 'STOPPED' | 'TIMED_OUT';

export interface Deployment {
  deploymentId: string;
  application: string;
  environment: string;
  ref?: string;
  resolvedCommit?: string;
  buildOutput?: BuildOutput;
  targetAccount?: string;
  targetRegion?: string;
  stackName?: string;
  /** The registry parameters used (overrides, capabilities) and their hash. */
  parameters?: Record<string, unknown>;
  parametersHash?: string;
  requester: Requester;
  reason?: string;
  trigger: Trigger;
  dryRun: boolean;
  status: DeploymentStatus;
  phase?: Phase;
  requestedAt: string;
  updatedAt: string;
  finishedAt?: string;
  jobs?: Partial<Record<JobKind, JobRecord>>;
  changeSet?: string;
  errorCode?: string;
  errorMessage?: string;
  /** Set once the settle step has confirmed no job runs and the target stack is not in progress. */
  settledAt?: string;
  /** While WAITING_FOR_LOCK: since when, and whom it waits behind (the lock holder, or an earlier request). */
  waitStartedAt?: string;
  waitingBehind?: { deploymentId: string; reason: 'HOLDS_LOCK' | 'EARLIER_REQUEST' };
  /** deploy (a ref, built), promotion (another environment's build output) or rollback (a release's). */
  kind?: 'deploy' | 'promotion' | 'rollback';
  /** Promotions and rollbacks: the deployment whose recorded build output this one deploys. */
  source?: { deploymentId: string; environment: string; release?: number };
  rollbackOf?: number;
  /** An approver deployed inside a freeze window (audited as FREEZE_OVERRIDDEN). */
  freezeOverride?: boolean;
  /** An approver asked to override freeze windows: honoured at request time and again at lock time. */
  freezeOverrideRequested?: boolean;
  /** The deploy job's `sam deploy` found nothing to change ("No changes to deploy"): still a success. */
  noChanges?: boolean;
  /** Registry exceptions (allowedTrustPrincipals, allowedManagedPolicies) the template policy let through. */
  templatePolicyExceptions?: TemplatePolicyExceptionUse[];
  /** The release number of a successful, non-dry-run deployment (per application+environment, no gaps). */
  release?: number;
  /** SUPERSEDED deployments point to the newer request that replaced them. */
  supersededBy?: string;
  /**
   * Local mode, `runner: simulate`: its jobs ran with stand-ins for `sam` and `aws` and nothing was deployed.
   * Set once, when the record is created; absent on real deployments.
   */
  simulated?: boolean;
  /** The deploy job created this change set without executing it (environments with `approval` set). */
  changeSetArn?: string;
  /** What the change set does (DescribeChangeSet, or the simulate runner's stand-in) and whether it broadens. */
  changeSetSummary?: ChangeSetSummary;
  /** The environment's approval step for this deployment: why it was asked for, and its decision. */
  approval?: ApprovalRecord;
}

/** One resource change of a change set (DescribeChangeSet's ResourceChange, reduced). */
export interface ResourceChangeSummary {
  action: 'Add' | 'Modify' | 'Remove' | 'Import' | 'Dynamic';
  logicalId: string;
  resourceType: string;
  /** CloudFormation's Replacement: True, Conditional or False (absent for Add/Remove). */
  replacement?: 'True' | 'False' | 'Conditional';
}

export interface ChangeSetSummary {
  changeSetArn: string;
  changeSetId: string;
  added: ResourceChangeSummary[];
  modified: ResourceChangeSummary[];
  removed: ResourceChangeSummary[];
  /** IAM-relevant changes: roles, policies, resource policies and permissions added or modified. */
  iam: ResourceChangeSummary[];
  /** Why `on-broadening` asks for approval (empty when the change set does not broaden anything). */
  broadening: string[];
  /**
   * The IAM of the template the change set applies (roles, trust principals, actions, wildcards), read by the
   * template policy engine; absent when the template could not be read (then access changes ask by type).
   */
  iamInventory?: IamInventory;
}

export interface ApprovalRecord {
  mode: 'required' | 'on-broadening';
  state: 'PENDING' | 'APPROVED' | 'REJECTED' | 'TIMED_OUT' | 'NOT_REQUIRED';
  requestedAt?: string;
  expiresAt?: string;
  decidedBy?: Requester;
  decidedAt?: string;
  reason?: string;
}

/** One use of a registry exception by the deploy job's template policy check (audit). */
export interface TemplatePolicyExceptionUse {
  kind: 'allowedTrustPrincipals' | 'allowedManagedPolicies';
  value: string;
  /** The logical id of the resource that used it. */
  resource: string;
}

export const EVENT_TYPES = [
  'REQUESTED',
  'VALIDATED',
  'FREEZE_OVERRIDDEN',
  'BUILD_STARTED',
  'BUILD_FINISHED',
  'LOCK_WAITING',
  'LOCK_TAKEN_OVER',
  'LOCK_ACQUIRED',
  'ROLE_ASSUMED',
  'DEPLOY_STARTED',
  'TEMPLATE_POLICY_EXCEPTIONS_USED',
  'DEPLOY_FINISHED',
  'CHANGE_SET_CREATED',
  'APPROVAL_NOT_REQUIRED',
  'APPROVAL_REQUESTED',
  // A refused decision (self-approval, not an approver, too late): repeatable, one per attempt.
  'APPROVAL_REFUSED',
  'APPROVED',
  'APPROVAL_REJECTED',
  'APPROVAL_TIMED_OUT',
  'CHANGE_SET_EXECUTED',
  'CHANGE_SET_DELETED',
  'SETTLED',
  // Written before the terminal event: an environment is free before its deployment reads as ended.
  'LOCK_RELEASED',
  'SUCCEEDED',
  'FAILED',
  'REJECTED',
  'CANCELLED',
  'SUPERSEDED',
  'SKIPPED',
] as const;
export type AuditEventType = (typeof EVENT_TYPES)[number];

export interface AuditEvent {
  deploymentId: string;
  type: AuditEventType;
  /** Deterministic key within the deployment: the type, or `type#n` for steps that may repeat. */
  step: string;
  at: string;
  detail: Record<string, unknown>;
}

/** A release: the deployment that became release `number` of an application+environment. */
export interface Release {
  application: string;
  environment: string;
  release: number;
  deploymentId: string;
  at: string;
}

/** A place in an environment's queue, ordered by request time (written when the request is accepted). */
export interface Ticket {
  application: string;
  environment: string;
  deploymentId: string;
  requestedAt: string;
  /** Set while its deployment is parked at "Wait For Lock": the token a hand-over completes. */
  taskToken?: string;
}

export interface Lock {
  application: string;
  environment: string;
  owner: string;
  acquiredAt: string;
  leaseExpiresAt: string;
}
