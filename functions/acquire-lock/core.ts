import { auditFreezeOverride, hasFreezeOverride } from '#shared/deployments/freeze-override.ts';
import { finish, recordEvent } from '#shared/deployments/record.ts';
import { JobStartError, TransientError } from '#shared/errors.ts';
import type { Clock, DeploymentStore, TaskTokens } from '#shared/ports.ts';
import { handOffAfterEnd, handOffLock, wakeParked } from '#shared/queue/handoff.ts';
import { releaseHeldLock } from '#shared/queue/lock.ts';
import { activeFreeze } from '#shared/registry/calendar.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { type Deployment, isTerminal, type Lock, type Ticket } from '#shared/types.ts';

export interface AcquireLockDeps {
  store: DeploymentStore;
  clock: Clock;
  registry: Registry;
  /** At least the deploy job's queued + build timeout plus a margin, so a live deploy never loses its lease. */
  leaseSeconds: number;
  /** Completes parked waiters' tokens (the hand-over, and a park whose re-check finds it may go on). */
  tokens: TaskTokens;
}

export type AcquireLockOutput =
  | { outcome: 'ACQUIRED'; leaseExpiresAt: string }
  /** `recheckSeconds` is the parked Task's timeout: the safety net against a lost hand-over, and the lock-wait deadline. */
  | { outcome: 'WAITING'; behind: string; recheckSeconds: number }
  /** `message` (code: text) is the Cause of a FAILED execution. */
  | { outcome: 'ENDED'; status: string; message: string };

/** How many queue entries one attempt reads: stale ones (ended deployments) are cleared as it goes. */
const QUEUE_PAGE = 25;
/** Conditional puts per attempt: the lock can be released between a failed put and the read of its holder. */
const LOCK_ATTEMPTS = 5;
/**
 * The longest a parked waiter sleeps before it runs Acquire Lock again by itself: only a safety net (a
 * hand-over lost to a crash between the lock write and the token), since every release hands the lock
 * on and the scheduled sweep re-checks waiters too. Each re-check costs 3 state transitions.
 */
export const RECHECK_SECONDS = 3600;

/**
 * One deploy per application+environment. The environment's mode decides what a busy environment means:
 * - `queued`: requests run one at a time in request order. Each accepted request holds a ticket (written by
 *   Validate Request, before the build), and only the oldest live ticket may take the lock. A deployment
 *   that may not run yet answers WAITING and parks at "Wait For Lock" (`parkForLock`) until a release hands
 *   it the lock (#shared/queue/handoff.ts); a newcomer can never jump ahead of an older ticket.
 * - `superseded`: like queued, but a request that would wait ends SUPERSEDED when a newer request is
 *   itself waiting here. One that may run never is, and a newer request still building (which may fail)
 *   replaces nothing.
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
  if (isTerminal(deployment.status)) {
    // A retry of an attempt that failed after its terminal write: what that attempt had left to do. A hand-over
    // may have given this deployment the lock meanwhile, and an ended deployment that ran nothing never
    // settles, so nothing else would ever free it.
    await handOffAfterEnd(deployment, deps);
    return ended(deployment.status, deployment.errorCode ?? deployment.status, deployment.errorMessage);
  }
  const env = findTarget(deps.registry, deployment.application, deployment.environment)?.env;
  const mode = env?.mode ?? 'reject';
  const ticket: Ticket = {
    application: deployment.application,
    environment: deployment.environment,
    deploymentId: deployment.deploymentId,
    requestedAt: deployment.requestedAt,
  };

  if (mode !== 'reject') {
    const head = await headOfQueue(store, ticket);
    // A lock handed over to this deployment stays its own even when an older ticket appeared since (a
    // ticket written late, or put back by headOfQueue): waiting behind it while holding the lock would
    // block both until the lease ran out.
    const mine =
      head.deploymentId !== ticket.deploymentId &&
      (await store.getLock(ticket.application, ticket.environment))?.owner === ticket.deploymentId;
    if (head.deploymentId !== ticket.deploymentId && !mine) {
      if (mode === 'superseded') {
        const replaced = await supersede(deps, ticket);
        if (replaced) return replaced;
      }
      return wait(deps, deployment, env?.lockWaitTimeoutSeconds, head.deploymentId, 'EARLIER_REQUEST');
    }
  }

  // Freeze windows are checked again here: a queued or long-building request may reach its turn inside one.
  // An approver's override (kept by Validate Request whenever one asked) is honoured here too.
  const active = env ? activeFreeze(env.freezeWindows, clock.now()) : undefined;
  const freeze = hasFreezeOverride(deployment) ? undefined : active;
  if (freeze) {
    const errorMessage = `deployments are frozen by "${freeze.name}" until ${freeze.endsAt}`;
    // A retry of this step may find the lock its first invocation took: freed before the terminal write.
    await releaseHeldLock(deployment, deps, { by: 'freeze' });
    await finish(store, clock, deployment.deploymentId, 'REJECTED', {
      errorCode: 'ENVIRONMENT_FROZEN',
      errorMessage,
    });
    await handOffAfterEnd(deployment, deps);
    return ended('REJECTED', 'ENVIRONMENT_FROZEN', errorMessage);
  }

  // No holder means the lock was released between the failed put and the read: it is free, so put again
  // (rather than report or wait behind "unknown").
  let held = await takeLock(store, clock, deployment, deps.leaseSeconds);
  for (let attempt = 1; !held && attempt < LOCK_ATTEMPTS; attempt++) {
    held = await takeLock(store, clock, deployment, deps.leaseSeconds);
  }
  if (!held) {
    throw new TransientError(
      `the lock of ${deployment.application}/${deployment.environment} changed hands ${LOCK_ATTEMPTS} times during one attempt`,
    );
  }
  if (held.owner === deployment.deploymentId) {
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
  const holder = held.owner;
  if (mode === 'reject') {
    const errorMessage = `${deployment.application}/${deployment.environment} is busy with deployment ${holder}`;
    await finish(store, clock, deployment.deploymentId, 'REJECTED', {
      errorCode: 'ENVIRONMENT_BUSY',
      errorMessage,
    });
    return ended('REJECTED', 'ENVIRONMENT_BUSY', errorMessage);
  }
  if (mode === 'superseded') {
    const replaced = await supersede(deps, ticket);
    if (replaced) return replaced;
  }
  return wait(deps, deployment, env?.lockWaitTimeoutSeconds, holder, 'HOLDS_LOCK');
}

const ended = (status: string, code: string, message?: string): AcquireLockOutput => ({
  outcome: 'ENDED',
  status,
  message: message ? `${code}: ${message}` : code,
});

/**
 * Superseded mode, for a request that would wait: it is replaced by the newest later request that is
 * itself waiting here. A later request that has not reached Acquire Lock yet may still fail its build, so
 * it replaces nothing; the next poll looks again.
 */
async function supersede(deps: AcquireLockDeps, mine: Ticket): Promise<AcquireLockOutput | undefined> {
  const { store, clock } = deps;
  const replacement = await newestWaitingAfter(store, mine);
  if (!replacement) return undefined;
  const errorMessage = `replaced by the newer request ${replacement}`;
  await finish(store, clock, mine.deploymentId, 'SUPERSEDED', { supersededBy: replacement, errorMessage });
  await handOffAfterEnd(mine, deps);
  return ended('SUPERSEDED', 'SUPERSEDED', errorMessage);
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
    const errorMessage = `waited more than ${timeoutSeconds} s for ${deployment.application}/${deployment.environment} (behind ${behind})`;
    await finish(store, clock, deployment.deploymentId, 'FAILED', {
      errorCode: 'LOCK_WAIT_TIMEOUT',
      errorMessage,
    });
    await handOffAfterEnd(deployment, deps);
    return ended('FAILED', 'LOCK_WAIT_TIMEOUT', errorMessage);
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
  const left =
    timeoutSeconds === undefined
      ? RECHECK_SECONDS
      : timeoutSeconds - (now.getTime() - Date.parse(since)) / 1000;
  return {
    outcome: 'WAITING',
    behind,
    recheckSeconds: Math.max(1, Math.min(RECHECK_SECONDS, Math.ceil(left))),
  };
}

/**
 * The "Wait For Lock" Task (waitForTaskToken): stores the token on the deployment's ticket, then looks
 * again, so that a release between Acquire Lock's failed put and this park is not missed: the hand-over
 * it runs gives a free lock to the head of the queue, which may be this deployment. Whatever this cannot
 * park (an ended deployment, a ticket gone, a lock-wait deadline passed) completes its own token, and
 * Acquire Lock decides. The Task's output is ignored; SFN resumes only when the token is completed.
 */
export async function parkForLock(
  input: { deploymentId: string; taskToken: string },
  deps: AcquireLockDeps,
): Promise<{ parked: boolean }> {
  const { store, clock, tokens } = deps;
  const goOn = async () => {
    await tokens.succeed(input.taskToken, { handedOver: false });
    return { parked: false };
  };
  const deployment = await store.getDeployment(input.deploymentId);
  if (!deployment || isTerminal(deployment.status)) return goOn();
  const ticket: Ticket = {
    application: deployment.application,
    environment: deployment.environment,
    deploymentId: deployment.deploymentId,
    requestedAt: deployment.requestedAt,
  };
  if (!(await store.parkTicket(ticket, input.taskToken))) return goOn();
  const env = findTarget(deps.registry, deployment.application, deployment.environment)?.env;
  const timeout = env?.lockWaitTimeoutSeconds;
  const since = deployment.waitStartedAt ? Date.parse(deployment.waitStartedAt) : clock.now().getTime();
  if (timeout !== undefined && clock.now().getTime() - since > timeout * 1000) return goOn();
  if (env?.mode === 'superseded') {
    // A newer request that started waiting before this token was stored did not see it: look for it here
    // (each side writes first and reads second, so at least one of them sees the other).
    if (await newestWaitingAfter(store, ticket)) return goOn();
    // Older waiters are replaced by this one: each is woken to find that out at Acquire Lock.
    const tickets = await store.listTickets(ticket.application, ticket.environment, { limit: QUEUE_PAGE });
    for (const older of tickets) {
      if (queuePosition(older) >= queuePosition(ticket)) break;
      await wakeParked(older, tokens);
    }
  }
  await handOffLock(deployment, deps);
  return { parked: true };
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

/** The newest request after `mine` in queue order that waits at Acquire Lock; ended ones are cleared. */
async function newestWaitingAfter(store: DeploymentStore, mine: Ticket): Promise<string | undefined> {
  const tickets = await store.listTickets(mine.application, mine.environment, {
    limit: QUEUE_PAGE,
    newestFirst: true,
  });
  for (const ticket of tickets) {
    if (queuePosition(ticket) <= queuePosition(mine)) return undefined;
    const owner = await store.getDeployment(ticket.deploymentId);
    if (!owner || isTerminal(owner.status)) await store.deleteTicket(ticket);
    // Only Acquire Lock sets waitStartedAt: the request has been built and queues for the lock.
    else if (owner.waitStartedAt) return owner.deploymentId;
  }
  return undefined;
}

/** Queue order, as the store sorts tickets: request time, then deployment id. */
const queuePosition = (ticket: Ticket) => `${ticket.requestedAt}#${ticket.deploymentId}`;

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
