import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ChatLinks, ChatStore, SlackMessage } from '#shared/chat/ports.ts';
import {
  acceptRequest,
  attributeRequest,
  type Intake,
  type IntakeDeps,
  refuseRequest,
} from '#shared/deployments/intake.ts';
import { type DeploymentKind, type ValidRequest, validateByKind } from '#shared/deployments/validation.ts';
import { logger } from '#shared/logger.ts';
import { findTarget, type Registry } from '#shared/registry/registry.ts';
import { describeRequester } from '#shared/registry/requester.ts';
import type { Deployment, Requester } from '#shared/types.ts';
import { type ChatCommand, parseCommand } from './commands.ts';
import {
  acceptedMessage,
  errorMessage,
  helpMessage,
  historyMessage,
  rejectedMessage,
  statusMessage,
} from './messages.ts';
import { isChannelId } from './poster.ts';
import { acceptableResponseUrl, readForm, readSignedRequest } from './signed.ts';

/**
 * The slash-command core: a signed Slack request in (API Gateway HTTP API payload 2.0, from the Lambda or
 * from local mode), a reply out. After the signature every answer is HTTP 200 with an ephemeral message,
 * because Slack shows anything else as a bare "dispatch_failed". Deployments go through the same intake as
 * the HTTP API; the requester is the typed `slack` requester, so registry rules and SourceIdentity apply.
 */

export interface SlackCommandDeps extends IntakeDeps {
  registry: Registry;
  chat: ChatStore;
  links: ChatLinks;
  /** The signing secret (read once per process and cached by the caller). */
  signingSecret: () => Promise<string>;
  /** Which response_url values may be stored and posted to: Slack's hooks host unless a test says otherwise. */
  responseUrlAllowed?: (url: URL) => boolean;
  maxBodyBytes?: number;
}

export type SlackCommandHandler = (
  event: APIGatewayProxyEventV2,
) => Promise<APIGatewayProxyStructuredResultV2>;

/** Slack's own payloads are a few hundred bytes; anything near this is not a slash command. */
export const DEFAULT_MAX_SLACK_BODY_BYTES = 16 * 1024;
/** Slack lets a response_url be used for 30 minutes; a margin keeps the last post inside the window. */
export const RESPONSE_URL_LIFETIME_MS = 29 * 60_000;
const HISTORY_LIMIT = 10;
const DEPLOYMENT_ID = /^[A-Za-z0-9_-]{1,128}$/;
const TEAM_ID = /^T[A-Z0-9]{1,30}$/;
const USER_ID = /^[UW][A-Z0-9]{1,30}$/;

export const slackHooksOnly = (url: URL) =>
  url.protocol === 'https:' && (url.hostname === 'hooks.slack.com' || url.hostname === 'hooks.slack-gov.com');

/** A chat command that asks for a deployment, as the body the API's route for it would take. */
interface ChatRequest {
  kind: DeploymentKind;
  body: Record<string, unknown>;
  /** What a refusal is filed under: a promotion's target environment is `to`. */
  environment: string;
}

function requestOf(command: ChatCommand & { kind: 'deploy' | 'promote' | 'rollback' }): ChatRequest {
  const reason = command.reason !== undefined ? { reason: command.reason } : {};
  switch (command.kind) {
    case 'deploy': {
      const { application, environment, ref } = command;
      const body = { application, environment, ...(ref !== undefined ? { ref } : {}), ...reason };
      return { kind: 'deploy', body, environment };
    }
    case 'promote': {
      const { application, from, to } = command;
      return { kind: 'promotion', body: { application, from, to, ...reason }, environment: to };
    }
    case 'rollback': {
      const { application, environment, release } = command;
      return { kind: 'rollback', body: { application, environment, release, ...reason }, environment };
    }
  }
}

interface Invocation {
  requestId: string;
  requester: Requester & { type: 'slack' };
  form: URLSearchParams;
  signature: string;
}

export function createSlackCommands(deps: SlackCommandDeps): SlackCommandHandler {
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_SLACK_BODY_BYTES;
  const responseUrlAllowed = deps.responseUrlAllowed ?? slackHooksOnly;

  return async (event) => {
    const signed = await readSignedRequest(event, deps, { instance: '/slack/commands', maxBodyBytes });
    if (!signed.ok) return signed.response;
    const { raw, signature, audit } = signed;
    const requestId = audit.requestId;

    // Signed by Slack: from here on every answer is a 200 with a message for the person.
    try {
      const form = readForm(raw);
      const teamId = form?.get('team_id') ?? '';
      const userId = form?.get('user_id') ?? '';
      if (!form || !TEAM_ID.test(teamId) || !USER_ID.test(userId)) {
        logger.warn('slack request unreadable', { audit: 'refused', code: 'MALFORMED_REQUEST', ...audit });
        return reply(errorMessage('This request could not be read (no team or user id).'));
      }
      const userName = form.get('user_name') ?? '';
      const requester = {
        type: 'slack' as const,
        teamId,
        userId,
        ...(/^[\w.-]{1,80}$/.test(userName) ? { userName } : {}),
      };
      const command = parseCommand(form.get('text') ?? '');
      logger.info('slack command', {
        command: command.kind,
        teamId,
        userId,
        channelId: form.get('channel_id') ?? undefined,
        requestId,
      });
      return reply(await dispatch(command, { requestId, requester, form, signature }));
    } catch (error) {
      logger.error('slack command failed on the server', { error, requestId });
      return reply(
        errorMessage(
          'Something went wrong on the crossdeploy side; nothing new was started.',
          requestId ? `request id ${requestId}` : undefined,
        ),
      );
    }
  };

  async function dispatch(command: ChatCommand, call: Invocation): Promise<SlackMessage> {
    switch (command.kind) {
      case 'help':
        return helpMessage();
      case 'invalid':
        logger.info('slack command refused', {
          audit: 'refused',
          code: 'MALFORMED_REQUEST',
          teamId: call.requester.teamId,
          userId: call.requester.userId,
          requestId: call.requestId,
        });
        return errorMessage(command.message, 'Type `/deploy help` for the commands.');
      case 'status':
        return status(command.deploymentId, call.requester);
      case 'history':
        return history(command.application, command.environment, call.requester);
      case 'deploy':
      case 'promote':
      case 'rollback':
        return request(requestOf(command), call);
    }
  }

  /** Deploy, promote and rollback: replay claim, the API's validation, and the shared intake. */
  async function request(asked: ChatRequest, call: Invocation): Promise<SlackMessage> {
    const { store, chat, clock } = deps;
    const now = clock.now();
    // Replay protection: the signature names one (timestamp, body) pair, so a second arrival of the same
    // signed request finds the first one's claim and its deployment, and starts nothing new.
    const signatureHash = createHash('sha256').update(call.signature).digest('hex');
    let deploymentId = deps.newId();
    const claim = await chat.claimRequest(signatureHash, deploymentId, now.toISOString());
    let replay = false;
    if (!claim.claimed) {
      deploymentId = claim.deploymentId;
      replay = true;
      const original = await store.getDeployment(deploymentId);
      logger.info('slack request replayed', { deploymentId, requestId: call.requestId });
      // A QUEUED original may be a first attempt that died before starting the workflow: finish it below.
      if (original && original.status !== 'QUEUED') return replayed(original);
    }

    let valid: ValidRequest;
    try {
      valid = validateByKind[asked.kind](asked.body, call.requester, deps.registry, now);
    } catch (error) {
      const context = { requestId: call.requestId };
      const attribution = attributeRequest(asked.kind, asked.body);
      const intake = await refuseRequest(error, attribution, call.requester, deps, context, deploymentId);
      // Nothing is recorded for a target the registry lacks: this line is the refusal's audit.
      if (intake.outcome === 'unattributed') {
        logger.warn('slack request refused', {
          audit: 'refused',
          code: intake.error.code,
          status: intake.error.httpStatus,
          requester: describeRequester(call.requester),
          requestId: call.requestId,
          ...intake.named,
        });
      }
      return answer(intake);
    }

    const responseUrl = acceptableResponseUrl(call.form.get('response_url'), responseUrlAllowed);
    const channelId = call.form.get('channel_id') ?? '';
    const intake = await acceptRequest(deploymentId, valid, call.requester, deps, {
      context: { requestId: call.requestId },
      replay,
      // Stored only for a request about to start (a refusal never reports back), and before the workflow
      // starts, so that its first step already finds where to report.
      beforeStart: async () => {
        if (!responseUrl) return;
        await chat.putReply({
          deploymentId,
          responseUrl,
          teamId: call.requester.teamId,
          userId: call.requester.userId,
          ...(isChannelId(channelId) ? { channelId } : {}),
          createdAt: now.toISOString(),
          expiresAt: new Date(now.getTime() + RESPONSE_URL_LIFETIME_MS).toISOString(),
          stage: 0,
          posts: 0,
        });
      },
    });
    // A start that failed reports nothing more: the URL is not kept a moment longer than useful.
    if (responseUrl && intake.outcome === 'start-failed') await chat.deleteReply(deploymentId);
    return answer(intake, responseUrl !== undefined);
  }

  function answer(intake: Intake, progress = false): SlackMessage {
    switch (intake.outcome) {
      case 'accepted':
        return acceptedMessage(intake.deployment, {
          replayed: intake.replayed,
          progress,
          links: deps.links,
          now: deps.clock.now(),
        });
      case 'rejected':
        return rejectedMessage(
          intake.error.message,
          intake.error.code,
          intake.recorded ? intake.deployment.deploymentId : undefined,
        );
      case 'unattributed':
        return rejectedMessage(intake.error.message, intake.error.code);
      case 'start-failed':
        return errorMessage(
          'The deployment could not be started; it is recorded as FAILED.',
          `deployment \`${intake.deploymentId}\` · EXECUTION_FAILED`,
        );
    }
  }

  function replayed(original: Deployment): SlackMessage {
    if (original.status === 'REJECTED' && original.errorMessage) {
      return rejectedMessage(original.errorMessage, original.errorCode ?? 'REJECTED', original.deploymentId);
    }
    return acceptedMessage(original, {
      replayed: true,
      progress: false,
      links: deps.links,
      now: deps.clock.now(),
    });
  }

  async function status(id: string, requester: Invocation['requester']): Promise<SlackMessage> {
    const deployment = DEPLOYMENT_ID.test(id) ? await deps.store.getDeployment(id) : undefined;
    // A deployment the team may not see reads exactly like one that does not exist.
    if (!deployment || !teamMaySee(requester, deployment.application, deployment.environment)) {
      return errorMessage(`No deployment ${id.slice(0, 128)} that you can see.`);
    }
    return statusMessage(deployment, deps.links, deps.clock.now());
  }

  async function history(application: string, environment: string, requester: Invocation['requester']) {
    if (!teamMaySee(requester, application, environment)) {
      return errorMessage(
        `No environment ${application.slice(0, 63)}/${environment.slice(0, 63)} that you can see.`,
      );
    }
    const page = await deps.store.listHistory(application, environment, { limit: HISTORY_LIMIT });
    return historyMessage(application, environment, page.items, deps.clock.now());
  }

  /**
   * Reading status and history needs less than deploying: the workspace must be one the registry lists for
   * that environment's readers (any of its users), or, when it lists no readers, for its requesters or
   * approvers. Another workspace that installed the same app sees nothing.
   */
  function teamMaySee(requester: Invocation['requester'], application: string, environment: string): boolean {
    const env = findTarget(deps.registry, application, environment)?.env;
    if (!env) return false;
    const rules = env.readers ? [env.readers] : [env.allowedRequesters, env.approvers];
    return rules.some((list) => list.slack.some((rule) => rule.team === requester.teamId));
  }
}

function reply(message: SlackMessage): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify(message),
  };
}
