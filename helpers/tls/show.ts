/**
 * Human-readable view of what a server serves, for debugging a TLS spec by hand.
 * A certificate that does not verify still throws TlsVerificationError (its message lists
 * what was presented), so a caller can map it to a non-zero exit.
 */
import { HarnessError } from '../common/errors.ts';
import { describeCert, inspectServedChain, readPemInput, validityAt } from './index.ts';
import type { X509Certificate } from './index.ts';

export interface ShowOptions {
  servername: string;
  socks?: string;
  /** PEM text of the trusted root(s), or a path to a PEM file. */
  ca: string;
  timeoutMs?: number;
}

/** "host:port", "[v6]:port" or "host" (port 443). */
export function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(value.trim());
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? 443 : Number(match[3]);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new HarnessError(`expected host:port, got ${JSON.stringify(value)}`);
  }
  return { host, port };
}

export async function showServedChain(hostPort: string, options: ShowOptions): Promise<string> {
  const { host, port } = parseHostPort(hostPort);
  const ca = readPemInput(options.ca);
  const served = await inspectServedChain({
    host,
    port,
    servername: options.servername,
    socks: options.socks,
    ca,
    timeoutMs: options.timeoutMs,
  });
  const now = new Date();
  const lines = [
    `${hostPort} (servername ${options.servername})${options.socks ? ` via ${options.socks.replace(/\/\/[^@/]*@/, '//')}` : ''}`,
    `${served.protocol ?? 'unknown protocol'}, ${served.cipher}; verified against the given CA: yes`,
    served.source === 'handshake'
      ? `served chain (read from the handshake), ${served.presented.length} certificate(s):`
      : `served chain (rebuilt by Node; a trusted root the server also sent would not show), ${served.presented.length} certificate(s):`,
  ];
  served.presented.forEach((cert, index) => {
    lines.push(...describe(cert, index === 0 ? 'leaf' : 'chain', index, now));
  });
  const sentFingerprints = new Set(served.presented.map((cert) => cert.fingerprint256));
  const anchor = served.verifiedPath[served.verifiedPath.length - 1];
  if (anchor && !sentFingerprints.has(anchor.fingerprint256)) {
    lines.push('trusted root (from the given CA, not sent by the server):');
    lines.push(...describe(anchor, 'root', served.verifiedPath.length - 1, now));
  }
  return lines.join('\n');
}

function describe(cert: X509Certificate, role: string, index: number, now: Date): string[] {
  const facts = describeCert(cert);
  const validity = validityAt(cert, now);
  return [
    `[${index}] ${role}`,
    `    subject      ${facts.subject}`,
    `    issuer       ${facts.issuer}`,
    `    SANs         ${facts.sans.length ? facts.sans.join(', ') : '(none)'}`,
    `    valid        ${facts.notBefore} → ${facts.notAfter} (${validity.ok ? 'valid now' : validity.reason})`,
    `    SHA-256      ${facts.fingerprint}`,
    `    serial       ${facts.serial}`,
  ];
}
