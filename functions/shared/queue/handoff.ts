import { logger } from '../logger.ts';
import type { Clock, DeploymentStore, TaskTokens } from '../ports.ts';
import { type Deployment, isTerminal, type Lock, type Ticket } from '../types.ts';

/**
 * Lock hand-over: a deployment that must wait for its environment parks at "Wait For Lock" (a
 * waitForTaskToken Task) with its token on its queue ticket, instead of polling. Whoever may have freed
 * the environment or moved the queue (Record Result, Record Failure, the reconciler, an Acquire Lock that
 * ended a request, the Release Lock step, the sweep) calls `handOffLock` afterwards: the head of the queue
 * gets the lock by a conditional write, then its token is completed and its execution goes back to
 * Acquire Lock, which finds the lock its own. A waiter re-checks after storing its token (`parkForLock`
 * in functions/acquire-lock), so a release between its failed put and its park is never missed.
 */

export interface HandOffDeps {
  store: DeploymentStore;
  clock: Clock;
  tokens: TaskTokens;
  /** The lease the head gets: the same as Acquire Lock gives (deploy job's queued + build timeout plus margin). */
  leaseSeconds: number;
}

export type HandOff =
  | { outcome: 'NO_WAITER' | 'HEAD_NOT_PARKED' | 'LOCK_BUSY' }
  /** TOKEN_GONE: the head's Task no longer waits (timed out, aborted); the lock stays with it (see below). */
  | { outcome: 'HANDED_OVER' | 'WOKEN' | 'TOKEN_GONE'; to: string };

/** How many tickets one read takes: tickets of ended deployments are cleared as it goes. */
const QUEUE_PAGE = 25;
/** Conditional puts per hand-over: the lock can be freed again between a failed put and the read of its holder. */
const PUT_ATTEMPTS = 3;

/** The oldest ticket whose deployment has not ended. Tickets of ended deployments (dead waiters) are cleared. */
export async function liveHead(
  store: DeploymentStore,
  application: string,
  environment: string,
): Promise<Ticket | undefined> {
  for (;;) {
    const tickets = await store.listTickets(application, environment, { limit: QUEUE_PAGE });
    if (tickets.length === 0) return undefined;
    for (const ticket of tickets) {
      const owner = await store.getDeployment(ticket.deploymentId);
      if (owner && !isTerminal(owner.status)) return ticket;
      await store.deleteTicket(ticket);
    }
  }
}

/**
 * Gives a free lock to the head of the queue and completes its parked token. Safe to run any number of
 * times and from any number of places at once: the conditional put lets one writer win, and a token
 * completed twice is answered `gone` the second time. A head that is not parked (still building, or just
 * between its failed put and its park) is left alone: it takes the lock itself at Acquire Lock, or its
 * park's own re-check calls this again. A lock is never taken back from a head whose token is gone: that
 * head may be on its way into Acquire Lock (after the safety-net timeout), which would then deploy without
 * it; a dead one is ended by the reconciler, whose release hands the lock on.
 */
export async function handOffLock(
  env: { application: string; environment: string },
  deps: HandOffDeps,
): Promise<HandOff> {
  // Each round that finds its head ended has taken that head out of the queue for good (its terminal write
  // removes its ticket), so the rounds are bounded by the queue's length.
  for (;;) {
    const result = await handOffToHead(env, deps);
    if (result !== 'HEAD_ENDED') return result;
  }
}

/**
 * The hand-over for a deployment that has just written its terminal status (Acquire Lock ending a request,
 * the reconciler). Its release ran before that write, but a hand-over that had read it as the live head of
 * the queue (its ticket still carrying the token of an earlier park) may have given it the lock since. Such
 * a deployment never settles (it ran nothing) and no execution of it is left to release anything, so the
 * lock would stay with it for good. Each side writes first and reads second (this terminal write, then the
 * lock; the hand-over's lock put, then the head's status), so one of them frees it.
 */
export async function handOffAfterEnd(
  deployment: Pick<Deployment, 'deploymentId' | 'application' | 'environment'>,
  deps: HandOffDeps,
): Promise<HandOff> {
  await undoHandOver(deps.store, deployment, deployment.deploymentId);
  return handOffLock(deployment, deps);
}

/**
 * Frees a lock that a hand-over gave to a deployment which has ended. No audit event: the deployment never
 * recorded LOCK_ACQUIRED (only Acquire Lock does, when it goes on with the lock).
 */
async function undoHandOver(
  store: DeploymentStore,
  env: { application: string; environment: string },
  owner: string,
): Promise<void> {
  const lock = await store.getLock(env.application, env.environment);
  if (lock?.owner !== owner) return;
  if (await store.releaseLock(env.application, env.environment, owner)) {
    logger.info('freed a lock handed over to a deployment that had ended', { ...env, owner });
  }
}

async function handOffToHead(
  env: { application: string; environment: string },
  deps: HandOffDeps,
): Promise<HandOff | 'HEAD_ENDED'> {
  const { store, clock, tokens } = deps;
  const head = await liveHead(store, env.application, env.environment);
  if (!head) return { outcome: 'NO_WAITER' };
  if (!head.taskToken) return { outcome: 'HEAD_NOT_PARKED' };
  let holder: Lock | undefined;
  for (let attempt = 0; attempt < PUT_ATTEMPTS && holder?.owner !== head.deploymentId; attempt++) {
    const now = clock.now();
    const lock: Lock = {
      application: env.application,
      environment: env.environment,
      owner: head.deploymentId,
      acquiredAt: now.toISOString(),
      leaseExpiresAt: new Date(now.getTime() + deps.leaseSeconds * 1000).toISOString(),
    };
    const put = await store.acquireLock(lock);
    if (put.acquired) {
      // The head was live when liveHead read it; it may have ended since (superseded, frozen, timed out,
      // reconciled) with its release already done. handOffAfterEnd is the other half.
      const current = await store.getDeployment(head.deploymentId);
      if (!current || isTerminal(current.status)) {
        await undoHandOver(store, env, head.deploymentId);
        return 'HEAD_ENDED';
      }
    }
    holder = put.acquired ? lock : put.holder;
    if (holder && holder.owner !== head.deploymentId) {
      if (Date.parse(holder.leaseExpiresAt) > now.getTime()) return { outcome: 'LOCK_BUSY' };
      // An expired lease is taken over by the head itself at Acquire Lock, which checks the same: its owner
      // gone, or ended and settled. A live owner past its lease is left to the reconciler; waking the head
      // for it would only park it again at once, a loop of transitions for as long as the owner runs.
      const owner = await store.getDeployment(holder.owner);
      if (owner && !(isTerminal(owner.status) && owner.settledAt !== undefined))
        return { outcome: 'LOCK_BUSY' };
      const woken = await tokens.succeed(head.taskToken, { handedOver: false });
      return { outcome: woken === 'delivered' ? 'WOKEN' : 'TOKEN_GONE', to: head.deploymentId };
    }
  }
  if (holder?.owner !== head.deploymentId) return { outcome: 'LOCK_BUSY' };
  const sent = await tokens.succeed(head.taskToken, { handedOver: true });
  logger.info('lock handed over', { ...env, to: head.deploymentId, token: sent });
  return { outcome: sent === 'delivered' ? 'HANDED_OVER' : 'TOKEN_GONE', to: head.deploymentId };
}

/** Wakes a parked deployment so that it runs Acquire Lock again (its lock-wait deadline, a supersession). */
export async function wakeParked(ticket: Ticket, tokens: TaskTokens): Promise<boolean> {
  if (!ticket.taskToken) return false;
  return (await tokens.succeed(ticket.taskToken, { handedOver: false })) === 'delivered';
}
