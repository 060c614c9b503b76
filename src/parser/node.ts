/** BuildKit's parser Node and what parseAST returns, with its Dump format. */
import type { Directive } from './directives.js';
import { goQuote } from './quote.js';

export interface Heredoc {
  name: string;
  fileDescriptor: number;
  expand: boolean;
  chomp: boolean;
  content: string;
}

export interface Node {
  value: string;
  next: Node | null;
  children: Node[];
  heredocs: Heredoc[];
  json: boolean;
  original: string;
  flags: string[];
  startLine: number;
  endLine: number;
  prevComment: string[];
}

export interface Warning {
  short: string;
  detail: string;
  rule: string;
  line: number;
}

export interface ParseResult {
  ast: Node;
  directives: Directive[];
  escapeToken: string;
  warnings: Warning[];
}

export const MAX_LINE_BYTES = 65535;

export function node(value = '', next: Node | null = null): Node {
  return { value, next, children: [], heredocs: [], json: false, original: '', flags: [], startLine: 0, endLine: 0, prevComment: [] };
}

/** BuildKit's Node.Dump. */
export function dumpNode(n: Node): string {
  let str = n.value.toLowerCase();
  if (n.flags.length > 0) str += ' [' + n.flags.map(goQuote).join(' ') + ']';
  for (const c of n.children) str += '(' + dumpNode(c) + ')\n';
  for (let x = n.next; x; x = x.next) {
    str += x.children.length > 0 ? ' ' + dumpNode(x) : ' ' + goQuote(x.value);
  }
  return str.trim();
}
