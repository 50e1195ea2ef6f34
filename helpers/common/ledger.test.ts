import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Ledger } from './ledger.ts';
import { forgetSecrets, registerSecret } from './redact.ts';

afterEach(() => forgetSecrets());

const KEY_FILE =
  '# public key: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\nAGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS4YX8E3\n';

describe('Ledger', () => {
  it('records a push by size and sha256, never by content', () => {
    const ledger = new Ledger();
    const content = Buffer.from(KEY_FILE);
    ledger.recordPush('/var/lib/sops-nix/key.txt', content, 0o600, 'runbook step 2: bootstrap age key', true);
    expect(ledger.entries).toHaveLength(1);
    expect(ledger.entries[0]).toMatchObject({
      kind: 'push',
      path: '/var/lib/sops-nix/key.txt',
      mode: '0600',
      bytes: content.length,
      sha256: createHash('sha256').update(content).digest('hex'),
      secret: true,
      purpose: 'runbook step 2: bootstrap age key',
    });
    expect(Date.parse(ledger.entries[0]!.at)).not.toBeNaN();
    // Neither the whole content nor any line of it is kept, whatever the serialisation.
    for (const text of [JSON.stringify(ledger.entries), ledger.toText()]) {
      expect(text).not.toContain('AGE-SECRET-KEY');
      expect(text).not.toContain('public key');
    }
    expect(ledger.toText()).toMatch(
      /^\S+ push \/var\/lib\/sops-nix\/key\.txt mode 0600 \d+ bytes sha256:[0-9a-f]{16}… \(runbook step 2: bootstrap age key, secret\)$/,
    );
  });

  it('pads modes to four octal digits', () => {
    const ledger = new Ledger();
    ledger.recordPush('/etc/a', Buffer.from('x'), 0o44, 'p', false);
    ledger.recordPush('/etc/b', Buffer.from('x'), 0o4755, 'p', false);
    expect(ledger.entries.map((entry) => (entry.kind === 'push' ? entry.mode : ''))).toEqual(['0044', '4755']);
  });

  it('redacts the command and the output of an exec, and keeps the last 20 lines', () => {
    registerSecret('rpc-secret-0123456789');
    const ledger = new Ledger();
    const output = [...Array.from({ length: 30 }, (_, i) => `line ${i + 1}`), 'DRONE_RPC_SECRET=rpc-secret-0123456789', ''].join('\n');
    ledger.recordExec('echo rpc-secret-0123456789 | drone-setup', 0, 1234.6, 'runbook step 3', output);
    const entry = ledger.entries[0]!;
    expect(entry).toMatchObject({ kind: 'exec', command: 'echo [REDACTED] | drone-setup', exitCode: 0, durationMs: 1235, purpose: 'runbook step 3' });
    if (entry.kind !== 'exec') throw new Error('not an exec entry');
    const lines = entry.outputTail.split('\n');
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('line 12');
    expect(lines.at(-1)).toBe('DRONE_RPC_SECRET=[REDACTED]');
    expect(JSON.stringify(ledger.entries)).not.toContain('rpc-secret-0123456789');
    expect(ledger.toText()).not.toContain('rpc-secret-0123456789');
  });

  it('redacts a multi-line secret that the 20-line tail cuts through', () => {
    registerSecret('user: ci-bot\npassword: hunter2hunter2');
    const ledger = new Ledger();
    const output = [
      ...Array.from({ length: 10 }, (_, i) => `line ${i + 1}`),
      'user: ci-bot',
      'password: hunter2hunter2',
      ...Array.from({ length: 19 }, () => 'more'),
    ].join('\n');
    ledger.recordExec('registry-login', 0, 1, 'login', output);
    expect(JSON.stringify(ledger.entries)).not.toContain('hunter2hunter2');
  });

  it('redacts secret shapes in exec output even when nothing was registered', () => {
    const ledger = new Ledger();
    ledger.recordExec('cat /var/lib/sops-nix/key.txt', 0, 5, 'debug', KEY_FILE);
    expect(JSON.stringify(ledger.entries)).not.toContain('AGE-SECRET-KEY-1');
  });

  it('lists entries in order, one line each', () => {
    const ledger = new Ledger();
    ledger.recordPush('/root/a', Buffer.from('a'), 0o644, 'first', false);
    ledger.recordExec('true', 0, 1, 'second', '');
    ledger.recordExec('false', 1, 2, 'third', 'oops');
    const lines = ledger.toText().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/ push \/root\/a mode 0644 1 bytes .*\(first\)$/);
    expect(lines[1]).toMatch(/ exec \[exit 0, 1 ms\] true \(second\)$/);
    expect(lines[2]).toMatch(/ exec \[exit 1, 2 ms\] false \(third\)$/);
  });
});
