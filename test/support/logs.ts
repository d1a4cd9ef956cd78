import { afterEach, beforeEach } from 'vitest';
import { logger } from '#shared/logger.ts';

/**
 * The level the test setup gives the logger (test/setup/quiet-logs.ts): silent, so a passing run prints
 * no pages of JSON lines. A test that reads log lines asks for them with `showLogs()`.
 */
export const QUIET_LEVEL = 'SILENT';

/** Lets every test of the calling file see the handlers' log lines (DEBUG and up), as Lambda would print them. */
export function showLogs(): void {
  beforeEach(() => logger.setLogLevel('DEBUG'));
  afterEach(() => logger.setLogLevel(QUIET_LEVEL));
}
