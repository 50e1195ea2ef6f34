/**
 * The forge (Gitea's API v1, `Authorization: token …`): open pulls, PR comments, org membership,
 * and the few writes the specs make as a user (a comment, and for D5 a repo and a pull request).
 * A refused token (401) is a final HarnessError; a gateway answer (502/503/504) a transient one.
 * A 403 is left to each call: refusing an outsider can be the product's right answer.
 */
import { HarnessError } from '../common/errors.ts';
import { redact } from '../common/redact.ts';
import { httpsRequest, isRetryableStatus, jsonBody, type HttpsResponse, type HttpsTransport } from '../https/index.ts';
import { requireForgeWrite, type ForgeWrite, type ForgeWriteScope } from './writes.ts';

export { ForgeWriteRefused, forgeWriteRefusal, realForgeWrites, type ForgeWrite, type ForgeWriteScope } from './writes.ts';

export interface ForgeUser {
  id: number;
  login: string;
}

export interface ForgeComment {
  id: number;
  body: string;
  user: ForgeUser;
  html_url?: string;
  created_at: string;
}

export interface ForgePull {
  number: number;
  title: string;
  state: string;
  html_url?: string;
  user?: ForgeUser;
}

export class ForgeClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly transport: HttpsTransport,
    /** Names where the token came from, for messages. */
    readonly tokenSource: string,
    /** Where this client may write; a write outside it is refused before any request is sent. */
    readonly writes: ForgeWriteScope,
  ) {}

  private async call(method: string, path: string, body?: unknown, write?: ForgeWrite): Promise<HttpsResponse> {
    // Every request but a read goes through the write scope: none slips past it by its method.
    if (method !== 'GET') {
      if (!write) throw new HarnessError(`forge ${method} ${path} is a write that names no repo: the harness's own bug`);
      requireForgeWrite(this.writes, write);
    }
    const response = await httpsRequest(this.transport, `${this.baseUrl.replace(/\/$/, '')}/api/v1${path}`, {
      method,
      headers: { Authorization: `token ${this.token}`, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) throw new HarnessError(`the forge at ${this.baseUrl} refused the token from ${this.tokenSource} (401 on ${method} ${path}): set a valid forge token there`);
    if (isRetryableStatus(response.status)) {
      throw new HarnessError(redact(`the forge at ${this.baseUrl} answered ${response.status} on ${method} ${path}: ${response.text.slice(0, 200)}`), { transient: true });
    }
    return response;
  }

  private async expect<T>(method: string, path: string, statuses: number[], body?: unknown, write?: ForgeWrite): Promise<T> {
    const response = await this.call(method, path, body, write);
    if (!statuses.includes(response.status)) {
      throw new HarnessError(redact(`forge ${method} ${path} answered ${response.status}: ${response.text.slice(0, 300)}`));
    }
    return response.text ? jsonBody<T>(response) : (undefined as T);
  }

  me(): Promise<ForgeUser> {
    return this.expect('GET', '/user', [200]);
  }

  /** GET /orgs/{org}/members/{user}: 204 is a member, 404 is not. */
  async isMember(org: string, login: string): Promise<boolean> {
    const response = await this.call('GET', `/orgs/${encodeURIComponent(org)}/members/${encodeURIComponent(login)}`);
    if (response.status === 204) return true;
    if (response.status === 404) return false;
    throw new HarnessError(`forge membership of ${login} in ${org} answered ${response.status}, neither 204 nor 404`);
  }

  async repoExists(owner: string, name: string): Promise<boolean> {
    const response = await this.call('GET', `/repos/${owner}/${name}`);
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw new HarnessError(`forge GET /repos/${owner}/${name} answered ${response.status}`);
  }

  createOrgRepo(org: string, name: string): Promise<unknown> {
    return this.expect('POST', `/orgs/${org}/repos`, [201], { name, auto_init: true }, { kind: 'repo', owner: org, repo: name });
  }

  openPulls(owner: string, repo: string): Promise<ForgePull[]> {
    return this.expect('GET', `/repos/${owner}/${repo}/pulls?state=open`, [200]);
  }

  createPull(owner: string, repo: string, pull: { title: string; head: string; base: string }): Promise<ForgePull> {
    return this.expect('POST', `/repos/${owner}/${repo}/pulls`, [201], pull, { kind: 'pull', owner, repo });
  }

  comments(owner: string, repo: string, index: number): Promise<ForgeComment[]> {
    return this.expect('GET', `/repos/${owner}/${repo}/issues/${index}/comments`, [200]);
  }

  comment(owner: string, repo: string, index: number, body: string): Promise<ForgeComment> {
    return this.expect('POST', `/repos/${owner}/${repo}/issues/${index}/comments`, [201], { body }, { kind: 'comment', owner, repo });
  }
}
