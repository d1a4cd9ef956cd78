import { NotSettledError } from '#shared/errors.ts';
import type { DeploymentStore } from '#shared/ports.ts';
import type { Registry } from '#shared/registry/registry.ts';
import type { Deployment } from '#shared/types.ts';
import {
  type Ending,
  type ReconcileDeps,
  reconcileDeployment,
  sweepLostJobEvents,
} from '../functions/reconcile/core.ts';
import type { LocalJobRunner } from './job-runner.ts';
import { type InstanceOwnership, jobsAccountedFor } from './ownership.ts';

/**
 * Start-up recovery, before the server takes requests. A previous server process may have been killed
 * (kill -9, a crash, a reboot) mid-deployment; nothing of its workflow survives, so:
 * 1. its job processes are found by their recorded process group and leader start time (both must match,
 *    so a reused pid is never signalled) and stopped;
 * 2. every deployment still in flight that is this server's goes through the reconcile core (settle, FAILED
 *    with ORCHESTRATOR_RESTARTED, audit event, lock released only if still its owner) — the path the
 *    reconcile Lambda takes in AWS. On a table shared with other servers, "this server's" means owned by
 *    this data directory's instance, or by an instance whose lease ran out and whose jobs all reported
 *    (local/ownership.ts): a running server's deployments, and a dead server's job we cannot see, are left;
 * 3. a lock left behind by a deployment that did end (the server died between Record Result and Release
 *    Lock) is released through the same core.
 */

export const RESTARTED: Ending = {
  status: 'FAILED',
  code: 'ORCHESTRATOR_RESTARTED',
  message:
    'the local crossdeploy server stopped while this deployment was in flight; at the next start its jobs were stopped and the deployment settled',
};

export interface RecoveryReport {
  stoppedJobs: { buildId: string; deploymentId: string; signalled: boolean }[];
  reconciled: string[];
  /** Deployments that could not be settled yet (e.g. a stack still in progress): retried in the background. */
  pending: { deploymentId: string; reason: string }[];
  /** Local deployments in flight that are not this server's to settle, and why. */
  left: { deploymentId: string; reason: string }[];
}

export async function recoverOnStart(deps: {
  store: DeploymentStore;
  registry: Registry;
  runner: LocalJobRunner;
  reconcileDeps: ReconcileDeps;
  /** Per deployment, at start-up; whatever takes longer continues in the background. */
  budget?: { budgetMs: number; pollMs: number };
  /**
   * The store is this server's own (the embedded one): everything in flight in it was started here, from
   * the API, chat or a schedule. Otherwise only what `ownership` says is ours (nothing without it).
   */
  ownsStore?: boolean;
  ownership?: Pick<InstanceOwnership, 'ownerOf'>;
}): Promise<RecoveryReport> {
  const { store, runner, registry } = deps;
  const budget = deps.budget ?? { budgetMs: 30_000, pollMs: 2_000 };
  const report: RecoveryReport = { stoppedJobs: [], reconciled: [], pending: [], left: [] };

  for (const job of runner.unfinishedFromEarlierRuns()) {
    const signalled = await runner.stopSurvivor(
      job,
      'stopped at start-up: the server that ran it had stopped',
    );
    report.stoppedJobs.push({ buildId: job.buildId, deploymentId: job.deploymentId, signalled });
  }

  const candidates = new Map<string, Deployment>();
  for (const d of await store.listActive()) candidates.set(d.deploymentId, d);
  for (const [application, app] of Object.entries(registry.applications)) {
    for (const environment of Object.keys(app.environments)) {
      const lock = await store.getLock(application, environment);
      const owner = lock ? await store.getDeployment(lock.owner) : undefined;
      // No local workflow survives a restart, so a lock our deployment holds is a leftover.
      if (owner) candidates.set(owner.deploymentId, owner);
    }
  }
  const ids = new Set<string>();
  for (const deployment of candidates.values()) {
    const verdict = await whose(deployment, deps);
    if (verdict === 'ours') ids.add(deployment.deploymentId);
    else if (verdict) report.left.push({ deploymentId: deployment.deploymentId, reason: verdict.reason });
  }

  // A job that ended (or was just stopped) without its end reaching the deployment: record it first, as the
  // lost-event sweep does, so the record shows how the job ended. Only this runner's jobs are found.
  if (ids.size > 0) await sweepLostJobEvents(deps.reconcileDeps);
  for (const deploymentId of ids) {
    try {
      await reconcileDeployment(deploymentId, RESTARTED, deps.reconcileDeps, budget);
      report.reconciled.push(deploymentId);
    } catch (error) {
      const reason =
        error instanceof NotSettledError
          ? error.message
          : `${(error as Error).name}: ${(error as Error).message}`;
      report.pending.push({ deploymentId, reason });
    }
  }
  return report;
}

/**
 * Whether recovery may settle a deployment: 'ours', or why not (undefined when it is not local mode's at
 * all, e.g. a deployed orchestrator's on a shared table).
 */
async function whose(
  deployment: Deployment,
  deps: { ownsStore?: boolean; ownership?: Pick<InstanceOwnership, 'ownerOf'> },
): Promise<'ours' | { reason: string } | undefined> {
  if (deps.ownsStore) return 'ours';
  const owner = deps.ownership
    ? await deps.ownership.ownerOf(deployment.deploymentId)
    : { kind: 'unknown' as const };
  switch (owner.kind) {
    case 'mine':
      return 'ours';
    case 'live':
      return {
        reason: `another server owns it (instance ${owner.instanceId}, lease until ${owner.leaseExpiresAt})`,
      };
    case 'gone':
      if (jobsAccountedFor(deployment)) return 'ours';
      return {
        reason: `its server (instance ${owner.instanceId}) is gone since ${owner.since}, but its job ran in that server's data directory and may still run: restart that server to settle it`,
      };
    case 'unknown':
      return deployment.trigger === 'local'
        ? { reason: 'no local server instance is recorded as its owner' }
        : undefined;
  }
}

/** Keeps reconciling what start-up could not settle, until it is settled or the server stops. */
export function retryPending(
  pending: RecoveryReport['pending'],
  reconcileDeps: ReconcileDeps,
  isStopped: () => boolean,
  onDone: (deploymentId: string, error?: unknown) => void,
): void {
  for (const { deploymentId } of pending) {
    void (async () => {
      for (let attempt = 1; !isStopped(); attempt++) {
        try {
          await reconcileDeployment(deploymentId, RESTARTED, reconcileDeps, {
            budgetMs: 5 * 60_000,
            pollMs: 5_000,
          });
          onDone(deploymentId);
          return;
        } catch (error) {
          if (attempt % 5 === 0) onDone(deploymentId, error);
          await new Promise((resolve) => setTimeout(resolve, Math.min(60_000, 5_000 * attempt)).unref());
        }
      }
    })();
  }
}
