import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import {
  array,
  literal,
  looseObject,
  maxLength,
  minLength,
  optional,
  regex,
  safeParse,
  string,
  union,
} from 'zod/mini';
import type { ChatLinks, ChatStore, ResponsePoster, SlackMessage } from '#shared/chat/ports.ts';
import { type DecideDeps, decide } from '#shared/deployments/approval.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { logger } from '#shared/logger.ts';
import { describeRequester } from '#shared/registry/requester.ts';
import type { Requester } from '#shared/types.ts';
import { problem, problemResponse } from '../api/problem.ts';
import { RESPONSE_URL_LIFETIME_MS, slackHooksOnly } from './core.ts';
import {
  APPROVAL_ACTIONS,
  decidedMessage,
  errorMessage,
  MILESTONE_RANK,
  refusedClickMessage,
} from './messages.ts';
import { isChannelId } from './poster.ts';
import { acceptableResponseUrl, readForm, readSignedRequest, type SignedRequestDeps } from './signed.ts';

/**
 * Slack's interactivity requests (`POST /slack/interactions`): a click on an approval request's Approve or
 * Reject button. Authenticated exactly as the slash command is (Slack's signature over the raw body, 5-minute
 * window), claimed once per signature so a replayed click does nothing, and decided by the same `decide` the
 * API's `POST /deployments/{id}/approval` uses: approver lists, self-approval, "still awaiting" and the
 * APPROVAL_REFUSED audit event are the same rules whatever the channel. Who decided comes only from the
 * signed payload (`user.id`, `user.team_id`); the button carries nothing but the deployment id.
 *
 * Slack ignores the HTTP body of the answer to a block action: the outcome goes to the payload's
 * response_url (the request message replaced on a decision, an ephemeral line on a refusal), and the HTTP
 * answer is an empty 200 once the request is signed.
 */

export const INTERACTIONS_ROUTE = 'POST /slack/interactions';

export interface SlackInteractionDeps extends SignedRequestDeps, Omit<DecideDeps, 'scope'> {
  chat: ChatStore;
  poster: ResponsePoster;
  links: ChatLinks;
  /** Which response_url values may be posted to: Slack's hooks host unless a test says otherwise. */
  responseUrlAllowed?: (url: URL) => boolean;
  maxBodyBytes?: number;
}

/** A block_actions payload is a few kB (it carries the message it came from); Slack caps messages near 40 kB. */
export const DEFAULT_MAX_INTERACTION_BYTES = 64 * 1024;

const id = (pattern: RegExp) => string().check(regex(pattern));
/** The parts of Slack's block_actions payload this route reads; everything else is ignored. */
const BlockActions = looseObject({
  type: literal('block_actions'),
  // `team` is not read: it is null for an app installed org-wide (Enterprise Grid), and in a shared channel it is
  // the workspace the click came from. Who clicked is `user` alone.
  user: looseObject({
    id: id(/^[UW][A-Z0-9]{1,30}$/),
    // The user's own workspace. In a channel shared with another organisation (Slack Connect) `team.id` is the
    // workspace the click came from, not the clicker's: identity is (user.team_id, user.id).
    team_id: id(/^T[A-Z0-9]{1,30}$/),
    username: optional(string()),
  }),
  response_url: string().check(minLength(1), maxLength(2048)),
  channel: optional(looseObject({ id: string() })),
  actions: array(
    looseObject({
      action_id: union([literal(APPROVAL_ACTIONS.approve), literal(APPROVAL_ACTIONS.reject)]),
      value: id(/^[A-Za-z0-9_-]{1,128}$/),
    }),
  ).check(minLength(1), maxLength(1)),
});

export function createSlackInteractions(
  deps: SlackInteractionDeps,
): (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_INTERACTION_BYTES;
  const responseUrlAllowed = deps.responseUrlAllowed ?? slackHooksOnly;
  const ok = (): APIGatewayProxyStructuredResultV2 => ({
    statusCode: 200,
    headers: { 'cache-control': 'no-store' },
  });

  return async (event) => {
    const signed = await readSignedRequest(event, deps, { instance: '/slack/interactions', maxBodyBytes });
    if (!signed.ok) return signed.response;
    const { audit } = signed;

    let payload: unknown;
    try {
      payload = JSON.parse(readForm(signed.raw)?.get('payload') ?? '');
    } catch {
      payload = undefined;
    }
    const parsed = safeParse(BlockActions, payload);
    if (!parsed.success) {
      // Signed by Slack, so not an attacker's body; but nothing here is a button of ours (or it was altered
      // before signing, which Slack would not do). Refuse without acting.
      logger.warn('slack interaction refused', { audit: 'refused', code: 'MALFORMED_REQUEST', ...audit });
      return problemResponse(
        problem('MALFORMED_REQUEST', 400, 'not an approval button of crossdeploy', {
          instance: '/slack/interactions',
        }),
      );
    }
    const { user, actions } = parsed.data;
    const action = actions[0] as (typeof actions)[number];
    const deploymentId = action.value;
    const decision = action.action_id === APPROVAL_ACTIONS.approve ? 'approve' : 'reject';
    const decider: Requester & { type: 'slack' } = {
      type: 'slack',
      teamId: user.team_id,
      userId: user.id,
      ...(user.username && /^[\w.-]{1,80}$/.test(user.username) ? { userName: user.username } : {}),
    };
    const responseUrl = acceptableResponseUrl(parsed.data.response_url, responseUrlAllowed);
    const answer = async (message: SlackMessage) => {
      if (responseUrl) await deps.poster.post(responseUrl, message);
    };

    // Replay protection: a signature names one (timestamp, body) pair; the same click arriving again (a
    // retry, or someone replaying a captured request inside the 5-minute window) finds the first claim.
    const signatureHash = createHash('sha256').update(signed.signature).digest('hex');
    const claim = await deps.chat.claimRequest(signatureHash, deploymentId, deps.clock.now().toISOString());
    if (!claim.claimed) {
      logger.warn('slack interaction replayed; ignored', {
        audit: 'refused',
        code: 'REPLAYED',
        deploymentId,
        requester: describeRequester(decider),
        ...audit,
      });
      return ok();
    }

    // Set once the decision was delivered: an error after that must not tell the clicker nothing happened.
    let decided: Awaited<ReturnType<typeof decide>> | undefined;
    try {
      decided = await decide({ deploymentId, decision }, decider, { ...deps, scope: {} });
      if (responseUrl) await rearm(deploymentId, responseUrl, decider, parsed.data.channel?.id);
      await answer(
        decidedMessage(
          decided.deployment,
          { decision: decided.decision, decider, decidedAt: decided.decidedAt },
          { links: deps.links, now: deps.clock.now() },
        ),
      );
    } catch (error) {
      if (!(error instanceof RequestRejectedError)) {
        logger.error('slack interaction failed on the server', {
          error,
          deploymentId,
          decided: decided !== undefined,
          ...audit,
        });
        await answer({
          ...errorMessage(
            decided
              ? `Your decision (${decided.decision === 'APPROVED' ? 'approved' : 'rejected'}) was recorded, but confirming it here failed; \`crossdeploy status ${deploymentId}\` shows the deployment.`
              : // The decision may have reached the workflow before the error (a timeout on the way back).
                `Something went wrong on the crossdeploy side; your decision may not have been recorded. \`crossdeploy status ${deploymentId}\` shows whether it was.`,
            `request id ${audit.requestId}`,
          ),
          replace_original: false,
        }).catch(() => undefined);
        return ok();
      }
      // decide() has put APPROVAL_REFUSED on the deployment; one that does not exist has nothing to put it on.
      if (error.code === 'NOT_FOUND') {
        logger.warn('slack interaction refused', {
          audit: 'refused',
          code: error.code,
          deploymentId,
          requester: describeRequester(decider),
          ...audit,
        });
      }
      await answer(refusedClickMessage(error.message, error.code));
    }
    return ok();
  };

  /**
   * A decision may come long after the command's response_url expired (Slack keeps one for 30 minutes), but
   * the click brings a fresh one for the same channel: the result of the change set is posted through it.
   * Its first post is the replaced request (counted); earlier milestones never post again.
   */
  async function rearm(
    deploymentId: string,
    responseUrl: string,
    decider: Requester & { type: 'slack' },
    channelId?: string,
  ) {
    const now = deps.clock.now();
    // The bot's channel past the new URL's 30 minutes: the click's, or else the one the command came from.
    const channel = isChannelId(channelId) ? channelId : (await deps.chat.getReply(deploymentId))?.channelId;
    // One conditional write: an item that already moved past the request (the result was posted) stays.
    await deps.chat.rearmReply({
      deploymentId,
      responseUrl,
      teamId: decider.teamId,
      userId: decider.userId,
      ...(isChannelId(channel) ? { channelId: channel } : {}),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + RESPONSE_URL_LIFETIME_MS).toISOString(),
      stage: MILESTONE_RANK.approval,
      posts: 1,
    });
  }
}
