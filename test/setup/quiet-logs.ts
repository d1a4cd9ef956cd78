// Handler logs are silent in tests, so a passing run prints no pages of JSON lines. A test that reads log
// lines asks for them (test/support/logs.ts, showLogs); a spy on the logger sees every call either way.
// Only this process's logger is set: a spawned local server or CLI keeps the level its env gives it.
import { logger } from '#shared/logger.ts';
import { QUIET_LEVEL } from '#test/support/logs.ts';

logger.setLogLevel(QUIET_LEVEL);
