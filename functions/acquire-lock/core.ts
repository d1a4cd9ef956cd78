import { activeFreeze } from '#shared/calendar.ts';
import { finish, recordEvent } from '#shared/deployments.ts';
import { JobStartError } from '#shared/errors.ts';
import { auditFreezeOverride, hasFreezeOverride } from '#shared/freeze-override.ts';
import type { Clock, DeploymentStore } from '#shared/ports.ts';
import { findTarget, type Registry } from '#shared/registry.ts';
import { type Deployment, isTerminal, type Lock, type Ticket } from '#shared/types.ts';

export interface AcquireLockDeps {
  store: DeploymentStore;
  clock: Clock;
  registry: Registry;
  /** At least the deploy job's queued + build timeout plus a margin, so a live deploy never loses its lease. */
  leaseSeconds: number;
}

export type AcquireLockOutput =
  | { outcome: 'ACQUIRED'; leaseExpiresAt: string }
  | { outcome: 'WAITING'; behind: string }
  | { outcome: 'ENDED'; status: string };

/** How many queue entries one attempt reads: stale ones (ended deployments) are cleared as it goes. */
const QUEUE_PAGE = 25;

/**
 * One deploy per application+environment. The environment's mode decides what a busy environment means:
 * - `queued`: requests run one at a time in request order. Each accepted request holds a ticket (written by
 *   Validate Request, before the build), and only the oldest live ticket may take the lock. A deployment
 *   that may not run yet answers WAITING and the state machine calls again after a Wait state: polling
 *   cannot lose a wake-up, and a newcomer can never jump ahead of an older ticket.
 * - `superseded`: like queued, but a waiting request that has a newer one behind it ends SUPERSEDED.
 * - `reject`: a busy environment refuses the request (REJECTED, ENVIRONMENT_BUSY).
 * An expired lease is taken over only when its owner is terminal and settled, and only by the head of the
 * queue; the takeover is audited.
 */
export async function acquireLock(
  input: { deploymentId: string },
  deps: AcquireLockDeps,
): Promise<AcquireLockOutput> {
  const { store, clock } = deps;
  const deployment = await store.getDeployment(input.deploymentId);
  if (!deployment) throw new JobStartError(`deployment ${input.deploymentId} does not exist`);
  if (isTerminal(deployment.status)) return { outcome: 'ENDED', status: deployment.status };
  const env = findTarget(deps.registry, deployment.application, deployment.environment)?.env;
  const mode = env?.mode ?? 'reject';
  const ticket: Ticket = {
    application: deployment.application,
    environment: deployment.environment,
    deploymentId: deployment.deploymentId,
    requestedAt: deployment.requestedAt,
  };

  if (mode !== 'reject') {
    if (mode === 'superseded') {
      const newer = await newestLiveTicket(store, ticket);
      if (newer && newer.deploymentId !== ticket.deploymentId && newer.requestedAt > ticket.requestedAt) {
        await finish(store, clock, deployment.deploymentId, 'SUPERSEDED', {
          supersededBy: newer.deploymentId,
          errorMessage: `replaced by the newer request ${newer.deploymentId}`,
        });
        return { outcome: 'ENDED', status: 'SUPERSEDED' };
      }
    }
    const head = await headOfQueue(store, ticket);
    if (head.deploymentId !== ticket.deploymentId) {
      return wait(deps, deployment, env?.lockWaitTimeoutSeconds, head.deploymentId, 'EARLIER_REQUEST');
    }
  }

  // Freeze windows are checked again here: a queued or long-building request may reach its turn inside one.
  // An approver's override (kept by Validate Request whenever one asked) is honoured here too.
  const active = env ? activeFreeze(env.freezeWindows, clock.now()) : undefined;
  const freeze = hasFreezeOverride(deployment) ? undefined : active;
  if (freeze) {
    await finish(store, clock, deployment.deploymentId, 'REJECTED', {
      errorCode: 'ENVIRONMENT_FROZEN',
      errorMessage: `deployments are frozen by "${freeze.name}" until ${freeze.endsAt}`,
    });
    return { outcome: 'ENDED', status: 'REJECTED' };
  }

  const held = await takeLock(store, clock, deployment, deps.leaseSeconds);
  if (held?.owner === deployment.deploymentId) {
    // Also the path of a second invocation of this step: the lease of the first one is kept.
    await store.deleteTicket(ticket);
    if (active) await auditFreezeOverride(store, clock, deployment, active, 'lock');
    await recordEvent(store, clock, deployment.deploymentId, 'LOCK_ACQUIRED', {
      leaseExpiresAt: held.leaseExpiresAt,
    });
    await store.updateDeployment(deployment.deploymentId, {
      phase: 'DEPLOYING',
      updatedAt: clock.now().toISOString(),
      ...(active ? { freezeOverride: true } : {}),
    });
    return { outcome: 'ACQUIRED', leaseExpiresAt: held.leaseExpiresAt };
  }
  const holder = held?.owner ?? 'unknown';
  if (mode === 'reject') {
    await finish(store, clock, deployment.deploymentId, 'REJECTED', {
      errorCode: 'ENVIRONMENT_BUSY',
      errorMessage: `${deployment.application}/${deployment.environment} is busy with deployment ${holder}`,
    });
    return { outcome: 'ENDED', status: 'REJECTED' };
  }
  return wait(deps, deployment, env?.lockWaitTimeoutSeconds, holder, 'HOLDS_LOCK');
}

/** Takes the lock, or takes over an expired lease of a settled owner; returns who holds it now. */
async function takeLock(store: DeploymentStore, clock: Clock, deployment: Deployment, leaseSeconds: number) {
  const now = clock.now();
  const lock: Lock = {
    application: deployment.application,
    environment: deployment.environment,
    owner: deployment.deploymentId,
    acquiredAt: now.toISOString(),
    leaseExpiresAt: new Date(now.getTime() + leaseSeconds * 1000).toISOString(),
  };
  const attempt = await store.acquireLock(lock);
  let held: Lock | undefined = attempt.acquired ? lock : attempt.holder;
  if (held && held.owner !== deployment.deploymentId && (await canTakeOver(store, held, now))) {
    if (await store.takeOverLock(held, lock)) {
      await recordEvent(store, clock, deployment.deploymentId, 'LOCK_TAKEN_OVER', {
        previousOwner: held.owner,
        previousLeaseExpiresAt: held.leaseExpiresAt,
      });
      held = lock;
    } else {
      held = await store.getLock(lock.application, lock.environment);
    }
  }
  return held;
}

async function wait(
  deps: AcquireLockDeps,
  deployment: Deployment,
  timeoutSeconds: number | undefined,
  behind: string,
  reason: 'HOLDS_LOCK' | 'EARLIER_REQUEST',
): Promise<AcquireLockOutput> {
  const { store, clock } = deps;
  const now = clock.now();
  const since = deployment.waitStartedAt ?? now.toISOString();
  if (timeoutSeconds !== undefined && now.getTime() - Date.parse(since) > timeoutSeconds * 1000) {
    await finish(store, clock, deployment.deploymentId, 'FAILED', {
      errorCode: 'LOCK_WAIT_TIMEOUT',
      errorMessage: `waited more than ${timeoutSeconds} s for ${deployment.application}/${deployment.environment} (behind ${behind})`,
    });
    return { outcome: 'ENDED', status: 'FAILED' };
  }
  if (!deployment.waitStartedAt) {
    await recordEvent(store, clock, deployment.deploymentId, 'LOCK_WAITING', { behind, reason });
  }
  // Written only when something changed: a long wait costs no writes per poll.
  const current = deployment.waitingBehind;
  if (!deployment.waitStartedAt || current?.deploymentId !== behind || current.reason !== reason) {
    await store.updateDeployment(deployment.deploymentId, {
      phase: 'WAITING_FOR_LOCK',
      waitStartedAt: since,
      waitingBehind: { deploymentId: behind, reason },
      updatedAt: now.toISOString(),
    });
  }
  return { outcome: 'WAITING', behind };
}

/** The oldest ticket of a deployment that has not ended. Tickets of ended deployments are cleared. */
async function headOfQueue(store: DeploymentStore, mine: Ticket): Promise<Ticket> {
  for (;;) {
    const tickets = await store.listTickets(mine.application, mine.environment, { limit: QUEUE_PAGE });
    if (!tickets.some((t) => t.deploymentId === mine.deploymentId) && tickets.length < QUEUE_PAGE) {
      // A deployment accepted before it had a ticket (or whose ticket was lost) queues now.
      await store.putTicket(mine);
      continue;
    }
    for (const ticket of tickets) {
      if (ticket.deploymentId === mine.deploymentId) return ticket;
      if (await isLive(store, ticket)) return ticket;
      await store.deleteTicket(ticket);
    }
    if (tickets.length === 0) return mine;
  }
}

async function newestLiveTicket(store: DeploymentStore, mine: Ticket): Promise<Ticket | undefined> {
  for (;;) {
    const [newest] = await store.listTickets(mine.application, mine.environment, {
      limit: 1,
      newestFirst: true,
    });
    if (!newest || newest.deploymentId === mine.deploymentId || (await isLive(store, newest))) return newest;
    await store.deleteTicket(newest);
  }
}

async function isLive(store: DeploymentStore, ticket: Ticket): Promise<boolean> {
  const owner = await store.getDeployment(ticket.deploymentId);
  return owner !== undefined && !isTerminal(owner.status);
}

async function canTakeOver(store: DeploymentStore, held: Lock, now: Date): Promise<boolean> {
  if (Date.parse(held.leaseExpiresAt) > now.getTime()) return false;
  const owner = await store.getDeployment(held.owner);
  // A lock whose owner record is gone can only be a leftover; one whose owner still runs is never taken.
  return !owner || (isTerminal(owner.status) && owner.settledAt !== undefined);
}
