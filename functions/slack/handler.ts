import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
  EventBridgeEvent,
  ScheduledEvent,
} from 'aws-lambda';
import { ulid } from 'ulid';
import * as aws from '#shared/aws/runtime.ts';
import { cachedSecret, refreshingSecret, SecretsManagerSecret } from '#shared/aws/secrets.ts';
import { DynamoChatStore } from '#shared/aws/slack-store.ts';
import { SfnWorkflowStarter } from '#shared/aws/workflow.ts';
import { arn, envShapes, readEnv } from '#shared/config.ts';
import { logger, withLogKeys } from '#shared/logger.ts';
import type { JobRunner } from '#shared/ports.ts';
import { AWAITING_APPROVAL_DETAIL_TYPE } from '#shared/ports.ts';
import { errorResponse } from '../api/problem.ts';
import { createSlackCommands, type SlackCommandDeps, type SlackCommandHandler } from './core.ts';
import { createSlackInteractions, INTERACTIONS_ROUTE } from './interactions.ts';
import { executionConsoleLinks } from './links.ts';
import {
  milestoneOfExecution,
  type NotifierDeps,
  notifyJobStarted,
  notifyMilestone,
  sweepExpiredReplies,
} from './notifier.ts';
import { FetchBotPoster, FetchResponsePoster } from './poster.ts';

/** "Step Functions Execution Status Change": RUNNING (acknowledgement) and the terminal statuses. */
export type ExecutionStatusChange = EventBridgeEvent<
  'Step Functions Execution Status Change',
  { name: string; status: string }
>;
/** CodeBuild "Build State Change" with status IN_PROGRESS: a build or deploy job started. */
export type BuildStarted = EventBridgeEvent<'CodeBuild Build State Change', { 'build-id': string }>;
/** crossdeploy's own "Deployment Awaiting Approval" (functions/approval puts it once the decision is awaited). */
export type AwaitingApproval = EventBridgeEvent<
  typeof AWAITING_APPROVAL_DETAIL_TYPE,
  { deploymentId: string }
>;
export type SlackEvent =
  | APIGatewayProxyEventV2
  | ExecutionStatusChange
  | BuildStarted
  | AwaitingApproval
  | ScheduledEvent;

export interface SlackDeps {
  commands: SlackCommandHandler;
  interactions: SlackCommandHandler;
  notifier: NotifierDeps & { runner: JobRunner };
}

const isHttp = (event: SlackEvent): event is APIGatewayProxyEventV2 =>
  'requestContext' in event && 'http' in (event.requestContext ?? {});

/**
 * One function, two jobs that share the chat item: the slash command (HTTP API, no IAM authorization; the
 * Slack signature is checked by the core) and progress back to the channel (the workflow's EventBridge
 * events, and a schedule that deletes expired response_urls).
 */
export const createHandler =
  (deps: () => SlackDeps) =>
  async (event: SlackEvent, context?: Context): Promise<APIGatewayProxyStructuredResultV2 | object> => {
    // Lambda runs one invocation at a time per process and each one sets its own context.
    if (context) logger.addContext(context);
    if (isHttp(event)) {
      const requestId = event.requestContext.requestId;
      return withLogKeys({ requestId, routeKey: event.routeKey }, async () => {
        try {
          return event.routeKey === INTERACTIONS_ROUTE
            ? await deps().interactions(event)
            : await deps().commands(event);
        } catch (error) {
          // The signing secret could not be read (or config is missing): ours, so a generic 500.
          return errorResponse(error, { requestId });
        }
      });
    }
    switch (event['detail-type']) {
      case 'Step Functions Execution Status Change': {
        const { name, status } = (event as ExecutionStatusChange).detail;
        return withLogKeys({ deploymentId: name, executionStatus: status }, async () => {
          const milestone = milestoneOfExecution(status);
          const outcome = milestone
            ? await notifyMilestone(name, milestone, deps().notifier, { executionStatus: status })
            : 'skipped';
          return { outcome };
        });
      }
      case 'CodeBuild Build State Change': {
        const buildId = (event as BuildStarted).detail['build-id'];
        return withLogKeys({ buildId }, async () => ({
          outcome: await notifyJobStarted(buildId, deps().notifier),
        }));
      }
      case AWAITING_APPROVAL_DETAIL_TYPE: {
        // Any principal of the account may put an event with this source: the notifier reads the record and
        // posts only while a decision is awaited, so a forged one can at most repost the genuine request.
        const deploymentId = String((event as AwaitingApproval).detail?.deploymentId ?? '').slice(0, 128);
        return withLogKeys({ deploymentId }, async () => ({
          outcome: await notifyMilestone(deploymentId, 'approval', deps().notifier),
        }));
      }
      default:
        return await sweepExpiredReplies(deps().notifier);
    }
  };

/** The real dependencies, built once per process on first use (importing this module needs no AWS config). */
let real: SlackDeps | undefined;
function realDeps(): SlackDeps {
  if (!real) {
    const { TABLE_NAME } = readEnv(envShapes.table);
    const { STATE_MACHINE_ARN } = readEnv(envShapes.stateMachine);
    const { SLACK_SIGNING_SECRET_ARN, SLACK_BOT_TOKEN_SECRET_ARN } = readEnv({
      SLACK_SIGNING_SECRET_ARN: arn(),
      SLACK_BOT_TOKEN_SECRET_ARN: arn(),
    });
    const secrets = new SecretsManagerClient({});
    const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    });
    const chat = new DynamoChatStore({ client: documents, tableName: TABLE_NAME });
    const links = executionConsoleLinks(STATE_MACHINE_ARN);
    const poster = new FetchResponsePoster();
    const commandDeps: SlackCommandDeps = {
      store: aws.store(),
      workflow: new SfnWorkflowStarter({ client: new SFNClient({}), stateMachineArn: STATE_MACHINE_ARN }),
      registry: aws.registry(),
      clock: aws.clock,
      newId: ulid,
      chat,
      links,
      signingSecret: cachedSecret(
        new SecretsManagerSecret({ client: secrets, secretId: SLACK_SIGNING_SECRET_ARN }),
      ),
    };
    // Read only past a response_url's 30 minutes (and by the sweep), and again every 10 minutes, so a token
    // put after the deploy (or rotated) is picked up by warm processes.
    const bot = new FetchBotPoster({
      token: refreshingSecret(
        new SecretsManagerSecret({ client: secrets, secretId: SLACK_BOT_TOKEN_SECRET_ARN }),
        10 * 60 * 1000,
      ),
    });
    real = {
      commands: createSlackCommands(commandDeps),
      interactions: createSlackInteractions({
        store: commandDeps.store,
        registry: commandDeps.registry,
        tokens: aws.tokens(),
        clock: aws.clock,
        chat,
        // Slack wants the click answered within 3 seconds, and the answer waits for this post: one short
        // attempt, so a slow Slack cannot turn a delivered decision into a timeout shown to the clicker.
        poster: new FetchResponsePoster({ attempts: 1, timeoutMs: 1_500 }),
        links,
        signingSecret: commandDeps.signingSecret,
      }),
      notifier: {
        store: aws.store(),
        chat,
        poster,
        bot,
        clock: aws.clock,
        links,
        runner: aws.runner(),
      },
    };
  }
  return real;
}

export const handler = createHandler(realDeps);
