/**
 * `npm start`: crossdeploy's local mode. Configuration (environment variables, read once by local/config.ts):
 * PORT (3000), CROSSDEPLOY_HOST (127.0.0.1; any other address requires CROSSDEPLOY_API_TOKEN),
 * CROSSDEPLOY_DATA_DIR (.crossdeploy/), CROSSDEPLOY_REGISTRY (registry/sample.yaml), and optionally
 * CROSSDEPLOY_TABLE_NAME (+ CROSSDEPLOY_DYNAMODB_ENDPOINT) for a DynamoDB table instead of the embedded store.
 * CROSSDEPLOY_SCHEDULES=off keeps the registry's scheduled promotions from running in-process (default on).
 * CROSSDEPLOY_SLACK_SIGNING_SECRET with CROSSDEPLOY_SLACK_PORT serves Slack on a port of its own (docs/slack.md).
 */

// The handlers' structured logs would bury the banner; the terminal gets warnings unless asked for more.
// Set before anything imports the logger, hence the dynamic imports below.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_SERVICE_NAME ??= 'crossdeploy-local';

const { CrossdeployError } = await import('#shared/errors.ts');
const { readLocalConfig } = await import('./config.ts');

function fail(error: unknown): never {
  const known = error instanceof CrossdeployError;
  console.error(`crossdeploy: ${known ? error.message : ((error as Error)?.stack ?? String(error))}`);
  process.exit(known ? 2 : 1);
}

let config: ReturnType<typeof readLocalConfig>;
try {
  // Before loading the rest: a configuration mistake is reported at once.
  config = readLocalConfig();
} catch (error) {
  fail(error);
}
{
  // Jobs of `runner: local` environments need sam, aws and PyYAML: a missing one is named now, not mid-build.
  const { loadRegistryFile } = await import('#shared/registry/file.ts');
  const { checkLocalTools, systemToolProbe } = await import('./preflight.ts');
  try {
    checkLocalTools(loadRegistryFile(config.registryPath), systemToolProbe());
  } catch (error) {
    fail(error);
  }
}
const { startLocalServer } = await import('./server.ts');
let server: Awaited<ReturnType<typeof startLocalServer>>;
try {
  server = await startLocalServer(config);
} catch (error) {
  fail(error);
}
console.log(server.banner);

let closing = false;
async function shutdown(signal: NodeJS.Signals) {
  if (closing) return;
  closing = true;
  console.log(`crossdeploy: ${signal}: stopping running jobs and shutting down`);
  // A second signal, or jobs that will not die, must not keep the process around forever.
  const force = setTimeout(() => process.exit(1), 30_000);
  force.unref();
  try {
    await server.close();
  } catch (error) {
    console.error('crossdeploy: error while shutting down:', error);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
