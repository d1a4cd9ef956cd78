import type { DeploymentStore } from '../ports.ts';
import type { Deployment } from '../types.ts';

/**
 * Gives a successful, non-dry-run deployment the next release number of its application+environment.
 * The release items are the source of truth: the next number is the newest one plus one, claimed with a
 * conditional put, so concurrent completions never share a number and a retry never skips one (a retried
 * step finds its own claim first). No counter, no transaction.
 */
export async function assignRelease(
  store: DeploymentStore,
  deployment: Deployment,
  at: string,
): Promise<number> {
  if (deployment.release !== undefined) return deployment.release;
  for (;;) {
    const latest = await store.latestRelease(deployment.application, deployment.environment);
    if (latest?.deploymentId === deployment.deploymentId) return latest.release;
    const release = (latest?.release ?? 0) + 1;
    const claimed = await store.putRelease({
      application: deployment.application,
      environment: deployment.environment,
      release,
      deploymentId: deployment.deploymentId,
      at,
    });
    if (claimed) return release;
  }
}
