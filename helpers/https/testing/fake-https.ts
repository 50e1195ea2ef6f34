/** Local fakes for the HTTPS clients' tests: a TLS server with its own root. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { succeed } from '../../common/exec.ts';

export interface FakeHttps {
  port: number;
  /** PEM of the self-signed cert, to trust. */
  ca: string;
  seen: Array<{ method: string; url: string; host: string; headers: IncomingMessage['headers']; body: string; servername?: string }>;
  close(): Promise<void>;
}

/**
 * A self-signed cert for lab.test and *.lab.test (and 127.0.0.1 too, with `ipSan`), and a server
 * answering with `handle`.
 */
export async function fakeHttps(
  handle: (request: IncomingMessage & { body: string }, response: ServerResponse) => void,
  options: { ipSan?: boolean } = {},
): Promise<FakeHttps> {
  const dir = await mkdtemp(join(tmpdir(), 'accept-fake-https-'));
  try {
    await succeed('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=lab.test',
      '-addext',
      `subjectAltName=DNS:lab.test,DNS:*.lab.test${options.ipSan ? ',IP:127.0.0.1' : ''}`,
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    const key = await readFile(join(dir, 'key.pem'), 'utf8');
    const cert = await readFile(join(dir, 'cert.pem'), 'utf8');
    const seen: FakeHttps['seen'] = [];
    const server = https.createServer({ key, cert }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const servername = (request.socket as import('node:tls').TLSSocket).servername || undefined;
        seen.push({ method: request.method ?? '', url: request.url ?? '', host: request.headers.host ?? '', headers: request.headers, body, servername });
        handle(Object.assign(request, { body }), response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    return { port, ca: cert, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function json(response: ServerResponse, status: number, body?: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json' });
  response.end(body === undefined ? '' : JSON.stringify(body));
}
