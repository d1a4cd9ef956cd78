import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { MemoryChatStore } from '#shared/chat/memory-store.ts';
import type { BotPoster, ResponsePoster } from '#shared/chat/ports.ts';
import { optionalText, readEnv } from '#shared/config.ts';
import type { SimulationCheck } from '#shared/deployments/record.ts';
import { logger } from '#shared/logger.ts';
import type { Clock, DeploymentStore, TaskTokens, WorkflowStarter } from '#shared/ports.ts';
import type { Registry } from '#shared/registry/registry.ts';
import { problem, problemResponse } from '../api/problem.ts';
import type { Api } from '../api/routes.ts';
import { createSlackCommands } from './core.ts';
import { createSlackInteractions, INTERACTIONS_ROUTE } from './interactions.ts';
import { localServerLinks } from './links.ts';
import { notifyingStore, notifyMilestone, sweepExpiredReplies } from './notifier.ts';
import { FetchBotPoster, FetchResponsePoster } from './poster.ts';

/**
 * Chat in local mode, built from the same cores as the Lambda: the slash-command route added to the local
 * API, and progress driven by the audit events the cores write (local mode has no EventBridge). Replay
 * claims and response_urls are kept in memory only.
 */

export const SLACK_ROUTE = 'POST /slack/commands';
/** Both routes Slack calls: the slash command and the approval buttons (interactivity). */
export const SLACK_ROUTES = [SLACK_ROUTE, INTERACTIONS_ROUTE] as const;
const SLACK_PATHS: Record<string, (typeof SLACK_ROUTES)[number]> = {
  '/slack/commands': SLACK_ROUTE,
  '/slack/interactions': INTERACTIONS_ROUTE,
};

export interface LocalChatOptions {
  env: NodeJS.ProcessEnv;
  registry: Registry;
  clock: Clock;
  newId: () => string;
  /** The local server's URL, known once it listens (for links in messages). */
  baseUrl: () => string | undefined;
  poster?: ResponsePoster;
  /** Default: a FetchBotPoster with CROSSDEPLOY_SLACK_BOT_TOKEN (none: progress stops with the URL). */
  bot?: BotPoster;
  responseUrlAllowed?: (url: URL) => boolean;
  /** `runner: simulate` requests are recorded as simulated, as through the API. */
  isSimulated?: SimulationCheck;
}

export function createLocalChat(options: LocalChatOptions) {
  const { CROSSDEPLOY_SLACK_SIGNING_SECRET: secret, CROSSDEPLOY_SLACK_BOT_TOKEN: botToken } = readEnv(
    { CROSSDEPLOY_SLACK_SIGNING_SECRET: optionalText(), CROSSDEPLOY_SLACK_BOT_TOKEN: optionalText() },
    options.env,
  );
  const chat = new MemoryChatStore();
  const links = localServerLinks(options.baseUrl);
  const poster = options.poster ?? new FetchResponsePoster();
  const bot = options.bot ?? new FetchBotPoster({ token: async () => botToken });

  return {
    chat,
    /** The store the orchestrator uses: a milestone's audit event also tells the notifier, detached. */
    observe(store: DeploymentStore): DeploymentStore {
      const deps = { store, chat, poster, bot, clock: options.clock, links };
      return notifyingStore(store, async (deploymentId, milestone) => {
        await notifyMilestone(deploymentId, milestone, deps);
        await sweepExpiredReplies(deps);
      });
    },
    /** The API with `POST /slack/commands` and `POST /slack/interactions` in front of it. */
    serve(api: Api, deps: { store: DeploymentStore; workflow: WorkflowStarter; tokens: TaskTokens }): Api {
      const commands = secret
        ? createSlackCommands({
            ...deps,
            registry: options.registry,
            clock: options.clock,
            newId: options.newId,
            chat,
            links,
            signingSecret: async () => secret,
            ...(options.responseUrlAllowed ? { responseUrlAllowed: options.responseUrlAllowed } : {}),
            ...(options.isSimulated ? { isSimulated: options.isSimulated } : {}),
          })
        : undefined;
      const interactions = secret
        ? createSlackInteractions({
            store: deps.store,
            registry: options.registry,
            tokens: deps.tokens,
            clock: options.clock,
            chat,
            poster,
            links,
            signingSecret: async () => secret,
            ...(options.responseUrlAllowed ? { responseUrlAllowed: options.responseUrlAllowed } : {}),
          })
        : undefined;
      return async (event, requester) => {
        const route = slackRoute(event);
        if (!route) return api(event, requester);
        if (route === INTERACTIONS_ROUTE && interactions) return interactions(event);
        if (route === SLACK_ROUTE && commands) return commands(event);
        // Nothing can verify a signature without the secret, so nothing is accepted.
        logger.warn('slack request refused: CROSSDEPLOY_SLACK_SIGNING_SECRET is not set', {
          audit: 'refused',
          code: 'UNAUTHENTICATED',
        });
        return problemResponse(
          problem('UNAUTHENTICATED', 401, 'chat is not configured on this server (no signing secret)', {
            instance: route === SLACK_ROUTE ? '/slack/commands' : '/slack/interactions',
          }),
        );
      };
    },
  };
}

/** Which Slack route a request is for, matched by route key or path so no spelling of the path slips past. */
export function slackRoute(event: APIGatewayProxyEventV2): (typeof SLACK_ROUTES)[number] | undefined {
  return slackRouteOf(event.requestContext?.http?.method ?? '', event.rawPath ?? '', event.routeKey);
}

/** The same from a request's parts (the local Slack listener asks before it builds an event). */
export function slackRouteOf(
  method: string,
  path: string,
  routeKey?: string,
): (typeof SLACK_ROUTES)[number] | undefined {
  const byKey = SLACK_ROUTES.find((route) => route === routeKey);
  if (byKey) return byKey;
  return method.toUpperCase() === 'POST' ? SLACK_PATHS[path.replace(/\/+$/, '')] : undefined;
}
