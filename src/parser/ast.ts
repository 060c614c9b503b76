/**
 * The raw Dockerfile AST, built exactly as BuildKit's parser (frontend/dockerfile/parser) builds it:
 * directives, line joining with the escape character, comments inside continuations, heredoc bodies,
 * and the per-instruction argument splitting whose dump the conformance `result` files record.
 */
import { DockerfileSyntaxError } from '../errors/index.js';
import { ShellExpansionError } from './shell.js';
import { canContainHeredoc, heredocsFromLine, splitLinesKeepEnds, utf8Length } from './heredoc.js';
import { Directives, isComment, newNodeFromLine, trimContinuation, trimLeadingWhitespace, trimNewline } from './lineparse.js';
import { MAX_LINE_BYTES, dumpNode, node, type Heredoc, type Node, type ParseResult, type Warning } from './node.js';

export { MAX_LINE_BYTES, dumpNode } from './node.js';
export type { Heredoc, Node, Warning, ParseResult } from './node.js';
export { parseWords } from './lineparse.js';
export { heredocsFromLine, parseHeredocWord, chompHeredocContent } from './heredoc.js';

/** Parses Dockerfile text into BuildKit's AST. Throws DockerfileSyntaxError only. */
export function parseAST(text: string): ParseResult {
  const d = new Directives();
  const lines = splitLinesKeepEnds(text);
  const root = node();
  root.startLine = -1;
  const warnings: Warning[] = [];
  let comments: string[] = [];
  let currentLine = 0;
  let li = 0;
  const fail = (msg: string, start: number, end = start): never => {
    throw new DockerfileSyntaxError(msg, start, end);
  };
  const scan = (): string | null => {
    if (li >= lines.length) return null;
    const l = lines[li++]!;
    if (utf8Length(trimNewline(l)) > MAX_LINE_BYTES) fail(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, li);
    return l;
  };
  const processLine = (token: string, stripLeft: boolean): string => {
    token = trimNewline(token);
    if (stripLeft) token = trimLeadingWhitespace(token);
    try {
      d.possible(token);
    } catch (e) {
      fail((e as Error).message, currentLine + 1);
    }
    return isComment(token) ? '' : token;
  };

  for (let raw = scan(); raw !== null; raw = scan()) {
    if (currentLine === 0 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
    if (isComment(raw)) {
      const c = trimLeadingWhitespace(trimNewline(raw)).slice(1).trim();
      comments = c === '' ? [] : [...comments, c];
    }
    let bytesRead = processLine(raw, true);
    currentLine++;
    const startLine = currentLine;
    let isEnd: boolean;
    [bytesRead, isEnd] = trimContinuation(bytesRead, d.escapeToken);
    if (isEnd && bytesRead.length === 0) continue;
    let buf = bytesRead;
    let hasEmptyContinuation = false;
    while (!isEnd) {
      const nraw = scan();
      if (nraw === null) break;
      const l = processLine(nraw, false);
      currentLine++;
      if (isComment(nraw)) continue;
      if (trimLeadingWhitespace(trimNewline(l)).length === 0) {
        hasEmptyContinuation = true;
        continue;
      }
      let cont: string;
      [cont, isEnd] = trimContinuation(l, d.escapeToken);
      buf += cont;
    }
    const line = buf;
    if (hasEmptyContinuation) {
      warnings.push({
        short: 'Empty continuation line found in: ' + line,
        detail: 'Empty continuation lines will become errors in a future release',
        rule: 'NoEmptyContinuation',
        line: currentLine,
      });
    }
    let child: Node;
    try {
      child = newNodeFromLine(line, d, comments);
    } catch (e) {
      return fail((e as Error).message, startLine, currentLine);
    }
    if (canContainHeredoc(child) && line.includes('<<')) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        const msg = e instanceof ShellExpansionError || e instanceof Error ? e.message : String(e);
        return fail(msg, startLine, currentLine);
      }
      for (const h of docs) {
        let terminated = false;
        for (let b = scan(); b !== null; b = scan()) {
          currentLine++;
          let possible = trimNewline(b);
          if (h.chomp) possible = possible.replace(/^\t+/, '');
          if (possible === h.name) {
            terminated = true;
            break;
          }
          h.content += b;
        }
        if (!terminated) fail('unterminated heredoc', startLine, currentLine);
        child.heredocs.push(h);
      }
    }
    child.startLine = startLine;
    child.endLine = currentLine;
    if (root.startLine < 0) root.startLine = startLine;
    root.endLine = currentLine;
    root.children.push(child);
    comments = [];
  }
  if (root.startLine < 0) fail('file with no instructions', currentLine);
  return { ast: root, directives: d.all, escapeToken: d.escapeToken, warnings };
}

/** The dump BuildKit's tests compare against (`result` files), including the final newline. */
export function dumpAST(r: ParseResult): string {
  return dumpNode(r.ast) + '\n';
}
