/**
 * For tests: a smart-HTTP git server that demands Basic auth, `git http-backend` behind a small
 * Node server. It records the Authorization headers it was sent, so a test sees what git sent.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { succeed } from '../../common/exec.ts';

export interface AuthGitServer extends AsyncDisposable {
  /** Base URL, no credentials: `${url}/repo.git` is the one repo. */
  url: string;
  repoUrl: string;
  /** Every Authorization header received, in order ('' when there was none). */
  seen: string[];
  close(): Promise<void>;
}

async function backend(root: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      ...process.env,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: request.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: request.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
      REMOTE_USER: 'tester',
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  request.pipe(child.stdin);
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve) => child.on('close', () => resolve()));
  const output = Buffer.concat(chunks);
  const split = output.indexOf('\r\n\r\n') >= 0 ? output.indexOf('\r\n\r\n') : output.indexOf('\n\n');
  const separator = output.indexOf('\r\n\r\n') >= 0 ? 4 : 2;
  const head = output.subarray(0, split).toString('utf8');
  let status = 200;
  for (const line of head.split(/\r?\n/)) {
    const [name, ...rest] = line.split(':');
    const value = rest.join(':').trim();
    if (!name) continue;
    if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
    else response.setHeader(name, value);
  }
  response.statusCode = status;
  response.end(output.subarray(split + separator));
}

/** A bare repo with one commit, served at `${repoUrl}` to a client sending `Basic user:password` only. */
export async function startAuthGitServer(credential: { username: string; password: string }): Promise<AuthGitServer> {
  const root = await mkdtemp(join(tmpdir(), 'accept-git-auth-'));
  const work = join(root, 'work');
  await succeed('git', ['init', '-q', '-b', 'main', work]);
  await succeed('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@example.net', 'commit', '-q', '--allow-empty', '-m', 'one']);
  await succeed('git', ['clone', '-q', '--bare', work, join(root, 'repo.git')]);
  const expected = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
  const seen: string[] = [];
  const server = createServer((request, response) => {
    const given = request.headers.authorization ?? '';
    seen.push(given);
    if (given !== expected) {
      response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' }).end();
      return;
    }
    backend(root, request, response).catch(() => response.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(root, { recursive: true, force: true });
  };
  return { url, repoUrl: `${url}/repo.git`, seen, close, [Symbol.asyncDispose]: close };
}
