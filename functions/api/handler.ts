import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { IAMClient } from '@aws-sdk/client-iam';
import { SFNClient } from '@aws-sdk/client-sfn';
import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { ulid } from 'ulid';
import { IamRolePaths } from '#shared/aws/iam.ts';
import { CloudWatchLogReader } from '#shared/aws/logs.ts';
import { clock, orchestratorAccount, registry, store, tokens } from '#shared/aws/runtime.ts';
import { SfnWorkflowStarter } from '#shared/aws/workflow.ts';
import { envShapes, readEnv } from '#shared/config.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { logger, withLogKeys } from '#shared/logger.ts';
import { type RolePaths, resolveIamRequester } from '#shared/registry/requester.ts';
import { errorResponse } from './problem.ts';
import { type Api, createApi } from './routes.ts';

/** The real dependencies, built once per process on first use (importing this module needs no AWS config). */
let api: { api: Api; rolePaths: RolePaths } | undefined;
function realApi(): { api: Api; rolePaths: RolePaths } {
  if (!api) {
    const account = orchestratorAccount();
    const { STATE_MACHINE_ARN } = readEnv(envShapes.stateMachine);
    const { BUILD_LOG_GROUP, DEPLOY_LOG_GROUP } = readEnv(envShapes.logs);
    const rest = createApi({
      store: store(),
      workflow: new SfnWorkflowStarter({ client: new SFNClient({}), stateMachineArn: STATE_MACHINE_ARN }),
      logs: new CloudWatchLogReader({
        client: new CloudWatchLogsClient({}),
        buildLogGroup: BUILD_LOG_GROUP,
        deployLogGroup: DEPLOY_LOG_GROUP,
      }),
      registry: registry(),
      clock,
      newId: ulid,
      orchestratorAccount: account,
      tokens: tokens(),
    });
    api = { api: rest, rolePaths: new IamRolePaths({ client: new IAMClient({}), account }) };
  }
  return api;
}

/** HTTP API (payload format 2.0, IAM authorizer): the caller is the SigV4-signing principal. */
export async function handler(
  event: APIGatewayProxyEventV2WithIAMAuthorizer,
  context: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  const requestId = event.requestContext.requestId;
  // Lambda runs one invocation at a time per process and each one sets its own context.
  logger.addContext(context);
  return withLogKeys({ requestId, routeKey: event.routeKey }, async () => {
    try {
      const callerArn = event.requestContext.authorizer?.iam?.userArn;
      if (!callerArn) {
        // Only reachable through a route configured without IAM authorization: refuse rather than guess.
        return errorResponse(
          new RequestRejectedError('UNAUTHENTICATED', 401, 'the request carries no IAM principal'),
        );
      }
      const { api, rolePaths } = realApi();
      return await api(event, await resolveIamRequester(callerArn, rolePaths));
    } catch (error) {
      // Configuration errors surface on first use; they are ours, so the caller gets a generic 500.
      return errorResponse(error, { requestId });
    }
  });
}
