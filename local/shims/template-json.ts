/**
 * Simulate mode's `sam build` writes the built template as JSON (CloudFormation reads either form): the
 * deploy buildspec's template check then needs no PyYAML, so the quickstart runs on a machine with only a
 * plain python3. Usage: node template-json.ts <template.yaml> <out.json>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCfnYaml } from '../../scripts/cfn-yaml.ts';

const [source, target] = process.argv.slice(2);
if (!source || !target) {
  console.error('usage: template-json.ts <template> <out>');
  process.exit(2);
}
writeFileSync(target, `${JSON.stringify(parseCfnYaml(readFileSync(source, 'utf8')), null, 2)}\n`);
