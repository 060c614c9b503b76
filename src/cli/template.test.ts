/** The --format template subset, as Docker users write it. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../errors/index.js';
import { formatRows } from './template.js';

const rows = [
  { Repository: 'app', Tag: '1', ID: 'abc', Size: '5MB', Config: { Labels: { team: 'core' }, Env: ['A=1', 'B=2'] } },
  { Repository: 'db', Tag: 'latest', ID: 'def', Size: '12MB', Config: { Labels: {}, Env: [] } },
];

test('fields, nested fields, json, functions, escapes', () => {
  assert.is(formatRows('{{.ID}} {{.Size}}', rows), 'abc 5MB\ndef 12MB\n');
  assert.is(formatRows('{{.Config.Labels.team}}', rows.slice(0, 1)), 'core\n');
  assert.is(formatRows('{{json .Config.Env}}', rows.slice(0, 1)), '["A=1","B=2"]\n');
  assert.is(formatRows('{{json .}}', [{ a: 1 }]), '{"a":1}\n');
  assert.is(formatRows('{{upper .Repository}}:{{lower .Tag}}', rows.slice(1)), 'DB:latest\n');
  assert.is(formatRows('{{join .Config.Env ","}}', rows.slice(0, 1)), 'A=1,B=2\n');
  assert.is(formatRows('{{.ID}}\\t{{.Tag}}', rows.slice(0, 1)), 'abc\t1\n');
});

test('range and if', () => {
  assert.is(formatRows('{{range .Config.Env}}[{{.}}]{{end}}', rows), '[A=1][B=2]\n\n');
  assert.is(formatRows('{{.ID}}{{if .Config.Env}} has env{{end}}', rows), 'abc has env\ndef\n');
  assert.is(formatRows('{{range .Config.Labels}}{{.}}{{end}}', rows.slice(0, 1)), 'core\n');
});

test('table: a header of the field names, columns aligned', () => {
  assert.is(formatRows('table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}', rows), 'REPOSITORY   TAG      ID\napp          1        abc\ndb           latest   def\n');
});

test('unknown fields and functions are errors that say what exists', () => {
  assert.throws(() => formatRows('{{.Nope}}', rows), (e: unknown) => e instanceof UsageError && /no field "Nope" \(fields here: Repository, Tag, ID, Size, Config\)/.test(e.message));
  assert.throws(() => formatRows('{{title .ID}}', rows), /unknown function "title"/);
  assert.throws(() => formatRows('{{range .Config.Env}}x', rows), /without \{\{end\}\}/);
  assert.throws(() => formatRows('x{{end}}', rows), /\{\{end\}\} without/);
});

test.run();
