import type { BotPoster, ChatLinks, ChatReply, ChatStore, ResponsePoster } from '#shared/chat/ports.ts';
import { logger } from '#shared/logger.ts';
import type { Clock, DeploymentStore, JobRunner } from '#shared/ports.ts';
import { type AuditEventType, type Deployment, isTerminal } from '#shared/types.ts';
import { MILESTONE_RANK, type Milestone, progressMessage } from './messages.ts';
import { isChannelId } from './poster.ts';

/**
 * Progress of a chat-initiated deployment, posted to its response_url: acknowledgement, build started,
 * deploy started, the approval request of a reviewed environment, final result (at most 5 posts, Slack's
 * limit within 30 minutes). The notifier is told that a
 * milestone happened (in AWS by the workflow's own EventBridge events, in local mode by the audit events
 * the cores record) and does the rest: a deployment without a reply item is not a chat deployment (no-op);
 * each milestone is claimed with a conditional update before posting, so a redelivered event never posts
 * twice and a late one never posts out of order; the final result deletes the reply item (the URL).
 * Nothing here throws: the deployment never depends on Slack.
 *
 * Past the URL's 30 minutes (a long queue, a slow build, an approval that waits), a configured bot token
 * takes over: the same milestones go to the command's channel through `chat.postMessage`, until the
 * deployment ends or BOT_HORIZON_MS after the command, whichever comes first.
 */

/** Slack's limit per response_url. */
export const MAX_POSTS = 5;

/**
 * How long after the command the bot may still post: longer than any execution lives (the state machine's
 * TimeoutSeconds is 24 hours, a test holds the two together), so only a lost final event reaches it.
 */
export const BOT_HORIZON_MS = 25 * 60 * 60 * 1000;

export interface NotifierDeps {
  store: DeploymentStore;
  chat: ChatStore;
  poster: ResponsePoster;
  /** Progress past a response_url's 30 minutes; absent (or without a token) the URL's window is all. */
  bot?: BotPoster;
  clock: Clock;
  links: ChatLinks;
  sleep?: (ms: number) => Promise<void>;
  /** How long the final result waits for the record to become terminal (a reconciled execution). */
  finalWait?: { attempts: number; delayMs: number };
}

export type NotifyOutcome = 'posted' | 'post-failed' | 'not-chat' | 'skipped' | 'expired' | 'error';

export async function notifyMilestone(
  deploymentId: string,
  milestone: Milestone,
  deps: NotifierDeps,
  hint: { executionStatus?: string } = {},
): Promise<NotifyOutcome> {
  try {
    return await notify(deploymentId, milestone, deps, hint);
  } catch (error) {
    logger.warn('chat progress not posted', {
      deploymentId,
      milestone,
      errorName: (error as { name?: string })?.name,
    });
    return 'error';
  }
}

async function notify(
  deploymentId: string,
  milestone: Milestone,
  deps: NotifierDeps,
  hint: { executionStatus?: string },
): Promise<NotifyOutcome> {
  const { chat, clock } = deps;
  const reply = await chat.getReply(deploymentId);
  if (!reply) return 'not-chat';
  // The result is out: nothing posts for this deployment again (a redelivered final event, a late milestone).
  if (reply.stage >= MILESTONE_RANK.final) return 'skipped';
  const deployment =
    milestone === 'final'
      ? await settledRecord(deploymentId, deps)
      : await deps.store.getDeployment(deploymentId);
  // Chosen after the final result's wait for a terminal record, in which the URL may have expired.
  const responseUrl = liveUrl(reply, clock.now());
  const channelId = responseUrl ? undefined : await botChannel(reply, deps);
  if (channelId === UNKNOWN) {
    // Nothing is given up on a secret that could not be read: the item stays for the next event or sweep.
    logger.warn('chat progress not posted: whether a bot token is configured cannot be told now', {
      deploymentId,
      milestone,
    });
    return 'error';
  }
  if (!responseUrl && !channelId) {
    if (milestone === 'final') await finish(reply, deps);
    else await chat.deleteReply(deploymentId, reply.expiresAt);
    logger.info('chat reply expired; progress is no longer posted', { deploymentId, milestone });
    return 'expired';
  }
  if (!deployment) return 'skipped';
  // The buttons are offered only while a decision is awaited: a late or forged notice posts nothing.
  if (milestone === 'approval' && deployment.approval?.state !== 'PENDING') return 'skipped';

  const stage = MILESTONE_RANK[milestone];
  const claimed = responseUrl
    ? await chat.claimPost(deploymentId, stage, { maxPosts: MAX_POSTS, now: clock.now().toISOString() })
    : await chat.claimBotPost(deploymentId, stage);
  if (!claimed) {
    if (milestone === 'final') await finish(reply, deps);
    return 'skipped';
  }
  const message = progressMessage(milestone, deployment, {
    links: deps.links,
    now: clock.now(),
    ...(hint.executionStatus ? { executionStatus: hint.executionStatus } : {}),
  });
  const result = responseUrl
    ? await deps.poster.post(responseUrl, message)
    : await (deps.bot as BotPoster).post(channelId as string, message);
  if (milestone === 'final') await finish(reply, deps);
  // Facts only: the URL and the token are credentials and never logged.
  logger.info('chat progress', {
    deploymentId,
    milestone,
    via: responseUrl ? 'response_url' : 'bot',
    outcome: result.outcome,
    attempts: result.attempts,
    httpStatus: result.status,
    failure: result.failure,
  });
  return result.outcome === 'posted' ? 'posted' : 'post-failed';
}

/**
 * How long a finished item stays (without its URL) before the sweep deletes it: far longer than the moment
 * between an approver's click and the re-arm that follows it, which must not bring a finished item back.
 */
export const FINISHED_KEEP_MS = 30 * 60 * 1000;

/** The result is out: the URL goes, and the item stays a little as a marker that nothing posts again. */
async function finish(reply: ChatReply, deps: Pick<NotifierDeps, 'chat' | 'clock'>) {
  const until = new Date(deps.clock.now().getTime() + FINISHED_KEEP_MS).toISOString();
  await deps.chat.finishReply(reply.deploymentId, MILESTONE_RANK.final, until);
}

/** The response_url while Slack still takes posts to it. */
function liveUrl(reply: ChatReply, now: Date): string | undefined {
  return reply.responseUrl && Date.parse(reply.expiresAt) > now.getTime() ? reply.responseUrl : undefined;
}

/** The last instant the bot may post for this reply. */
const botUntil = (reply: ChatReply) =>
  reply.keepUntil ? Date.parse(reply.keepUntil) : Date.parse(reply.createdAt) + BOT_HORIZON_MS;

/** Whether a bot is configured could not be told (its secret could not be read). */
const UNKNOWN = Symbol('unknown');

/** The channel the bot posts to in place of an expired URL, when a bot token is configured. */
async function botChannel(
  reply: ChatReply,
  deps: Pick<NotifierDeps, 'bot' | 'clock'>,
): Promise<string | undefined | typeof UNKNOWN> {
  if (!deps.bot || !isChannelId(reply.channelId)) return undefined;
  if (!(botUntil(reply) > deps.clock.now().getTime())) return undefined;
  const configured = await deps.bot.configured();
  if (configured === undefined) return UNKNOWN;
  return configured ? reply.channelId : undefined;
}

/** The record once terminal, or as it is after a bounded wait (an aborted execution is still settling). */
async function settledRecord(deploymentId: string, deps: NotifierDeps): Promise<Deployment | undefined> {
  const { attempts, delayMs } = deps.finalWait ?? { attempts: 4, delayMs: 2_000 };
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let deployment = await deps.store.getDeployment(deploymentId);
  for (let i = 1; i < attempts && deployment && !isTerminal(deployment.status); i++) {
    await sleep(delayMs);
    deployment = await deps.store.getDeployment(deploymentId);
  }
  return deployment;
}

/**
 * The schedule's sweep of items due (their URL expired: deployments that outlast Slack's 30 minutes, lost
 * final events; or their `keepUntil` passed): deleted, unless the bot will post for them, in which case the
 * URL goes and the item is kept until the deployment's horizon (the final result finishes it sooner). Every
 * write is conditional on the item as it was read, so a click that re-armed it meanwhile is never undone.
 */
export async function sweepExpiredReplies(
  deps: Pick<NotifierDeps, 'chat' | 'clock' | 'store' | 'bot'>,
): Promise<{ deleted: number; kept: number }> {
  const ids = await deps.chat.listExpiredReplies(deps.clock.now().toISOString(), 100);
  let deleted = 0;
  let kept = 0;
  let postponed = 0;
  for (const id of ids) {
    const reply = await deps.chat.getReply(id);
    if (!reply) continue;
    const channel = reply.keepUntil ? undefined : await botChannel(reply, deps);
    if (channel === UNKNOWN) {
      postponed++;
    } else if (channel && !(await ended(id, deps.store))) {
      await deps.chat.retainReply(id, new Date(botUntil(reply)).toISOString(), reply.expiresAt);
      kept++;
    } else {
      await deps.chat.deleteReply(id, reply.expiresAt);
      deleted++;
    }
  }
  if (ids.length > 0) logger.info('expired chat replies swept', { deleted, kept, postponed });
  return { deleted, kept };
}

async function ended(deploymentId: string, store: DeploymentStore): Promise<boolean> {
  const deployment = await store.getDeployment(deploymentId);
  return !deployment || isTerminal(deployment.status);
}

// What tells the notifier that a milestone happened ------------------------------------------------------

/** AWS: "Step Functions Execution Status Change" (the execution name is the deployment id). */
export function milestoneOfExecution(status: string): Milestone | undefined {
  if (status === 'RUNNING') return 'ack';
  if (['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'].includes(status)) return 'final';
  return undefined;
}

/**
 * AWS: CodeBuild's IN_PROGRESS "Build State Change". Which deployment and job a build serves is read from
 * the build itself (its environment), as the job-events core does, rather than trusted from the event.
 */
export async function notifyJobStarted(
  buildId: string,
  deps: NotifierDeps & { runner: JobRunner },
): Promise<NotifyOutcome> {
  let info: Awaited<ReturnType<JobRunner['describe']>>[number] | undefined;
  try {
    [info] = await deps.runner.describe([buildId]);
  } catch (error) {
    logger.warn('chat progress: the build could not be described', {
      buildId,
      errorName: (error as { name?: string })?.name,
    });
    return 'error';
  }
  if (!info?.deploymentId || !info.job) return 'not-chat';
  return notifyMilestone(info.deploymentId, info.job === 'build' ? 'build' : 'deploy', deps);
}

/** Local mode: the audit events the cores record mark the same milestones. */
export function milestoneOfEvent(type: AuditEventType | string): Milestone | undefined {
  switch (type) {
    // The reply item is stored after REQUESTED and before the workflow starts; VALIDATED is its first step.
    case 'VALIDATED':
      return 'ack';
    case 'BUILD_STARTED':
      return 'build';
    case 'DEPLOY_STARTED':
      return 'deploy';
    case 'APPROVAL_REQUESTED':
      return 'approval';
    default:
      return isTerminal(type as Deployment['status']) ? 'final' : undefined;
  }
}

/**
 * Local mode: a DeploymentStore that tells the notifier when a milestone's audit event is first written.
 * The notification runs detached: the core that wrote the event neither waits for Slack nor sees its errors.
 */
export function notifyingStore(
  store: DeploymentStore,
  onMilestone: (deploymentId: string, milestone: Milestone) => Promise<unknown>,
): DeploymentStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== 'appendEvent' || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (event: Parameters<DeploymentStore['appendEvent']>[0]) => {
        const result = await target.appendEvent(event);
        const milestone = milestoneOfEvent(event.type);
        if (result.written && milestone) {
          onMilestone(event.deploymentId, milestone).catch(() => undefined);
        }
        return result;
      };
    },
  });
}
