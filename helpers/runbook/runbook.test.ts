import { describe, expect, it } from 'vitest';
import { markedShellBlocks, parseRunbook } from './index.ts';

const doc = [
  '# Install',
  '```sh',
  'echo illustration only',
  '```',
  '```sh runbook',
  'git clone --recursive git://h/cc-ci.git /root/cc-ci',
  '```',
  '```runbook provision-key',
  '/var/lib/sops-nix/key.txt 0600',
  '```',
  '~~~sh runbook',
  "nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'",
  '~~~',
].join('\n');

describe('parseRunbook', () => {
  it('keeps only marked blocks, in order, with their line numbers', () => {
    expect(parseRunbook(doc, 'install.md')).toEqual([
      { kind: 'sh', index: 1, line: 5, script: 'git clone --recursive git://h/cc-ci.git /root/cc-ci' },
      { kind: 'provision-key', index: 2, line: 8, path: '/var/lib/sops-nix/key.txt', mode: 0o600 },
      { kind: 'sh', index: 3, line: 11, script: "nixos-rebuild switch --flake '/root/cc-ci?submodules=1#cc-ci'" },
    ]);
  });

  it('rejects a file without steps, naming it', () => {
    expect(() => parseRunbook('# nothing\n```sh\nls\n```', 'docs/install.md')).toThrow(/docs\/install.md holds no runbook steps/);
  });

  it('rejects an unclosed fence and a malformed key block with the line', () => {
    expect(() => parseRunbook('```sh runbook\nls', 'i.md')).toThrow(/i.md:1: fenced block is never closed/);
    expect(() => parseRunbook('```runbook provision-key\nkey.txt\n```', 'i.md')).toThrow(/i.md:1: provision-key block/);
    expect(() => parseRunbook('```runbook reboot\n```', 'i.md')).toThrow(/unknown runbook block "reboot"/);
  });
});

describe('markedShellBlocks', () => {
  const doc = ['# Enrolling', '', '```sh enrol', 'cp -r "tests/$FROM" "tests/$RECIPE"', '```', '', '```sh', 'echo illustration', '```', '', '```sh enrol', 'echo "$RECIPE" >> tests/enrolled', '```'].join('\n');

  it('returns only the blocks with the marker, in order, with their lines', () => {
    expect(markedShellBlocks(doc, 'docs/enroll.md', 'enrol')).toEqual([
      { line: 3, script: 'cp -r "tests/$FROM" "tests/$RECIPE"' },
      { line: 11, script: 'echo "$RECIPE" >> tests/enrolled' },
    ]);
  });

  it('finds none in prose, and names an unclosed block with its line', () => {
    expect(markedShellBlocks('Copy a tree by hand.\n', 'docs/enroll.md', 'enrol')).toEqual([]);
    expect(() => markedShellBlocks('```sh enrol\necho x\n', 'docs/enroll.md', 'enrol')).toThrow('docs/enroll.md:1: fenced block is never closed');
  });
});
