// Named imports: `z.*` would bundle all of zod (locales included) into every function.
import {
  array,
  boolean,
  iso,
  number,
  type output,
  record,
  strictObject,
  string,
  union,
  url,
  enum as zEnum,
} from 'zod';
import { RegistryError } from '../errors.ts';
import { cronProblem, scheduleProblem, timezoneProblem } from './calendar.ts';

/**
 * The registry's schema and load-time checks. Only what loads a registry file needs this (local mode, the
 * build scripts, tests): the functions carry the registry already parsed (bundled.ts), so their
 * bundles hold neither this schema nor the cron parser its checks use.
 */

const ACCOUNT_ID = /^\d{12}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
const STACK_NAME = /^[A-Za-z][-A-Za-z0-9]{0,127}$/;
const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const CONNECTION_ARN =
  /^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection\/[\w-]+$/;
/** Chat subcommands an application name must not shadow. */
export const RESERVED_APPLICATION_NAMES = ['promote', 'rollback', 'status', 'history', 'help'] as const;

export const CAPABILITIES = ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM', 'CAPABILITY_AUTO_EXPAND'] as const;
export const EXECUTION_MODES = ['queued', 'superseded', 'reject'] as const;
export const RUNNERS = ['codebuild', 'local', 'simulate'] as const;
/**
 * The longest lock wait. The execution (TimeoutSeconds 86,400) also spends up to the longest build wait
 * (11,400 s) and deploy wait (33,000 s) the template allows, plus polls, settling and Lambda steps: 10 h
 * keeps a waiter's end a LOCK_WAIT_TIMEOUT, never an execution timeout.
 */
export const MAX_LOCK_WAIT_SECONDS = 36_000;
/**
 * With the longest lock wait (10 h), build and deploy waits and the stack wait after an approval (under 4 h
 * together), 8 h of waiting for a decision still ends before the execution's 24 h timeout.
 */
export const MAX_APPROVAL_MINUTES = 480;

const slackRule = strictObject({
  team: string().regex(/^T[A-Z0-9]+$/),
  users: array(string().regex(/^[UW][A-Z0-9]+$/))
    .min(1)
    .optional(),
});

/**
 * An IAM rule is a role name pattern (`Developer*`: a role of the orchestrator's account, any path) or an ARN
 * pattern of six segments matched as IAM matches ARNs (`*`, `?`; see functions/shared/registry/requester.ts).
 */
const IAM_RULE = /^(?:[\w+=,.@*?-]{1,64}|arn:[\w*?-]+:(?:iam|sts):[\w*?-]*:[\d*?]*:[\x21-\x7e]+)$/;
const iamRule = string().regex(
  IAM_RULE,
  'must be a role name pattern (letters, digits, +=,.@_- and the wildcards * ?) or an IAM ARN pattern arn:<partition>:iam::<account>:<resource>',
);

const allowedRequesters = strictObject({
  /** Role-name patterns (roles of the orchestrator's account) or IAM ARN patterns; `*` and `?` wildcards. */
  iam: array(iamRule).default([]),
  slack: array(slackRule).default([]),
  schedule: array(string().min(1)).default([]),
  /** OS user names allowed in local mode (`*` for anyone on the machine). */
  local: array(string().min(1)).default([]),
});

const source = strictObject({
  type: zEnum(['GITHUB', 'GITLAB', 'BITBUCKET', 'CODECOMMIT', 'GITHUB_ENTERPRISE', 'GITLAB_SELF_MANAGED']),
  location: url(),
  /** Required for private GitHub/GitLab/Bitbucket repositories: the template grants use of exactly these. */
  connectionArn: string().regex(CONNECTION_ARN, 'must be a CodeConnections connection ARN').optional(),
  /** Local mode: a directory inside a git repository (relative paths are relative to the registry file). */
  localPath: string().min(1).optional(),
});

/** A recurring freeze (a cron expression in EventBridge syntax, its time zone and a duration) or a date range. */
const freezeWindow = union([
  strictObject({
    name: string().min(1).max(80),
    cron: string().min(1),
    timezone: string().default('UTC'),
    durationMinutes: number().int().min(1).max(10_080),
  }),
  strictObject({
    name: string().min(1).max(80),
    start: iso.datetime({ offset: true }),
    end: iso.datetime({ offset: true }),
  }),
]);

const environment = strictObject({
  accountId: string().regex(ACCOUNT_ID, 'must be a 12-digit AWS account id'),
  region: string().regex(REGION, 'must be a region code such as eu-west-1'),
  deployRoleArn: string().regex(ROLE_ARN, 'must be an IAM role ARN'),
  externalId: string()
    .regex(/^[\w+=,.@:/-]{2,1224}$/)
    .optional(),
  stackName: string().regex(STACK_NAME, 'must match ^[A-Za-z][-A-Za-z0-9]{0,127}$'),
  artifactsBucket: string().regex(BUCKET, 'must be an S3 bucket name'),
  executionRoleArn: string().regex(ROLE_ARN, 'must be an IAM role ARN'),
  capabilities: array(zEnum(CAPABILITIES)).default([]),
  parameterOverrides: record(
    string().regex(/^[A-Za-z0-9]{1,255}$/, 'parameter names are alphanumeric'),
    string().max(4096),
  ).default({}),
  allowedRequesters: allowedRequesters,
  mode: zEnum(EXECUTION_MODES).default('queued'),
  /** How long a queued deployment may wait for the environment before it fails with LOCK_WAIT_TIMEOUT. */
  lockWaitTimeoutSeconds: number()
    .int()
    .min(60)
    .max(
      MAX_LOCK_WAIT_SECONDS,
      `must be at most ${MAX_LOCK_WAIT_SECONDS} s, so that with the longest build and deploy waits the deployment ends as LOCK_WAIT_TIMEOUT before its execution times out (24 h)`,
    )
    .default(21_600),
  /** Environments of the same application this one may be promoted from (e.g. prod: [staging]). */
  promoteFrom: array(string()).default([]),
  /**
   * Refs this environment accepts directly (patterns, `*` wildcard). `[]` means promotions and rollbacks only,
   * `["main", "release/*"]` protected refs only. A 40-hex commit SHA matches only `*`.
   */
  allowedRefs: array(string().min(1)).default(['*']),
  freezeWindows: array(freezeWindow).default([]),
  /** Who may override a freeze window (same rules as allowedRequesters); the override is audited. */
  approvers: allowedRequesters.default({ iam: [], slack: [], schedule: [], local: [] }),
  /**
   * Who may read the environment's deployments, events and logs (same rules). Unset: whoever is in
   * allowedRequesters or approvers.
   */
  readers: allowedRequesters.optional(),
  /**
   * Reviewed changes (docs/approvals.md): `required` waits for an approver's decision on every change set,
   * `on-broadening` only when it adds or widens IAM, deletes or replaces a resource, or touches a
   * protectedResources entry; `none` deploys as before.
   */
  approval: zEnum(['none', 'required', 'on-broadening']).default('none'),
  /** Nobody decided in time: the change set is deleted and the deployment ends FAILED/APPROVAL_TIMEOUT. */
  approvalTimeoutMinutes: number().int().min(1).max(MAX_APPROVAL_MINUTES).default(60),
  /** Whether the requester may approve their own deployment (an approver still; off by default). */
  allowSelfApproval: boolean().default(false),
  /** Logical ids whose change (any action) makes `on-broadening` ask for approval. */
  protectedResources: array(string().regex(/^[A-Za-z0-9]{1,255}$/, 'a logical id')).default([]),
  /**
   * Template policy exceptions (README "Guard rails"): exact trust principals, and AWS managed admin policies
   * (name or ARN), this environment's templates may use. No wildcards; every use is recorded on the deployment.
   */
  allowedTrustPrincipals: array(
    string().regex(/^[^*?\s]{1,2048}$/, 'an exact principal, no wildcards'),
  ).optional(),
  allowedManagedPolicies: array(
    string().regex(/^[^*?\s]{1,2048}$/, 'a policy name or ARN, no wildcards'),
  ).optional(),
  /** Local mode only: how jobs run. `simulate` records the commands and runs nothing. */
  runner: zEnum(RUNNERS).default('codebuild'),
});

const application = strictObject({
  source,
  templatePath: string()
    .regex(
      /^(?!\/)(?!.*\.\.)[\w./-]+\.ya?ml$/,
      'must be a relative path to a YAML template inside the repository',
    )
    .default('template.yaml'),
  defaultRef: string().min(1).default('main'),
  /** Scheduled promotions: EventBridge Scheduler expressions (`cron(...)` or `rate(...)`) with a time zone. */
  schedules: array(
    strictObject({
      name: string().regex(
        /^[a-z][a-z0-9-]{0,39}$/,
        'schedule names are lower-case kebab-case, at most 40 characters',
      ),
      from: string(),
      to: string(),
      schedule: string().min(1),
      timezone: string().default('UTC'),
      enabled: boolean().default(true),
    }),
  ).default([]),
  environments: record(string().regex(NAME, 'environment names are lower-case kebab-case'), environment),
});

const registrySchema = strictObject({
  applications: record(string().regex(NAME, 'application names are lower-case kebab-case'), application),
});

export type Registry = output<typeof registrySchema>;
export type ApplicationConfig = output<typeof application>;
export type EnvironmentConfig = output<typeof environment>;

/** Validates a parsed registry, applying the checks for the classic cross-account mistakes. */
export function parseRegistry(raw: unknown, origin = 'registry'): Registry {
  const result = registrySchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new RegistryError(`${origin} is invalid:\n  ${lines.join('\n  ')}`);
  }
  const problems = crossChecks(result.data);
  if (problems.length > 0) throw new RegistryError(`${origin} is invalid:\n  ${problems.join('\n  ')}`);
  return result.data;
}

function crossChecks(registry: Registry): string[] {
  const problems: string[] = [];
  const targets = new Map<string, string>();
  for (const [appName, app] of Object.entries(registry.applications)) {
    if ((RESERVED_APPLICATION_NAMES as readonly string[]).includes(appName)) {
      problems.push(`applications.${appName}: the name is a chat subcommand; choose another`);
    }
    for (const [envName, env] of Object.entries(app.environments)) {
      const at = `applications.${appName}.environments.${envName}`;
      // The seed article's profile named the dev account in role_arn: that deploys into the wrong account.
      for (const field of ['deployRoleArn', 'executionRoleArn'] as const) {
        const account = ROLE_ARN.exec(env[field])?.[1];
        if (account !== env.accountId) {
          problems.push(
            `${at}.${field}: the role is in account ${account}, but the environment's accountId is ${env.accountId}`,
          );
        }
      }
      for (const from of env.promoteFrom) {
        if (from === envName || !Object.hasOwn(app.environments, from)) {
          problems.push(`${at}.promoteFrom: "${from}" is not another environment of ${appName}`);
        }
      }
      for (const [i, window] of env.freezeWindows.entries()) {
        const where = `${at}.freezeWindows.${i}`;
        if ('cron' in window) {
          const problem = cronProblem(window.cron) ?? timezoneProblem(window.timezone);
          if (problem) problems.push(`${where}: ${problem}`);
        } else if (Date.parse(window.end) <= Date.parse(window.start)) {
          problems.push(`${where}: end must be after start`);
        }
      }
      const target = `${env.accountId}/${env.region}/${env.stackName}`;
      const other = targets.get(target);
      if (other) problems.push(`${at}: deploys the same account, region and stack as ${other} (${target})`);
      else targets.set(target, at);
    }
  }
  for (const [appName, app] of Object.entries(registry.applications)) {
    const names = new Set<string>();
    for (const [i, schedule] of app.schedules.entries()) {
      const at = `applications.${appName}.schedules.${i}`;
      if (names.has(schedule.name)) problems.push(`${at}.name: "${schedule.name}" is used twice`);
      names.add(schedule.name);
      const to = Object.hasOwn(app.environments, schedule.to) ? app.environments[schedule.to] : undefined;
      if (!Object.hasOwn(app.environments, schedule.from))
        problems.push(`${at}.from: no environment "${schedule.from}"`);
      if (!to) problems.push(`${at}.to: no environment "${schedule.to}"`);
      else if (!to.promoteFrom.includes(schedule.from)) {
        problems.push(
          `${at}: ${schedule.to} may not be promoted from ${schedule.from} (see its promoteFrom)`,
        );
      }
      const problem = scheduleProblem(schedule.schedule) ?? timezoneProblem(schedule.timezone);
      if (problem) problems.push(`${at}: ${problem}`);
    }
  }
  return problems;
}
