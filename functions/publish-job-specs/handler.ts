import { sendCustomResourceResponse } from '#shared/aws/custom-resource.ts';
import { S3ObjectWriter } from '#shared/aws/s3.ts';
import { withLogKeys } from '#shared/logger.ts';
import { handleJobSpecsEvent, type JobSpecObjects, type JobSpecsEvent } from './core.ts';

export const createHandler =
  (deps: () => { objects: JobSpecObjects; respond: typeof sendCustomResourceResponse }) =>
  async (event: JobSpecsEvent) =>
    withLogKeys({ requestType: event.RequestType, stackId: event.StackId }, async () => {
      const { objects, respond } = deps();
      const response = await handleJobSpecsEvent(event, { objects });
      await respond(event.ResponseURL, response);
    });

export const handler = createHandler(() => ({
  objects: new S3ObjectWriter(),
  respond: sendCustomResourceResponse,
}));
