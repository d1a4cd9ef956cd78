// The sample function crossdeploy deploys: answers with the stage it runs in.
export const handler = async () => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ message: 'hello from crossdeploy', stage: process.env.STAGE }),
});
