/**
 * CloudFormation/SAM YAML, short intrinsic tags included, read into the long JSON form
 * (`!Ref X` -> `{ Ref: 'X' }`, `!GetAtt A.B` -> `{ 'Fn::GetAtt': ['A', 'B'] }`, ...). Lives here, not in
 * scripts/, because the template policy check runs it in the doctor and in the deploy job.
 */
import { isMap, isSeq, parseDocument, type Tags } from 'yaml';

// `yaml-cfn` rejects !ToJsonString and js-yaml-cloudformation-schema turns 2010-09-09 into a Date,
// hence this small tag set on top of the `yaml` core schema.
const FN_TAGS = [
  'And',
  'Base64',
  'Cidr',
  'Equals',
  'FindInMap',
  'GetAZs',
  'If',
  'ImportValue',
  'Join',
  'Length',
  'Not',
  'Or',
  'Select',
  'Split',
  'Sub',
  'ToJsonString',
  'Transform',
] as const;

const toJs = (node: unknown): unknown =>
  isMap(node) || isSeq(node) ? (node as { toJSON(): unknown }).toJSON() : node;

const tagsFor = (tag: string, wrap: (value: unknown) => unknown): Tags => [
  { tag, resolve: (value: string) => wrap(value) },
  { tag, collection: 'seq', resolve: (seq) => wrap(toJs(seq)) },
  { tag, collection: 'map', resolve: (map) => wrap(toJs(map)) },
];

export const cfnTags: Tags = [
  ...tagsFor('!Ref', (value) => ({ Ref: value })),
  ...tagsFor('!Condition', (value) => ({ Condition: value })),
  // The scalar form `!GetAtt Res.Attr` splits at the first dot; nested attributes keep theirs.
  ...tagsFor('!GetAtt', (value) => {
    if (typeof value !== 'string') return { 'Fn::GetAtt': value };
    const dot = value.indexOf('.');
    return { 'Fn::GetAtt': dot < 0 ? [value] : [value.slice(0, dot), value.slice(dot + 1)] };
  }),
  ...FN_TAGS.flatMap((name) => tagsFor(`!${name}`, (value) => ({ [`Fn::${name}`]: value }))),
];

/**
 * A template as `sam deploy` will read it, for the policy check: JSON first (SAM CLI tries JSON first), then
 * YAML with `<<` merge keys on, because SAM CLI's PyYAML loader merges them and a check that saw a `<<` key
 * where SAM sees a merged statement could be walked around. Duplicate keys, unknown tags and any YAML error
 * throw: a template this cannot read the same way is refused, never half-read.
 */
export function parseTemplateText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON: YAML below.
  }
  const document = parseDocument(text, {
    customTags: cfnTags,
    uniqueKeys: true,
    strict: true,
    merge: true,
    prettyErrors: true,
  });
  // An unknown tag is only a warning to `yaml`, which then keeps the bare value: SAM CLI would read it as
  // an intrinsic function, so here it is an error.
  const problem = document.errors[0] ?? document.warnings[0];
  if (problem) throw new Error(problem.message);
  return document.toJS({ maxAliasCount: 1000 });
}
