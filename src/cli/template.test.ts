/** --format: Go's text/template as Docker users write it; expected outputs are what Go (docker 20.10's CLI) prints. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GoNil, nilPointer } from '../app/index.js';
import { UsageError } from '../errors/index.js';
import { formatRows } from './template.js';

const rows = [
  { Repository: 'app', Tag: '1', ID: 'abc', Size: '5MB', Config: { Labels: { team: 'core' }, Env: ['A=1', 'B=2'] } },
  { Repository: 'db', Tag: 'latest', ID: 'def', Size: '12MB', Config: { Labels: {}, Env: [] } },
];
const one = (f: string, v: unknown = rows[0]) => formatRows(f, [v]).replace(/\n$/, '');

test('fields, nested fields, json, functions, escapes', () => {
  assert.is(formatRows('{{.ID}} {{.Size}}', rows), 'abc 5MB\ndef 12MB\n');
  assert.is(one('{{.Config.Labels.team}}'), 'core');
  assert.is(one('{{json .Config.Env}}'), '["A=1","B=2"]');
  assert.is(one('{{json .}}', { a: 1 }), '{"a":1}');
  assert.is(formatRows('{{upper .Repository}}:{{lower .Tag}}', rows.slice(1)), 'DB:latest\n');
  assert.is(one('{{join .Config.Env ","}}'), 'A=1,B=2');
  assert.is(one('{{.ID}}\\t{{.Tag}}'), 'abc\t1');
});

test('values print as Go %v: maps sorted as map[k:v], lists [a b], structs {…}, missing <no value>', () => {
  assert.is(one('{{.Config.Labels}}', { Config: { Labels: { b: '2', a: '1' } } }), 'map[a:1 b:2]');
  assert.is(one('{{.Config.Labels}}', { Config: { Labels: {} } }), 'map[]');
  assert.is(one('{{.Config.Env}}'), '[A=1 B=2]');
  assert.is(one('{{.State}}', { State: { Status: 'running', Running: true, Pid: 42 } }), '{running true 42}');
  assert.is(one('{{.Config.Labels.nope}}'), '<no value>', 'a map without the key');
  assert.is(one('{{.X}}', { X: null }), '<nil>');
});

test('pipelines, parentheses, index, len, printf, comparisons, and/or/not', () => {
  assert.is(one('{{.Repository | upper}}'), 'APP');
  assert.is(one('{{.Config.Env | json}}'), '["A=1","B=2"]');
  assert.is(one('{{index .Config.Labels "team"}}'), 'core');
  assert.is(one('{{index .Config.Labels "missing"}}'), '', 'a string map gives "" for a missing key, as Go');
  assert.is(one('{{index .Config.Env 1}}'), 'B=2');
  assert.is(one('{{len .Config.Env}} {{len .Repository}} {{len .Config.Labels}}'), '2 3 1');
  assert.is(one('{{printf "%-6s|%5s|%03d|%.2f|%q|%v|%x" .Repository .Tag 7 3.14159 "a\\"b" .Config.Env 255}}'), 'app   |    1|007|3.14|"a\\"b"|[A=1 B=2]|ff');
  assert.is(one('{{printf "%s %s" "only"}}'), 'only %!s(MISSING)');
  assert.is(formatRows('{{print 1 2 "x" 3}} {{println "a" 1}}', [{}]), '1 2x3 a 1\n');
  assert.is(one('{{if eq .Tag "1" "2"}}yes{{end}} {{if ne .Tag "1"}}no{{else}}same{{end}}'), 'yes same');
  assert.is(one('{{if and .Config.Env (not .Config.Nope)}}a{{end}}', { Config: { Env: [1], Nope: false } }), 'a');
  assert.is(one('{{or .Missing "fallback"}}', { Missing: '' }), 'fallback');
  assert.is(one('{{if lt 1 2}}lt{{end}}{{if ge "b" "a"}} ge{{end}}'), 'lt ge');
  assert.is(one('{{(index .Items 0).Name}}', { Items: [{ Name: 'first' }] }), 'first');
  assert.is(one('{{slice .Repository 1 3}} {{truncate .Repository 2}} {{title "hello world"}}|{{pad "x" 1 2}}|'), 'pp ap Hello World| x  |');
  assert.is(one('{{split "a,b" ","}}'), '[a b]');
});

test('range with variables, else, break and continue; if/else if; with; $ and declared variables', () => {
  assert.is(formatRows('{{range .Config.Env}}[{{.}}]{{end}}', rows), '[A=1][B=2]\n\n');
  assert.is(one('{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}'), '0=A=1;1=B=2;');
  assert.is(one('{{range $k, $v := .L}}{{$k}}:{{$v}} {{end}}', { L: { z: 1, a: 2 } }), 'a:2 z:1 ', 'map keys in order, as Go');
  assert.is(one('{{range .Config.Env}}{{.}}{{else}}none{{end}}', rows[1]), 'none');
  assert.is(one('{{range .N}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}', { N: [0, 1, 2, 3, 4] }), '02');
  assert.is(one('{{range .Config.Env}}{{$.ID}}:{{.}} {{end}}'), 'abc:A=1 abc:B=2 ');
  assert.is(one('{{$t := .Tag}}{{range .Config.Env}}{{$t}}{{end}}'), '11');
  assert.is(one('{{$n := 1}}{{$n = 2}}{{$n}}'), '2');
  assert.is(one('{{if eq .Tag "x"}}x{{else if eq .Tag "1"}}one{{else}}other{{end}}'), 'one');
  assert.is(one('{{with .Config.Labels.team}}team {{.}}{{else}}none{{end}}'), 'team core');
  assert.is(one('{{with .Config.Labels.nope}}x{{else}}none{{end}}'), 'none');
  assert.is(one('{{.ID}}{{if .Config.Env}} has env{{end}}', rows[1]), 'def');
});

test('trim markers and comments', () => {
  assert.is(one('a  {{- .ID -}}  b{{/* a comment */}}'), 'aabcb');
  assert.is(one('{{range .Config.Env -}}\n  {{.}}\n{{- end}}'), 'A=1B=2');
  assert.is(one('{{"}}"}}'), '}}', 'a string may hold the closing braces');
});

test('an unset slice or map of a Docker struct: null in JSON, [] or map[] in a template, empty', () => {
  const c = { Config: { Entrypoint: new GoNil('slice'), Labels: new GoNil('map') } };
  assert.is(one('{{.Config.Entrypoint}} {{.Config.Labels}} {{json .Config.Entrypoint}} {{json .}}', c), '[] map[] null {"Config":{"Entrypoint":null,"Labels":null}}');
  assert.is(one('{{len .Config.Entrypoint}} {{if .Config.Labels}}set{{else}}unset{{end}} {{range .Config.Labels}}x{{end}}[{{index .Config.Labels "k"}}] {{.Config.Labels.k}}', c), '0 unset [] <no value>');
});

test('table: a header of the field names, columns aligned', () => {
  assert.is(formatRows('table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}', rows), 'REPOSITORY   TAG      ID\napp          1        abc\ndb           latest   def\n');
});

test('a quoted "\\n" is a newline, as the CLI has already turned it into one; a bad escape is an error', () => {
  assert.is(formatRows('{{range .Config.Env}}{{.}}{{"\\n"}}{{end}}', [{ Config: { Env: ['A=1', 'B=2'] } }]), 'A=1\nB=2\n');
  assert.throws(() => formatRows('{{"\\q"}}', rows), /bad string literal/);
});

test('mistakes are errors that say what exists, never empty output', () => {
  assert.throws(() => formatRows('{{.Nope}}', rows), (e: unknown) => e instanceof UsageError && /can't evaluate field Nope in \. \(fields here: Repository, Tag, ID, Size, Config\)/.test(e.message));
  assert.throws(() => formatRows('{{nosuch .ID}}', rows), /unknown function "nosuch" \(known: .*index.*\)/);
  assert.throws(() => formatRows('{{range .Config.Env}}x', rows), /without \{\{end\}\}/);
  assert.throws(() => formatRows('x{{end}}', rows), /\{\{end\}\} without/);
  assert.throws(() => formatRows('{{.ID', rows), /unclosed action/);
  assert.throws(() => formatRows('{{$x}}', rows), /undefined variable \$x/);
  assert.throws(() => formatRows('{{break}}', rows), /outside \{\{range\}\}/);
  assert.throws(() => formatRows('{{.ID.More}}', rows), /can't evaluate field More in \.ID, which is the string abc/);
  assert.throws(() => formatRows('{{.ID "x"}}', rows), /only a function takes arguments/);
  assert.throws(() => formatRows('{{.A.B}}', [{ A: null }]), /nil value evaluating \.A\.B/);
  // A nil pointer of Docker's structs (State.Health without a healthcheck): <nil>, false, an error past it, absent from JSON.
  const st = [{ State: { Health: nilPointer } }];
  assert.is(formatRows('{{.State.Health}}|{{if .State.Health}}y{{else}}n{{end}}|{{json .State}}', st), '<nil>|n|{}\n');
  assert.throws(() => formatRows('{{.State.Health.Status}}', st), /nil pointer evaluating \.State\.Health\.Status \(test it first: \{\{if \.State\.Health\}\}/);
});

test.run();
