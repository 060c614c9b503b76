/** Heredocs (`<<EOF`, `<<-EOF`, quoted delimiters) on RUN, COPY and ADD lines, as BuildKit reads them. */
import { processWords } from './shell.js';
import type { Heredoc, Node } from './node.js';

const heredocInstructions = new Set(['add', 'copy', 'run']);

export function canContainHeredoc(n: Node): boolean {
  if (n.value.toLowerCase() === 'onbuild' && n.next && n.next.children.length > 0) n = n.next.children[0]!;
  return heredocInstructions.has(n.value.toLowerCase()) && !n.json;
}

const reHeredoc = /^(\d*)<<(-?)\s*([^<]*)$/u;

/** Recognises one heredoc word (`<<EOF`, `<<-'EOF'`, `3<<EOF`); null when it is not a heredoc. */
export function parseHeredocWord(src: string): Heredoc | null {
  const m = reHeredoc.exec(src);
  if (!m) return null;
  const fd = m[1] === '' ? 0 : parseInt(m[1]!, 10);
  const chomp = m[2] === '-';
  const rest = m[3]!;
  if (rest.length === 0) return null;
  const words = processWords(rest, {}, { skipUnsetEnv: true });
  if (words.length !== 1) return null;
  const raw = processWords(rest, {}, { skipUnsetEnv: true, rawQuotes: true });
  if (raw.length !== words.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const count = (s: string) => (s.match(/['"]/g) ?? []).length;
  return { name: words[0]!, fileDescriptor: fd, expand: count(words[0]!) === count(raw[0]!), chomp, content: '' };
}

/** The heredocs an instruction line opens, in order. */
export function heredocsFromLine(line: string): Heredoc[] {
  const words = processWords(line, {}, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  const docs: Heredoc[] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    // `<< EOF`: the lexer splits the operator from its word; BuildKit accepts the space.
    if (/^\d*<<-?$/.test(w) && i + 1 < words.length) w += ' ' + words[++i]!;
    const h = parseHeredocWord(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** Removes leading tabs from every line (`<<-`). */
export function chompHeredocContent(s: string): string {
  return s.replace(/^\t+/gm, '');
}

export function splitLinesKeepEnds(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf('\n', start);
    if (i < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
