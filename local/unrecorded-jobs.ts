import type { DeploymentStore } from '#shared/ports.ts';
import type { Deployment, JobKind } from '#shared/types.ts';
import type { LocalJobRunner } from './job-runner.ts';

/**
 * The store as the settle step reads it in local mode: a deployment's record plus any job the local runner
 * started for it that the record does not name. Start Job writes the job's id after starting it; when that
 * write fails for good the deployment fails, and settle, which stops what the record names, would leave the
 * job running under a failed deployment (a deploy job even after the lock is released). The runner knows
 * its jobs by the deployment's idempotency token, so settle sees, stops and waits for that job too.
 */
export function withUnrecordedJobs(store: DeploymentStore, runner: LocalJobRunner): DeploymentStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'getDeployment') return value;
      return async (deploymentId: string): Promise<Deployment | undefined> => {
        const deployment = await target.getDeployment(deploymentId);
        if (!deployment) return deployment;
        let jobs = deployment.jobs;
        for (const job of ['build', 'deploy'] as JobKind[]) {
          if (jobs?.[job]) continue;
          const started = runner.jobOf(deploymentId, job);
          if (!started) continue;
          jobs = { ...jobs, [job]: { buildId: started.buildId, startedAt: deployment.updatedAt } };
        }
        return jobs === deployment.jobs ? deployment : { ...deployment, jobs };
      };
    },
  });
}
