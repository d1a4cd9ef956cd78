import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parse } from 'yaml';

/**
 * Checks API responses against openapi.yaml, the contract: the status must be documented for the
 * operation, the content type must be one it lists, and the body must match that schema.
 */

const SPEC_ID = 'https://crossdeploy.dev/openapi.yaml';
// OpenAPI's own top-level fields are not JSON Schema keywords; declaring them keeps Ajv strict for the rest.
const OPENAPI_FIELDS = ['openapi', 'info', 'servers', 'security', 'tags', 'paths', 'components', 'webhooks'];

type Json = Record<string, unknown>;

export const spec = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as Json;

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats.default(ajv);
ajv.addVocabulary(OPENAPI_FIELDS);
ajv.addSchema({ ...spec, $id: SPEC_ID });

const pointer = (...parts: string[]) =>
  `#/${parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

function resolve(node: Json): Json {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  const parts = ref.replace(/^#\//, '').split('/');
  let target: unknown = spec;
  for (const part of parts) target = (target as Json)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  if (!target || typeof target !== 'object') throw new Error(`openapi.yaml: unresolved ${ref}`);
  return target as Json;
}

/** Validates one response of `METHOD /path/{template}` and returns its parsed body. */
export function expectValidResponse(
  method: string,
  pathTemplate: string,
  response: APIGatewayProxyStructuredResultV2,
): unknown {
  const verb = method.toLowerCase();
  const operation = (spec.paths as Json)[pathTemplate] as Json | undefined;
  const op = operation?.[verb] as Json | undefined;
  if (!op) throw new Error(`openapi.yaml documents no ${method} ${pathTemplate}`);
  const status = String(response.statusCode);
  const responses = op.responses as Json;
  const key = status in responses ? status : 'default';
  if (!(key in responses)) throw new Error(`${method} ${pathTemplate}: status ${status} is not documented`);
  if (key === 'default' && !status.startsWith('5')) {
    throw new Error(
      `${method} ${pathTemplate}: status ${status} is not documented (only 5xx may fall to default)`,
    );
  }
  const documented = resolve(responses[key] as Json);
  const headers = Object.fromEntries(
    Object.entries(response.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  const contentType = (headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  const content = documented.content as Json | undefined;
  if (!content || !(contentType in content)) {
    throw new Error(`${method} ${pathTemplate} ${status}: content type "${contentType}" is not documented`);
  }
  const body = JSON.parse(response.body ?? '');
  const location =
    typeof (responses[key] as Json).$ref === 'string'
      ? `${(responses[key] as Json).$ref as string}/content/${contentType.replace('/', '~1')}/schema`
      : `${pointer('paths', pathTemplate, verb, 'responses', key, 'content', contentType)}/schema`;
  const validate = ajv.getSchema(`${SPEC_ID}${location}`);
  if (!validate) throw new Error(`openapi.yaml: no schema at ${location}`);
  if (!validate(body)) {
    throw new Error(
      `${method} ${pathTemplate} ${status} does not match openapi.yaml:\n${ajv.errorsText(validate.errors, { separator: '\n' })}\n${JSON.stringify(body, null, 2)}`,
    );
  }
  return body;
}
