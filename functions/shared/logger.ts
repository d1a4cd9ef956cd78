import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one logger, configured by POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL. Log structured facts only:
 * never a whole event (API events may carry signatures; nothing here may carry credentials).
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'crossdeploy' });
