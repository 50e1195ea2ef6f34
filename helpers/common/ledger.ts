/**
 * The provisioning ledger: every file pushed to the throwaway and every command run on it,
 * in order. Contents are never kept, only size and hash; output is redacted.
 */
import { createHash } from 'node:crypto';
import { redact } from './redact.ts';

export type LedgerEntry =
  | { at: string; kind: 'push'; path: string; mode: string; bytes: number; sha256: string; secret: boolean; purpose: string }
  | { at: string; kind: 'exec'; command: string; exitCode: number; durationMs: number; purpose: string; outputTail: string };

export class Ledger {
  readonly entries: LedgerEntry[] = [];

  recordPush(path: string, content: Buffer, mode: number, purpose: string, secret: boolean): void {
    this.entries.push({
      at: new Date().toISOString(),
      kind: 'push',
      path,
      mode: mode.toString(8).padStart(4, '0'),
      bytes: content.length,
      sha256: createHash('sha256').update(content).digest('hex'),
      secret,
      purpose,
    });
  }

  recordExec(command: string, exitCode: number, durationMs: number, purpose: string, output: string): void {
    // Redact before cutting: a multi-line secret cut in half would no longer match.
    const tail = redact(output).trimEnd().split('\n').slice(-20).join('\n');
    this.entries.push({
      at: new Date().toISOString(),
      kind: 'exec',
      command: redact(command),
      exitCode,
      durationMs: Math.round(durationMs),
      purpose,
      outputTail: tail,
    });
  }

  toText(): string {
    return this.entries
      .map((entry) =>
        entry.kind === 'push'
          ? `${entry.at} push ${entry.path} mode ${entry.mode} ${entry.bytes} bytes sha256:${entry.sha256.slice(0, 16)}… (${entry.purpose}${entry.secret ? ', secret' : ''})`
          : `${entry.at} exec [exit ${entry.exitCode}, ${entry.durationMs} ms] ${entry.command} (${entry.purpose})`,
      )
      .join('\n');
  }
}
