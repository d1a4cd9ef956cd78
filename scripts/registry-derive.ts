/**
 * Writes the parts of template.yaml that are derived from other files, between marker comments:
 *
 *   # BEGIN GENERATED: <name> (npm run registry:derive)
 *   # END GENERATED: <name>
 *
 * - deploy-role-arns      the deploy job and deployer roles may assume exactly the registry's deploy roles
 *                         (refused when an environment mixes the roles, bucket or stack of two bootstraps)
 * - build-source-access   the build role may use exactly the registry's CodeConnections / CodeCommit repos
 * - job-spec-digests      the SHA-256 of buildspecs/build.yml and deploy.yml on the JobSpecs custom resource,
 *                         so that a changed buildspec is published again when the stack is deployed
 * - wait-seconds          the workflow's waits for every allowed (queued, job) timeout pair
 * - schedules             one EventBridge Scheduler schedule per registry schedule (scheduleLines)
 *
 * It also writes functions/shared/registry/bundled.ts (scripts/bundle-registry.ts), the registry the
 * functions carry. `--check` writes nothing and exits 1 naming what is stale (npm test runs it).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MAX_TICK_AGE_SECONDS, type Schedule, scheduleTickInput } from '#local/scheduler.ts';
import { sha256Hex } from '#shared/jobs/job-specs.ts';
import { loadRegistryFile } from '#shared/registry/file.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { bundledRegistrySource } from './bundle-registry.ts';
import { parseTemplate } from './cfn-yaml.ts';

export const TEMPLATE_FILE = 'template.yaml';
export const REGISTRY_FILE = 'registry/targets.yaml';
export const BUILD_BUILDSPEC_FILE = 'buildspecs/build.yml';
export const DEPLOY_BUILDSPEC_FILE = 'buildspecs/deploy.yml';
export const BUNDLED_REGISTRY_FILE = 'functions/shared/registry/bundled.ts';

/**
 * Added to (queued + job timeout): CodeBuild needs a few minutes to stop a timed-out job and the
 * Build State Change event (or the sweep's BatchGetBuilds) must still arrive before the task gives up.
 */
export const WAIT_MARGIN_SECONDS = 600;

export const BLOCK_NAMES = [
  'wait-seconds',
  'deploy-role-arns',
  'build-source-access',
  'job-spec-digests',
  'schedules',
] as const;
export type BlockName = (typeof BLOCK_NAMES)[number];

/** Block contents as lines relative to the marker's indentation. */
export type Blocks = Record<BlockName, string[]>;

const BEGIN = /^([ \t]*)# BEGIN GENERATED: ([\w-]+)(?: \(npm run registry:derive\))?[ \t]*$/;
const END = /^([ \t]*)# END GENERATED: ([\w-]+)[ \t]*$/;

export class DeriveError extends Error {
  override readonly name = 'DeriveError';
}

// ------------------------------------------------------------------------------------------------
// What the registry says the template must grant
// ------------------------------------------------------------------------------------------------

export interface RegistryGrants {
  /** Every environment's deploy role, sorted, each once. */
  deployRoleArns: string[];
  /** Every application's CodeConnections connection, sorted, each once. */
  connectionArns: string[];
  /** CodeCommit sources as (region, repository name), sorted, each once. */
  codeCommitRepositories: { region: string; name: string }[];
}

const CODECOMMIT_URL =
  /^https:\/\/git-codecommit\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/v1\/repos\/([\w.-]+)$/;

export function registryGrants(registry: Registry): RegistryGrants {
  const roles = new Set<string>();
  const connections = new Set<string>();
  const repositories = new Map<string, { region: string; name: string }>();
  for (const [appName, app] of Object.entries(registry.applications)) {
    for (const env of Object.values(app.environments)) roles.add(env.deployRoleArn);
    if (app.source.connectionArn) connections.add(app.source.connectionArn);
    if (app.source.type === 'CODECOMMIT') {
      const match = CODECOMMIT_URL.exec(app.source.location);
      if (!match) {
        throw new DeriveError(
          `applications.${appName}.source.location: a CODECOMMIT source must be https://git-codecommit.<region>.amazonaws.com/v1/repos/<name>`,
        );
      }
      const [, region = '', name = ''] = match;
      repositories.set(`${region}/${name}`, { region, name });
    }
  }
  const sorted = [...repositories.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, repo]) => repo);
  return {
    deployRoleArns: [...roles].sort(),
    connectionArns: [...connections].sort(),
    codeCommitRepositories: sorted,
  };
}

/** A deploy role created by target-account/template.yaml: `/crossdeploy/crossdeploy-<prefix>-deploy-<region>`. */
const BOOTSTRAP_DEPLOY_ROLE =
  /^arn:aws[a-z-]*:iam::\d{12}:role\/crossdeploy\/crossdeploy-([a-z][a-z0-9]{1,19})-deploy-([a-z0-9-]+)$/;

/**
 * Environments whose deploy role was created by target-account/template.yaml must use that same bootstrap's
 * execution role and bucket, in the environment's region, for a stack named `<prefix>-...`: anything else is
 * refused by IAM at deploy time, with an AccessDenied that names none of this. Roles named otherwise (set up by
 * hand) are not checked.
 */
export function targetPrefixProblems(registry: Registry): string[] {
  const problems: string[] = [];
  for (const [appName, app] of Object.entries(registry.applications)) {
    for (const [envName, env] of Object.entries(app.environments)) {
      const match = BOOTSTRAP_DEPLOY_ROLE.exec(env.deployRoleArn);
      if (!match) continue;
      const [, prefix = '', region = ''] = match;
      const at = `applications.${appName}.environments.${envName}`;
      const bootstrap = `(the bootstrap of prefix ${prefix} in ${env.region})`;
      const roleName = `crossdeploy-${prefix}-deploy-${region}`;
      if (region !== env.region) {
        problems.push(
          `${at}.deployRoleArn: ${roleName} is the deploy role of ${region}, the environment is in ${env.region}`,
        );
        continue;
      }
      if (!env.stackName.startsWith(`${prefix}-`)) {
        problems.push(
          `${at}.stackName: ${env.stackName} does not start with '${prefix}-', the application prefix of its deploy role ${roleName}`,
        );
      }
      const execution = `crossdeploy-${prefix}-cfn-exec-${env.region}`;
      if (env.executionRoleArn.split('/').pop() !== execution) {
        problems.push(`${at}.executionRoleArn: expected ${execution} ${bootstrap}`);
      }
      const bucket = `crossdeploy-${env.accountId}-${env.region}-${prefix}`;
      if (env.artifactsBucket !== bucket)
        problems.push(`${at}.artifactsBucket: expected ${bucket} ${bootstrap}`);
    }
  }
  return problems;
}

// ------------------------------------------------------------------------------------------------
// Block renderers
// ------------------------------------------------------------------------------------------------

// Every ARN here matched the registry schema's patterns, so it needs no YAML quoting.
const listLines = (items: string[]): string[] => items.map((item) => `- ${item}`);

export function deployRoleArnLines(grants: RegistryGrants): string[] {
  if (grants.deployRoleArns.length === 0) {
    throw new DeriveError(
      'the registry names no deploy role: the deployer role would have nothing to assume',
    );
  }
  return listLines(grants.deployRoleArns);
}

export function buildSourceAccessLines(grants: RegistryGrants): string[] {
  const lines: string[] = [];
  // CodeConnections was renamed from CodeStar Connections: each ARN answers to its own service prefix.
  for (const service of ['codeconnections', 'codestar-connections']) {
    const arns = grants.connectionArns.filter((arn) => arn.split(':')[2] === service);
    if (arns.length === 0) continue;
    lines.push(
      `- Sid: ${service === 'codeconnections' ? 'UseRegistryConnections' : 'UseRegistryLegacyConnections'}`,
      '  Effect: Allow',
      '  Action:',
      ...['GetConnection', 'GetConnectionToken', 'UseConnection'].map(
        (action) => `    - ${service}:${action}`,
      ),
      '  Resource:',
      ...arns.map((arn) => `    - ${arn}`),
    );
  }
  if (grants.codeCommitRepositories.length > 0) {
    lines.push(
      '- Sid: PullRegistryCodeCommitRepositories',
      '  Effect: Allow',
      '  Action: codecommit:GitPull',
      '  Resource:',
      ...grants.codeCommitRepositories.map(
        ({ region, name }) =>
          `    - !Sub arn:\${AWS::Partition}:codecommit:${region}:\${AWS::AccountId}:${name}`,
      ),
    );
  }
  if (lines.length === 0) lines.push('# (the registry has no CodeConnections or CodeCommit sources)');
  return lines;
}

/**
 * The JobSpecs custom resource's digest properties. CloudFormation updates a custom resource only when its
 * properties change, so the digests are what makes a changed buildspec reach the bucket; the publisher refuses
 * to publish when its bundled text has another digest (functions/publish-job-specs).
 */
export function jobSpecDigestLines(build: string, deploy: string): string[] {
  for (const [file, text] of [
    [BUILD_BUILDSPEC_FILE, build],
    [DEPLOY_BUILDSPEC_FILE, deploy],
  ] as const) {
    if (text.trim() === '') throw new DeriveError(`${file} is empty`);
  }
  return [`BuildSpecSha256: ${sha256Hex(build)}`, `DeploySpecSha256: ${sha256Hex(deploy)}`];
}

/** Reads a parameter's AllowedValues as positive integers. */
function allowedMinutes(template: ReturnType<typeof parseTemplate>, name: string): number[] {
  const parameter = template.Parameters?.[name];
  const values = parameter?.AllowedValues;
  if (!Array.isArray(values) || values.length === 0) {
    throw new DeriveError(`${TEMPLATE_FILE}: parameter ${name} needs AllowedValues (the wait-seconds keys)`);
  }
  const minutes = values.map(Number);
  if (minutes.some((value) => !Number.isInteger(value) || value <= 0)) {
    throw new DeriveError(`${TEMPLATE_FILE}: parameter ${name}'s AllowedValues must be whole minutes`);
  }
  if (!minutes.includes(Number(parameter?.Default))) {
    throw new DeriveError(`${TEMPLATE_FILE}: parameter ${name}'s Default must be one of its AllowedValues`);
  }
  return minutes;
}

export const waitSeconds = (queuedMinutes: number, jobMinutes: number): number =>
  (queuedMinutes + jobMinutes) * 60 + WAIT_MARGIN_SECONDS;

export function waitSecondsLines(templateText: string): string[] {
  const template = parseTemplate(templateText);
  const queued = allowedMinutes(template, 'QueuedTimeoutMinutes');
  const jobs = [
    ...new Set([
      ...allowedMinutes(template, 'BuildTimeoutMinutes'),
      ...allowedMinutes(template, 'DeployTimeoutMinutes'),
    ]),
  ];
  const byNumber = (a: number, b: number) => a - b;
  const lines = ['WaitSeconds:'];
  for (const q of [...queued].sort(byNumber)) {
    lines.push(`  '${q}':`);
    for (const job of [...jobs].sort(byNumber)) lines.push(`    '${job}': ${waitSeconds(q, job)}`);
  }
  return lines;
}

/** EventBridge Scheduler's placeholder for the tick's time, replaced in the target input at each fire. */
export const SCHEDULED_TIME = '<aws.scheduler.scheduled-time>';
/** Limits of a schedule's name (EventBridge Scheduler) and of a logical id (CloudFormation). */
const SCHEDULE_NAME_MAX = 64;
const LOGICAL_ID_MAX = 255;
/**
 * A tick is retried for at most MAX_TICK_AGE_SECONDS: a promotion that cannot start within the hour is
 * dropped rather than deployed at an unexpected time. Retrying is safe, the workflow claims each tick once.
 */
export const SCHEDULE_RETRY_POLICY = {
  MaximumEventAgeInSeconds: MAX_TICK_AGE_SECONDS,
  MaximumRetryAttempts: 10,
} as const;

const pascal = (name: string) =>
  name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/** A YAML single-quoted scalar: no escapes but '' (the values here are single-line). */
const quoted = (value: string) => `'${value.replaceAll("'", "''")}'`;

export interface ScheduleResource {
  logicalId: string;
  /** `<application>.<schedule>`: unique within the stack's schedule group, since names hold no dot. */
  name: string;
  application: string;
  schedule: Schedule;
}

/** The schedule resources the registry asks for, refusing names EventBridge or CloudFormation would refuse. */
export function scheduleResources(registry: Registry): ScheduleResource[] {
  const resources: ScheduleResource[] = [];
  const ids = new Map<string, string>();
  for (const [application, app] of Object.entries(registry.applications)) {
    app.schedules.forEach((schedule, i) => {
      const at = `applications.${application}.schedules.${i}`;
      const name = `${application}.${schedule.name}`;
      if (name.length > SCHEDULE_NAME_MAX) {
        throw new DeriveError(
          `${at}: the EventBridge Scheduler name "${name}" (<application>.<schedule name>) is ${name.length} characters, more than ${SCHEDULE_NAME_MAX}: shorten the schedule name`,
        );
      }
      const logicalId = `Schedule${pascal(application)}${pascal(schedule.name)}`;
      if (logicalId.length > LOGICAL_ID_MAX) {
        throw new DeriveError(`${at}: the logical id ${logicalId} is longer than ${LOGICAL_ID_MAX}`);
      }
      const other = ids.get(logicalId);
      if (other) {
        throw new DeriveError(
          `${at}: its logical id ${logicalId} is also that of ${other}: rename one of the two schedules`,
        );
      }
      ids.set(logicalId, name);
      resources.push({ logicalId, name, application, schedule });
    });
  }
  return resources;
}

/**
 * One AWS::Scheduler::Schedule per registry schedule, in the stack's schedule group (named after the stack,
 * so two installations in one account never share a schedule). A disabled schedule stays, `State:
 * DISABLED`: pausing and resuming it is an in-place update that keeps its name. The target input is the
 * workflow input local mode gives the same tick (scheduleTickInput), with EventBridge's time placeholder.
 */
export function scheduleLines(registry: Registry): string[] {
  const resources = scheduleResources(registry);
  if (resources.length === 0) return ['# (the registry declares no schedules)'];
  return resources.flatMap(({ logicalId, name, application, schedule }) => [
    `${logicalId}:`,
    '  Type: AWS::Scheduler::Schedule',
    '  Properties:',
    '    GroupName: !Ref ScheduleGroup',
    `    Name: ${name}`,
    `    Description: ${quoted(`Promotes ${application} from ${schedule.from} to ${schedule.to} (registry schedule ${schedule.name})`)}`,
    `    State: ${schedule.enabled ? 'ENABLED' : 'DISABLED'}`,
    `    ScheduleExpression: ${quoted(schedule.schedule.trim())}`,
    `    ScheduleExpressionTimezone: ${quoted(schedule.timezone)}`,
    '    FlexibleTimeWindow:',
    "      Mode: 'OFF'",
    '    Target:',
    '      Arn: !Ref DeployStateMachine',
    '      RoleArn: !GetAtt SchedulerRole.Arn',
    `      Input: ${quoted(JSON.stringify(scheduleTickInput(application, schedule, SCHEDULED_TIME)))}`,
    '      RetryPolicy:',
    ...Object.entries(SCHEDULE_RETRY_POLICY).map(([key, value]) => `        ${key}: ${value}`),
  ]);
}

// ------------------------------------------------------------------------------------------------
// Markers
// ------------------------------------------------------------------------------------------------

interface Marked {
  name: string;
  indent: string;
  /** Index of the BEGIN line and of the END line in the template's lines. */
  begin: number;
  end: number;
}

function findBlocks(lines: string[]): Marked[] {
  const found: Marked[] = [];
  let open: { name: string; indent: string; begin: number } | undefined;
  lines.forEach((line, index) => {
    const begin = BEGIN.exec(line);
    if (begin) {
      if (open) throw new DeriveError(`line ${index + 1}: BEGIN ${begin[2]} inside block ${open.name}`);
      open = { name: begin[2] ?? '', indent: begin[1] ?? '', begin: index };
      return;
    }
    const end = END.exec(line);
    if (end) {
      if (!open || open.name !== end[2])
        throw new DeriveError(`line ${index + 1}: END ${end[2]} without its BEGIN`);
      found.push({ ...open, end: index });
      open = undefined;
    }
  });
  if (open) throw new DeriveError(`block ${open.name} has no END GENERATED marker`);
  const names = found.map((block) => block.name);
  for (const name of BLOCK_NAMES) {
    const count = names.filter((n) => n === name).length;
    if (count !== 1)
      throw new DeriveError(`${TEMPLATE_FILE} needs exactly one generated block ${name} (found ${count})`);
  }
  const unknown = names.filter((name) => !(BLOCK_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new DeriveError(`${TEMPLATE_FILE} has unknown generated blocks: ${unknown.join(', ')}`);
  return found;
}

const indentLines = (indent: string, lines: string[]) =>
  lines.map((line) => (line === '' ? '' : indent + line));

/**
 * The template text with the given blocks replaced (blocks left out keep their text), and the names
 * of the given blocks whose text changed.
 */
export function renderTemplate(
  templateText: string,
  blocks: Partial<Blocks>,
): { text: string; stale: BlockName[] } {
  const lines = templateText.split('\n');
  const marked = findBlocks(lines);
  const stale: BlockName[] = [];
  const out: string[] = [];
  let cursor = 0;
  for (const block of marked) {
    const name = block.name as BlockName;
    const current = lines.slice(block.begin + 1, block.end);
    const content = blocks[name];
    const wanted = content ? indentLines(block.indent, content) : current;
    if (wanted.join('\n') !== current.join('\n')) stale.push(name);
    out.push(...lines.slice(cursor, block.begin + 1), ...wanted);
    cursor = block.end;
  }
  out.push(...lines.slice(cursor));
  return { text: out.join('\n'), stale };
}

// ------------------------------------------------------------------------------------------------
// Entry points
// ------------------------------------------------------------------------------------------------

function readSource(root: string, file: string): string {
  try {
    return readFileSync(join(root, file), 'utf8');
  } catch (cause) {
    throw new DeriveError(`cannot read ${file}: template.yaml is derived from it`, { cause });
  }
}

export interface Derived {
  blocks: Partial<Blocks>;
  /** Blocks that could not be derived, with the reason; they keep their current text. */
  errors: Partial<Record<BlockName, string>>;
}

/** Every block's wanted content, from the files under `root`. One missing source spoils only its blocks. */
export function deriveBlocks(root: string, templateText: string): Derived {
  const derived: Derived = { blocks: {}, errors: {} };
  const attempt = (names: BlockName[], make: () => string[][]) => {
    try {
      const contents = make();
      names.forEach((name, i) => {
        derived.blocks[name] = contents[i] ?? [];
      });
    } catch (error) {
      for (const name of names) derived.errors[name] = (error as Error).message;
    }
  };
  attempt(['wait-seconds'], () => [waitSecondsLines(templateText)]);
  const registry = () => loadRegistryFile(join(root, REGISTRY_FILE));
  attempt(['deploy-role-arns', 'build-source-access'], () => {
    const problems = targetPrefixProblems(registry());
    if (problems.length > 0) throw new DeriveError(problems.join('; '));
    const grants = registryGrants(registry());
    return [deployRoleArnLines(grants), buildSourceAccessLines(grants)];
  });
  attempt(['schedules'], () => [scheduleLines(registry())]);
  attempt(['job-spec-digests'], () => [
    jobSpecDigestLines(readSource(root, BUILD_BUILDSPEC_FILE), readSource(root, DEPLOY_BUILDSPEC_FILE)),
  ]);
  return derived;
}

export interface DeriveResult {
  /** Blocks whose text differs from what their sources say. */
  stale: BlockName[];
  /** Blocks that could not be derived at all (a missing or invalid source). */
  errors: Partial<Record<BlockName, string>>;
  text: string;
}

/** Computes the derived template; writes it only when `write` is set and something changed. */
export function derive(root: string, { write }: { write: boolean }): DeriveResult {
  const templatePath = join(root, TEMPLATE_FILE);
  const templateText = readSource(root, TEMPLATE_FILE);
  const { blocks, errors } = deriveBlocks(root, templateText);
  const result = renderTemplate(templateText, blocks);
  // A rendered template that does not parse would only fail later, in CloudFormation.
  parseTemplate(result.text);
  if (write && result.stale.length > 0) writeFileSync(templatePath, result.text);
  return { ...result, errors };
}

/** One line per problem, for people: stale blocks and blocks that could not be derived. */
export function describeProblems({ stale, errors }: Pick<DeriveResult, 'stale' | 'errors'>): string[] {
  return [
    ...stale.map((name) => `${name}: stale (run \`npm run registry:derive\`)`),
    ...Object.entries(errors).map(([name, message]) => `${name}: ${message}`),
  ];
}

/** Whether the registry module the functions bundle matches registry/targets.yaml; rewrites it if asked. */
export function syncBundledRegistry(root: string, { write }: { write: boolean }): boolean {
  // bundle-registry.ts works on paths relative to the working directory.
  if (resolve(process.cwd()) !== resolve(root)) throw new DeriveError('run from the repository root');
  const path = join(root, BUNDLED_REGISTRY_FILE);
  const wanted = bundledRegistrySource();
  const fresh = existsSync(path) && readFileSync(path, 'utf8') === wanted;
  if (write && !fresh) writeFileSync(path, wanted);
  return fresh;
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const root = resolve(import.meta.dirname, '..');
  try {
    process.chdir(root);
    const result = derive(root, { write: !check });
    const registryFresh = syncBundledRegistry(root, { write: !check });
    const problems = describeProblems(check ? result : { ...result, stale: [] });
    if (check && !registryFresh)
      problems.push(`${BUNDLED_REGISTRY_FILE}: stale (run \`npm run registry:derive\`)`);
    if (!check) {
      const rewritten = [...result.stale, ...(registryFresh ? [] : [BUNDLED_REGISTRY_FILE])];
      if (rewritten.length > 0) console.log(`rewrote ${rewritten.join(', ')}`);
    }
    if (problems.length > 0) {
      console.error(`registry-derive:\n  ${problems.join('\n  ')}`);
      return 1;
    }
    console.log(`${TEMPLATE_FILE} and ${BUNDLED_REGISTRY_FILE} are up to date`);
    return 0;
  } catch (error) {
    console.error(`registry-derive: ${(error as Error).message}`);
    return 2;
  }
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
