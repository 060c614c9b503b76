/**
 * `check`: the lint rules with BuildKit's `# check=` directive (`skip=Rule1,Rule2` or `skip=all`,
 * `error=true`) applied, and the findings as text, JSON or SARIF 2.1.0 for code-scanning tools.
 */
import { lint, RULES, type Finding, type LintInput } from './lint.js';

export interface CheckResult {
  findings: Finding[];
  /** `# check=error=true`: findings fail the build. */
  error: boolean;
  skipped: string[];
}

/** `# check=skip=A,B;error=true` as BuildKit reads it. */
export function checkDirective(value: string | undefined): { skip: string[]; error: boolean } {
  const out = { skip: [] as string[], error: false };
  for (const part of (value ?? '').split(';')) {
    const [k, v = ''] = part.split('=').map((x) => x.trim());
    if (k === 'skip') out.skip.push(...v.split(',').map((x) => x.trim()).filter(Boolean));
    if (k === 'error') out.error = v === 'true';
  }
  return out;
}

export function runChecks(inp: LintInput): CheckResult {
  const d = checkDirective(inp.df.directives.find((x) => x.name === 'check')?.value);
  const all = d.skip.some((s) => s.toLowerCase() === 'all');
  const findings = all ? [] : lint(inp).filter((f) => !d.skip.includes(f.rule));
  return { findings, error: d.error, skipped: d.skip };
}

export function formatText(r: CheckResult, file: string): string {
  if (r.findings.length === 0) return 'Check complete, no warnings found.\n';
  const lines = r.findings.map((f) => `${file}${f.line ? `:${f.line}` : ''} ${f.rule}: ${f.message}\n  ${RULES[f.rule] ?? ''}\n`);
  return `${lines.join('')}Check complete, ${r.findings.length} warning${r.findings.length === 1 ? '' : 's'} found.\n`;
}

/** SARIF 2.1.0: one run, the rules used, one result per finding located in the Dockerfile. */
export function formatSarif(r: CheckResult, file: string, version: string): string {
  const used = [...new Set(r.findings.map((f) => f.rule))];
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'tsbuild', version, rules: used.map((id) => ({ id, shortDescription: { text: RULES[id] ?? id } })) } },
      results: r.findings.map((f) => ({
        ruleId: f.rule,
        ruleIndex: used.indexOf(f.rule),
        level: r.error ? 'error' : 'warning',
        message: { text: f.message },
        locations: [{ physicalLocation: { artifactLocation: { uri: file }, region: { startLine: Math.max(1, f.line) } } }],
      })),
    }],
  };
  return `${JSON.stringify(sarif, null, 2)}\n`;
}
