import { STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { StsTargetAccess } from '#shared/aws/sts.ts';
import type {
  AssumedIdentity,
  AssumeRoleParams,
  DeploymentStore,
  RoleAssumer,
  StackInspector,
} from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { roleSessionName } from '#shared/registry/requester.ts';

/**
 * Target-account access in local mode. Environments with `runner: simulate` get a simulated STS (the
 * environment's own account, clearly labelled); every other environment gets the real StsTargetAccess, with
 * the user's own credential chain as the source.
 */

export type LocalRunner = 'local' | 'simulate';

/** In local mode jobs run on this machine: `codebuild` (the registry default) runs with the bash runner. */
export const localRunnerOf = (runner: string): LocalRunner => (runner === 'simulate' ? 'simulate' : 'local');

/** Stands in for STS and CloudFormation for simulated environments: answers without any AWS call. */
export class SimulatedTargetAccess implements RoleAssumer, StackInspector {
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
  async stackStatus(): Promise<string | undefined> {
    return undefined;
  }
}

/**
 * Picks real or simulated access per deployment. The session name carries the deployment id (requester.ts),
 * which names the environment and so its runner; the role ARN is the fallback (real unless every environment
 * using that role is simulated, so a real target is never answered by the simulation).
 */
export class LocalTargetAccess implements RoleAssumer, StackInspector {
  private readonly store: DeploymentStore;
  private readonly registry: Registry;
  private readonly simulated = new SimulatedTargetAccess();
  private readonly realByRegion = new Map<string, StsTargetAccess>();

  constructor(options: { store: DeploymentStore; registry: Registry }) {
    this.store = options.store;
    this.registry = options.registry;
  }

  async preflight(params: AssumeRoleParams): Promise<AssumedIdentity> {
    return (await this.pick(params)).preflight(params);
  }

  async stackStatus(params: AssumeRoleParams & { stackName: string }): Promise<string | undefined> {
    return (await this.pick(params)).stackStatus(params);
  }

  private async pick(params: AssumeRoleParams): Promise<RoleAssumer & StackInspector> {
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
