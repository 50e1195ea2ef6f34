/**
 * The install runbook lives in the system's own docs/install.md. Only fenced blocks marked as
 * runbook steps run, in order:
 *   ```sh runbook                  → the block runs as root on the machine with `sh -eu`
 *   ```runbook provision-key       → "PATH MODE": where the operator places the bootstrap age key
 * Every other block is illustration.
 */
import { HarnessError } from '../common/errors.ts';

export type RunbookStep =
  | { kind: 'sh'; index: number; line: number; script: string }
  | { kind: 'provision-key'; index: number; line: number; path: string; mode: number };

const FENCE = /^(`{3,}|~{3,})\s*(.*)$/;

interface FencedBlock {
  /** The info string's words (```sh runbook → ['sh', 'runbook']). */
  info: string[];
  /** 1-based line of the opening fence. */
  line: number;
  body: string[];
}

/** Every fenced block of a Markdown document, in order; an unclosed one is an error naming its line. */
function fencedBlocks(markdown: string, source: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const line = i + 1;
    const body: string[] = [];
    for (i += 1; i < lines.length && !lines[i]!.startsWith(fence); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new HarnessError(`${source}:${line}: fenced block is never closed`);
    blocks.push({ info: open[2]!.trim().split(/\s+/), line, body });
  }
  return blocks;
}

export function parseRunbook(markdown: string, source: string): RunbookStep[] {
  const steps: RunbookStep[] = [];
  for (const { info, line, body } of fencedBlocks(markdown, source)) {
    if (info[0] === 'sh' && info.includes('runbook')) {
      const script = body.join('\n').trim();
      if (!script) throw new HarnessError(`${source}:${line}: runbook step is empty`);
      steps.push({ kind: 'sh', index: steps.length + 1, line, script });
    } else if (info[0] === 'runbook') {
      if (info[1] !== 'provision-key') throw new HarnessError(`${source}:${line}: unknown runbook block "${info.slice(1).join(' ')}"`);
      const [path, modeText, ...extra] = body.join(' ').trim().split(/\s+/);
      if (!path?.startsWith('/') || !modeText || !/^0?[0-7]{3}$/.test(modeText) || extra.length) {
        throw new HarnessError(`${source}:${line}: provision-key block must hold "ABSOLUTE_PATH MODE", e.g. "/var/lib/sops-nix/key.txt 0600"`);
      }
      steps.push({ kind: 'provision-key', index: steps.length + 1, line, path, mode: Number.parseInt(modeText, 8) });
    }
  }
  if (steps.length === 0) throw new HarnessError(`${source} holds no runbook steps (\`\`\`sh runbook blocks)`);
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
