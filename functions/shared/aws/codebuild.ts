import {
  BatchGetBuildsCommand,
  type Build,
  type CodeBuildClient,
  type SourceType,
  StartBuildCommand,
  StopBuildCommand,
} from '@aws-sdk/client-codebuild';
import { ConfigError, JobStartError, TransientError } from '../errors.ts';
import type { JobInfo, JobRunner, JobStart } from '../ports.ts';
import type { JobKind, JobStatus } from '../types.ts';

const TRANSIENT = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'ServiceUnavailableException',
  'InternalFailure',
]);

/**
 * CodeBuild behind the JobRunner port. The buildspecs always come from this repository (buildspecOverride,
 * naming the copies the stack published: functions/shared/jobs/job-specs.ts): an application's own buildspec.yml
 * is never run.
 */
export class CodeBuildJobRunner implements JobRunner {
  private readonly client: CodeBuildClient;
  private readonly projects: Record<JobKind, string>;
  private readonly buildspecs: Record<JobKind, string> | undefined;
  private readonly region: string;

  constructor(options: {
    client: CodeBuildClient;
    buildProject: string;
    deployProject: string;
    /**
     * The S3 ARNs of the published buildspecs (the JobSpecs custom resource): only StartJob is given them,
     * the other functions only describe and stop builds.
     */
    buildspecs?: Record<JobKind, string>;
    region: string;
  }) {
    this.client = options.client;
    this.projects = { build: options.buildProject, deploy: options.deployProject };
    this.buildspecs = options.buildspecs;
    this.region = options.region;
  }

  async start(job: JobStart) {
    if (!this.buildspecs) {
      throw new ConfigError(
        'this runner was built without the published buildspec locations: it cannot start jobs',
      );
    }
    const buildspecOverride = this.buildspecs[job.job];
    const environmentVariablesOverride = Object.entries(job.environmentVariables).map(([name, value]) => ({
      name,
      value,
      type: 'PLAINTEXT' as const,
    }));
    try {
      const { build } = await this.client.send(
        new StartBuildCommand({
          projectName: this.projects[job.job],
          idempotencyToken: job.idempotencyToken,
          buildspecOverride,
          environmentVariablesOverride,
          ...(job.source
            ? {
                sourceTypeOverride: job.source.type as SourceType,
                sourceLocationOverride: job.source.location,
                sourceVersion: job.source.version,
                gitCloneDepth: 1,
                ...(job.source.connectionArn
                  ? {
                      sourceAuthOverride: {
                        type: 'CODECONNECTIONS' as const,
                        resource: job.source.connectionArn,
                      },
                    }
                  : {}),
              }
            : {}),
        }),
      );
      if (!build?.id) throw new JobStartError(`CodeBuild returned no build id for the ${job.job} job`);
      return { buildId: build.id, logUrl: this.consoleUrl(build.id) };
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (TRANSIENT.has(name)) throw new TransientError(`CodeBuild StartBuild: ${name}`, { cause: error });
      throw error;
    }
  }

  async describe(buildIds: string[]): Promise<JobInfo[]> {
    if (buildIds.length === 0) return [];
    const { builds = [] } = await this.client.send(new BatchGetBuildsCommand({ ids: buildIds }));
    return builds.map((build) => toJobInfo(build, this.consoleUrl(build.id ?? '')));
  }

  async stop(buildId: string) {
    try {
      await this.client.send(new StopBuildCommand({ id: buildId }));
    } catch (error) {
      // Stopping a build that already completed is the outcome we wanted.
      if ((error as { name?: string }).name !== 'InvalidInputException') throw error;
    }
  }

  private consoleUrl(buildId: string): string {
    const [project, ...rest] = buildId.split(':');
    const id = encodeURIComponent(`${project}:${rest.join(':')}`);
    return `https://${this.region}.console.aws.amazon.com/codesuite/codebuild/projects/${project}/build/${id}/log`;
  }
}

function toJobInfo(build: Build, logUrl: string): JobInfo {
  const variables = Object.fromEntries(
    (build.environment?.environmentVariables ?? []).map((v) => [v.name ?? '', v.value ?? '']),
  );
  const exportedVariables = Object.fromEntries(
    (build.exportedEnvironmentVariables ?? []).map((v) => [v.name ?? '', v.value ?? '']),
  );
  const job = variables.CROSSDEPLOY_JOB;
  return {
    buildId: build.id ?? '',
    ...(variables.DEPLOYMENT_ID ? { deploymentId: variables.DEPLOYMENT_ID } : {}),
    ...(job === 'build' || job === 'deploy' ? { job } : {}),
    status: (build.buildStatus ?? 'IN_PROGRESS') as JobStatus,
    complete: build.buildComplete === true,
    ...(build.resolvedSourceVersion ? { resolvedCommit: build.resolvedSourceVersion } : {}),
    exportedVariables,
    environmentVariables: variables,
    logUrl,
  };
}
