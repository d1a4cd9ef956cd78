import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { StsTargetAccess } from '#shared/aws/sts.ts';
import { ChangeSetError, ChangeSetStaleError } from '#shared/errors.ts';
import type {
  AssumedIdentity,
  AssumeRoleParams,
  ChangeSetInfo,
  ChangeSets,
  DeploymentStore,
  ReviewTemplates,
  RoleAssumer,
  StackInspector,
} from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { roleSessionName } from '#shared/registry/requester.ts';
import type { ResourceChangeSummary } from '#shared/types.ts';

/**
 * Target-account access in local mode. Environments with `runner: simulate` get a simulated STS (the
 * environment's own account, clearly labelled); every other environment gets the real StsTargetAccess, with
 * the user's own credential chain as the source.
 */

export type LocalRunner = 'local' | 'simulate';

/** In local mode jobs run on this machine: `codebuild` (the registry default) runs with the bash runner. */
export const localRunnerOf = (runner: string): LocalRunner => (runner === 'simulate' ? 'simulate' : 'local');

/** Where `runner: simulate` deploy jobs leave their change sets (local/shims/sam) for SimulatedTargetAccess. */
export const simulatedChangeSetsDir = (dataDir: string) => join(dataDir, 'simulated-change-sets');

type Resources = Record<string, { Type?: string; Properties?: unknown }>;
interface SimulatedChangeSet {
  changeSetArn: string;
  stackName: string;
  resources: Resources;
  /** The whole built template (older simulated change sets hold only its resources). */
  template?: Record<string, unknown>;
  /** The simulated stack's template digest when the change set was described first (staleness). */
  baseline?: string;
}

/**
 * Stands in for STS and CloudFormation for simulated environments: answers without any AWS call. Change
 * sets compare the built template with what the last executed simulated change set left as the stack, so a
 * review in local mode shows real adds, modifies and removes; executing one moves the simulated stack on,
 * and a change set made before that is refused as stale, as CloudFormation would.
 */
export class SimulatedTargetAccess implements RoleAssumer, StackInspector, ChangeSets {
  private readonly dir: string | undefined;

  constructor(options: { dataDir?: string } = {}) {
    this.dir = options.dataDir ? simulatedChangeSetsDir(options.dataDir) : undefined;
  }

  async preflight(params: AssumeRoleParams): Promise<AssumedIdentity> {
    const [, account = '000000000000', roleName = 'simulated'] =
      /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(params.roleArn) ?? [];
    return {
      assumedRoleArn: `arn:aws:sts::${account}:assumed-role/${roleName}/${params.sessionName}`,
      account,
      expiration: new Date(Date.now() + params.durationSeconds * 1000).toISOString(),
    };
  }

  /** A simulated deploy changes no stack, so there is never one in progress. */
  async stackStatus(params: AssumeRoleParams & { stackName: string }): Promise<string | undefined> {
    return this.dir && existsSync(this.stackFile(params.stackName)) ? 'UPDATE_COMPLETE' : undefined;
  }

  async describeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<ChangeSetInfo> {
    const changeSet = this.read(params.changeSetArn);
    const stack = this.stack(changeSet.stackName);
    if (changeSet.baseline === undefined) {
      changeSet.baseline = digest(stack);
      writeFileSync(this.file(params.changeSetArn), JSON.stringify(changeSet));
    }
    return {
      changeSetArn: changeSet.changeSetArn,
      changeSetId: changeSet.changeSetArn.split('/')[1] ?? '',
      status: 'CREATE_COMPLETE',
      executionStatus: changeSet.baseline === digest(stack) ? 'AVAILABLE' : 'OBSOLETE',
      changes: diffResources(stack, changeSet.resources),
      // `sam deploy` passes the registry's overrides to every simulated change set alike.
      parameters: {},
    };
  }

  async executeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void> {
    const changeSet = this.read(params.changeSetArn);
    if (changeSet.baseline !== undefined && changeSet.baseline !== digest(this.stack(changeSet.stackName))) {
      throw new ChangeSetStaleError(
        'CloudFormation (simulated) refused the approved change set: the stack changed after it was created, so it no longer applies as reviewed. Deploy again to review a fresh change set.',
      );
    }
    mkdirSync(join(this.dir ?? '', 'stacks'), { recursive: true });
    writeFileSync(this.stackFile(changeSet.stackName), JSON.stringify(changeSet.resources));
    writeFileSync(
      this.stackFile(changeSet.stackName, '.template'),
      JSON.stringify(changeSet.template ?? { Resources: changeSet.resources }),
    );
    rmSync(this.file(params.changeSetArn), { force: true });
  }

  /** The built template stands for the processed one: the review reads SAM shorthand as SAM will expand it. */
  async reviewTemplates(
    params: AssumeRoleParams & { changeSetArn: string; stackName: string },
  ): Promise<ReviewTemplates> {
    const changeSet = this.read(params.changeSetArn);
    const proposed = JSON.stringify(changeSet.template ?? { Resources: changeSet.resources });
    if (!this.dir || !existsSync(this.stackFile(params.stackName))) return { proposed };
    let template: string;
    try {
      template = readFileSync(this.stackFile(params.stackName, '.template'), 'utf8');
    } catch {
      template = JSON.stringify({ Resources: this.stack(params.stackName) });
    }
    // Like its change sets (describeChangeSet), a simulated stack runs with no parameter values of its own.
    return { proposed, current: { template, parameters: {} } };
  }

  async deleteChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void> {
    rmSync(this.file(params.changeSetArn), { force: true });
  }

  private file(arn: string): string {
    const name = arn.split('/').pop() ?? '';
    if (!this.dir || !/^[A-Za-z0-9-]{1,128}$/.test(name))
      throw new ChangeSetError('no such simulated change set');
    return join(this.dir, `${name}.json`);
  }

  private stackFile(stackName: string, suffix = ''): string {
    return join(this.dir ?? '', 'stacks', `${stackName.replace(/[^A-Za-z0-9-]/g, '_')}${suffix}.json`);
  }

  private read(arn: string): SimulatedChangeSet {
    try {
      return JSON.parse(readFileSync(this.file(arn), 'utf8')) as SimulatedChangeSet;
    } catch (error) {
      if (error instanceof ChangeSetError) throw error;
      throw new ChangeSetError('the change set no longer exists (simulated)');
    }
  }

  private stack(stackName: string): Resources {
    try {
      return JSON.parse(readFileSync(this.stackFile(stackName), 'utf8')) as Resources;
    } catch {
      return {};
    }
  }
}

const digest = (resources: Resources) => createHash('sha256').update(JSON.stringify(resources)).digest('hex');

/** What CloudFormation would list, roughly: adds, removes, and modifies of resources whose definition differs. */
function diffResources(before: Resources, after: Resources): ResourceChangeSummary[] {
  const changes: ResourceChangeSummary[] = [];
  for (const [logicalId, resource] of Object.entries(after)) {
    const resourceType = resource?.Type ?? 'unknown';
    const previous = before[logicalId];
    if (!previous) changes.push({ action: 'Add', logicalId, resourceType });
    else if (JSON.stringify(previous) !== JSON.stringify(resource)) {
      // A changed type is a replacement; a changed definition is assumed to update in place.
      const replacement = previous.Type !== resource?.Type ? 'True' : 'False';
      changes.push({ action: 'Modify', logicalId, resourceType, replacement });
    }
  }
  for (const [logicalId, resource] of Object.entries(before)) {
    if (!Object.hasOwn(after, logicalId))
      changes.push({ action: 'Remove', logicalId, resourceType: resource?.Type ?? 'unknown' });
  }
  return changes;
}

/**
 * Picks real or simulated access per deployment. The session name carries the deployment id (requester.ts),
 * which names the environment and so its runner; the role ARN is the fallback (real unless every environment
 * using that role is simulated, so a real target is never answered by the simulation).
 */
export class LocalTargetAccess implements RoleAssumer, StackInspector, ChangeSets {
  private readonly store: DeploymentStore;
  private readonly registry: Registry;
  private readonly simulated: SimulatedTargetAccess;
  private readonly realByRegion = new Map<string, StsTargetAccess>();

  constructor(options: { store: DeploymentStore; registry: Registry; dataDir?: string }) {
    this.store = options.store;
    this.registry = options.registry;
    this.simulated = new SimulatedTargetAccess(options.dataDir ? { dataDir: options.dataDir } : {});
  }

  async describeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<ChangeSetInfo> {
    return (await this.pick(params)).describeChangeSet(params);
  }

  async executeChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void> {
    return (await this.pick(params)).executeChangeSet(params);
  }

  async deleteChangeSet(params: AssumeRoleParams & { changeSetArn: string }): Promise<void> {
    return (await this.pick(params)).deleteChangeSet(params);
  }

  async reviewTemplates(
    params: AssumeRoleParams & { changeSetArn: string; stackName: string },
  ): Promise<ReviewTemplates> {
    return (await this.pick(params)).reviewTemplates(params);
  }

  async preflight(params: AssumeRoleParams): Promise<AssumedIdentity> {
    return (await this.pick(params)).preflight(params);
  }

  async stackStatus(params: AssumeRoleParams & { stackName: string }): Promise<string | undefined> {
    return (await this.pick(params)).stackStatus(params);
  }

  private async pick(params: AssumeRoleParams): Promise<RoleAssumer & StackInspector & ChangeSets> {
    return (await this.runnerFor(params)) === 'simulate' ? this.simulated : this.real(params.region);
  }

  private async runnerFor(params: AssumeRoleParams): Promise<LocalRunner> {
    const id = /^crossdeploy-(.+)$/.exec(params.sessionName)?.[1];
    const deployment = id ? await this.store.getDeployment(id) : undefined;
    if (deployment && roleSessionName(deployment.deploymentId) === params.sessionName) {
      const target = findTarget(this.registry, deployment.application, deployment.environment);
      if (target) return localRunnerOf(target.env.runner);
    }
    const runners = Object.values(this.registry.applications)
      .flatMap((app) => Object.values(app.environments))
      .filter((env) => env.deployRoleArn === params.roleArn)
      .map((env) => localRunnerOf(env.runner));
    return runners.length > 0 && runners.every((r) => r === 'simulate') ? 'simulate' : 'local';
  }

  /** The user's own credential chain, through STS in the target's region; one client per region. */
  private real(region: string): StsTargetAccess {
    let access = this.realByRegion.get(region);
    if (!access) {
      access = new StsTargetAccess({ sts: new STSClient({ region }) });
      this.realByRegion.set(region, access);
    }
    return access;
  }
}

/** Where the user's AWS credentials come from, if anywhere (bounded: no long IMDS wait off EC2). */
export async function detectAwsCredentials(
  timeoutMs = 1500,
): Promise<{ available: boolean; detail: string }> {
  const provider = fromNodeProviderChain({ timeout: 1000, maxRetries: 0 });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('timed out')), timeoutMs).unref(),
  );
  try {
    const credentials = await Promise.race([provider(), timeout]);
    const source = process.env.AWS_PROFILE
      ? `profile ${process.env.AWS_PROFILE}`
      : 'the default credential chain';
    return { available: Boolean(credentials.accessKeyId), detail: source };
  } catch (error) {
    return { available: false, detail: (error as Error).message.split('\n')[0] ?? 'none found' };
  }
}
