/**
 * The install runbook lives in the system's own docs/install.md. Only steps marked as runbook
 * steps run, in order, marked in either of two ways:
 *   ```sh runbook                  → the block runs as root on the machine with `sh -eu`
 *   ```runbook provision-key       → "PATH MODE": where the operator places the bootstrap age key
 * or, in a document written for people, by annotations that leave it as it renders:
 *   <!-- runbook -->               on the line before a fenced shell block: that block runs
 *   <!-- runbook provision-key PATH MODE -->   where the key goes, at that point of the document
 * Every other block is illustration.
 */
import { HarnessError } from '../common/errors.ts';

export type RunbookStep =
  | { kind: 'sh'; index: number; line: number; script: string }
  | { kind: 'provision-key'; index: number; line: number; path: string; mode: number };

const FENCE = /^(`{3,}|~{3,})\s*(.*)$/;

/** An annotation, an HTML comment alone on its line: invisible where the document is rendered. */
const ANNOTATION = /^\s*<!--\s*runbook(?:\s+(.*?))?\s*-->\s*$/;
/** Info strings of a block an annotation may mark: a shell's, or none. */
const SHELL_INFO = new Set(['', 'sh', 'bash', 'shell', 'console']);

interface FencedBlock {
  /** The info string's words (```sh runbook → ['sh', 'runbook']). */
  info: string[];
  /** 1-based line of the opening fence. */
  line: number;
  body: string[];
  /** The `<!-- runbook … -->` annotation on the line before it, if any. */
  annotated?: string;
}

/** A provision-key annotation outside any block: `<!-- runbook provision-key PATH MODE -->`. */
interface KeyAnnotation {
  line: number;
  words: string[];
}

/**
 * Every fenced block of a Markdown document, and every annotation that stands alone, in order;
 * an unclosed block, or a `<!-- runbook -->` followed by no block, is an error naming its line.
 */
function documentParts(markdown: string, source: string): (FencedBlock | KeyAnnotation)[] {
  const lines = markdown.split('\n');
  const parts: (FencedBlock | KeyAnnotation)[] = [];
  let pending: { line: number; words: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const annotation = ANNOTATION.exec(text);
    if (annotation) {
      if (pending) throw unmarkedAnnotation(source, pending.line);
      const words = (annotation[1] ?? '').trim();
      if (words.startsWith('provision-key')) parts.push({ line: i + 1, words: words.split(/\s+/).slice(1) });
      else if (words === '') pending = { line: i + 1, words };
      else
        throw new HarnessError(
          `${source}:${i + 1}: unknown runbook annotation "${words}": use <!-- runbook --> before a block, or <!-- runbook provision-key PATH MODE -->`,
        );
      continue;
    }
    const open = FENCE.exec(text);
    if (!open) {
      if (pending && text.trim() !== '') throw unmarkedAnnotation(source, pending.line);
      continue;
    }
    const fence = open[1]!;
    const line = i + 1;
    const body: string[] = [];
    for (i += 1; i < lines.length && !lines[i]!.startsWith(fence); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new HarnessError(`${source}:${line}: fenced block is never closed`);
    parts.push({ info: open[2]!.trim().split(/\s+/), line, body, ...(pending ? { annotated: pending.words } : {}) });
    pending = undefined;
  }
  if (pending) throw unmarkedAnnotation(source, pending.line);
  return parts;
}

/** A `<!-- runbook -->` with no fenced block after it. */
function unmarkedAnnotation(source: string, line: number): HarnessError {
  return new HarnessError(`${source}:${line}: <!-- runbook --> marks no fenced block: the next line that is not blank must open one`);
}

/** Every fenced block of a Markdown document, in order. */
function fencedBlocks(markdown: string, source: string): FencedBlock[] {
  return documentParts(markdown, source).filter((part): part is FencedBlock => 'body' in part);
}

function keyStep(source: string, line: number, words: string[], index: number): RunbookStep {
  const [path, modeText, ...extra] = words;
  if (!path?.startsWith('/') || !modeText || !/^0?[0-7]{3}$/.test(modeText) || extra.length) {
    throw new HarnessError(`${source}:${line}: provision-key must hold "ABSOLUTE_PATH MODE", e.g. "/var/lib/sops-nix/key.txt 0600"`);
  }
  return { kind: 'provision-key', index, line, path, mode: Number.parseInt(modeText, 8) };
}

/** What the harness says when a document marks no step: both ways, and the dry run. */
export function noStepsHelp(source: string): string {
  return (
    `${source} holds no runbook steps. Mark them in either of two ways:\n` +
    '  - fenced blocks whose info string says so: ```sh runbook (run as root with sh -eu), and ```runbook provision-key holding "PATH MODE" for the bootstrap age key;\n' +
    '  - or, leaving the document as it renders, an HTML comment <!-- runbook --> on the line before each shell block to run, and <!-- runbook provision-key PATH MODE --> where the key goes.\n' +
    `\`npx accept runbook ${source.split(' ').at(-1)}\` prints the steps the harness would run from a document, without running them.`
  );
}

export function parseRunbook(markdown: string, source: string): RunbookStep[] {
  const steps: RunbookStep[] = [];
  for (const part of documentParts(markdown, source)) {
    if (!('body' in part)) {
      steps.push(keyStep(source, part.line, part.words, steps.length + 1));
      continue;
    }
    const { info, line, body, annotated } = part;
    if ((info[0] === 'sh' && info.includes('runbook')) || annotated !== undefined) {
      if (annotated !== undefined && !SHELL_INFO.has(info[0] ?? '')) {
        throw new HarnessError(
          `${source}:${line}: <!-- runbook --> marks a \`\`\`${info[0]} block; it marks shell blocks only (sh, bash, shell, console, or none)`,
        );
      }
      // A console block shows prompts: its commands are the lines after "$ " or "# ".
      const lines = info[0] === 'console' ? body.filter((text) => /^[$#] /.test(text)).map((text) => text.slice(2)) : body;
      const script = lines.join('\n').trim();
      if (!script) throw new HarnessError(`${source}:${line}: runbook step is empty`);
      steps.push({ kind: 'sh', index: steps.length + 1, line, script });
    } else if (info[0] === 'runbook') {
      if (info[1] !== 'provision-key') throw new HarnessError(`${source}:${line}: unknown runbook block "${info.slice(1).join(' ')}"`);
      steps.push(keyStep(source, line, body.join(' ').trim().split(/\s+/), steps.length + 1));
    }
  }
  if (steps.length === 0) throw new HarnessError(noStepsHelp(source));
  return steps;
}

/**
 * The fenced blocks of a document whose info string is `sh <marker>`, in order: a procedure
 * the system documents for a harness to follow (docs/enroll.md's ```sh enrol blocks, say).
 */
export function markedShellBlocks(markdown: string, source: string, marker: string): { line: number; script: string }[] {
  return fencedBlocks(markdown, source)
    .filter(({ info }) => info[0] === 'sh' && info.includes(marker))
    .map(({ line, body }) => ({ line, script: body.join('\n').trim() }));
}

export function describeStep(step: RunbookStep): string {
  return step.kind === 'sh' ? step.script : `provision the bootstrap age key to ${step.path} (mode ${step.mode.toString(8).padStart(4, '0')})`;
}
