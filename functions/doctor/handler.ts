import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { ulid } from 'ulid';
import { clock, orchestratorAccount, registry } from '#shared/aws/runtime.ts';
import { arn, readEnv, text } from '#shared/config.ts';
import { RequestRejectedError } from '#shared/errors.ts';
import { logger, withLogKeys } from '#shared/logger.ts';
import { iamRequester } from '#shared/registry/requester.ts';
import { errorResponse } from '../api/problem.ts';
import { AwsDoctorProbe } from './aws-probe.ts';
import { createDoctorApi, type DoctorApi } from './routes.ts';
import { DynamoDoctorRunStore } from './run-store.ts';

/** `POST /doctor/runs`, `GET /doctor/runs/{id}`, run as the deployer role: the principal every target trusts. */

let api: DoctorApi | undefined;
function realApi(): DoctorApi {
  if (!api) {
    const env = readEnv({ TABLE_NAME: text(3), DEPLOYER_ROLE_ARN: arn(), DEPLOY_JOB_ROLE_ARN: arn() });
    const probe = new AwsDoctorProbe({ sts: new STSClient({}) });
    api = createDoctorApi({
      registry: registry(),
      store: new DynamoDoctorRunStore({
        client: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
          marshallOptions: { removeUndefinedValues: true },
        }),
        tableName: env.TABLE_NAME,
      }),
      probeFor: () => probe,
      clock,
      newId: ulid,
      mode: 'api',
      expectedCallerRoleArn: env.DEPLOYER_ROLE_ARN,
      orchestratorAccount: orchestratorAccount(),
      deployJobRoleArn: env.DEPLOY_JOB_ROLE_ARN,
    });
  }
  return api;
}

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
        return errorResponse(
          new RequestRejectedError('UNAUTHENTICATED', 401, 'the request carries no IAM principal'),
        );
      }
      return await realApi()(event, iamRequester(callerArn));
    } catch (error) {
      return errorResponse(error, { requestId });
    }
  });
}
