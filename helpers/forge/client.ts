/**
 * The forge (Gitea's API v1, `Authorization: token …`): open pulls, PR comments, org membership,
 * and the few writes the specs make as a user (a comment, and for D5 a repo and a pull request).
 * A refused token (401) is a final HarnessError; a gateway answer (502/503/504) a transient one.
 * A 403 is left to each call: refusing an outsider can be the product's right answer.
 * helpers/forge/contract.ts holds the HTTP shapes relied on here, checked against the lab's stand-in too.
 */
import { HarnessError } from '../common/errors.ts';
import { redact } from '../common/redact.ts';
import { httpsRequest, isRetryableStatus, jsonBody, type HttpsResponse, type HttpsTransport } from '../https/index.ts';
import { parseLink } from './contract.ts';
import { requireForgeWrite, type ForgeWrite, type ForgeWriteScope } from './writes.ts';

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
  head?: { ref: string };
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
    /** Items per page of a list: Gitea's cap (MAX_RESPONSE_ITEMS) by default. */
    readonly pageSize = 50,
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
    if (response.status === 401)
      throw new HarnessError(
        `the forge at ${this.baseUrl} refused the token from ${this.tokenSource} (401 on ${method} ${path}): set a valid forge token there`,
      );
    if (isRetryableStatus(response.status)) {
      throw new HarnessError(redact(`the forge at ${this.baseUrl} answered ${response.status} on ${method} ${path}: ${response.text.slice(0, 200)}`), {
        transient: true,
      });
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

  /**
   * Every item of a list, page by page. Pages go by number, not by Link's URLs (they are under
   * the forge's ROOT_URL, which may not be the address dialled); Link only says whether more
   * come. A list Gitea does not paginate (an issue's comments) has no rel="next": one answer.
   */
  private async list<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    for (let page = 1; ; page++) {
      const response = await this.call('GET', `${path}${path.includes('?') ? '&' : '?'}page=${page}&limit=${this.pageSize}`);
      if (response.status !== 200)
        throw new HarnessError(redact(`forge GET ${path} (page ${page}) answered ${response.status}: ${response.text.slice(0, 300)}`));
      const batch = jsonBody<T[]>(response);
      if (!Array.isArray(batch))
        throw new HarnessError(redact(`forge GET ${path} (page ${page}) answered a body that is not a list: ${response.text.slice(0, 200)}`));
      items.push(...batch);
      const link = Array.isArray(response.headers.link) ? response.headers.link.join(',') : response.headers.link;
      if (batch.length < this.pageSize || !parseLink(link).has('next')) return items;
      if (page >= 1000) throw new HarnessError(`forge GET ${path} still links a next page after ${page} pages of ${this.pageSize}: the harness stops there`);
    }
  }

  /**
   * GET /orgs/{org}/members/{user}: 204 is a member, 404 is not. Gitea tells only a member or an
   * admin of the org; anyone else gets a redirect to public_members, which says nothing of a
   * private membership, so a redirect is this token's limit, never "not a member".
   */
  async isMember(org: string, login: string): Promise<boolean> {
    const response = await this.call('GET', `/orgs/${encodeURIComponent(org)}/members/${encodeURIComponent(login)}`);
    if (response.status === 204) return true;
    if (response.status === 404) return false;
    if (response.status >= 300 && response.status < 400) {
      throw new HarnessError(
        `the forge will not say whether ${login} is a member of ${org}: the token from ${this.tokenSource} belongs to a user who is not a member (nor an admin) of ${org}, ` +
          `and Gitea answers such a caller with a redirect (${response.status} to ${response.headers.location ?? 'public_members'}) that says nothing of private memberships; check membership with a member's token`,
      );
    }
    throw new HarnessError(`forge membership of ${login} in ${org} answered ${response.status}, neither 204 nor 404`);
  }

  async repoExists(owner: string, name: string): Promise<boolean> {
    const response = await this.call('GET', `/repos/${owner}/${name}`);
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw new HarnessError(`forge GET /repos/${owner}/${name} answered ${response.status}`);
  }

  async createOrgRepo(org: string, name: string): Promise<unknown> {
    const response = await this.call('POST', `/orgs/${org}/repos`, { name, auto_init: true }, { kind: 'repo', owner: org, repo: name });
    if (response.status === 403) {
      // Gitea's CreateOrgRepo: only owners and members of a team with "Create repositories" may.
      throw new HarnessError(
        `the forge will not let the user of the token from ${this.tokenSource} create ${org}/${name} (403): give that user a team in ${org} with "Create repositories", or create ${org}/${name} beforehand`,
      );
    }
    if (response.status !== 201) throw new HarnessError(redact(`forge POST /orgs/${org}/repos answered ${response.status}: ${response.text.slice(0, 300)}`));
    return jsonBody<unknown>(response);
  }

  /** Every open pull, newest first (Gitea's order), from all pages. */
  openPulls(owner: string, repo: string): Promise<ForgePull[]> {
    return this.list(`/repos/${owner}/${repo}/pulls?state=open`);
  }

  /** One pull request by its number, whatever its state. */
  pull(owner: string, repo: string, index: number): Promise<ForgePull> {
    return this.expect('GET', `/repos/${owner}/${repo}/pulls/${index}`, [200]);
  }

  createPull(owner: string, repo: string, pull: { title: string; head: string; base: string }): Promise<ForgePull> {
    return this.expect('POST', `/repos/${owner}/${repo}/pulls`, [201], pull, { kind: 'pull', owner, repo });
  }

  /**
   * A file in a repo at `ref` (a branch or a commit), as text, or undefined where the ref or the
   * path does not exist (404). A directory is an error here.
   */
  async fileAt(owner: string, repo: string, path: string, ref: string): Promise<string | undefined> {
    const where = `/repos/${owner}/${repo}/contents/${path}?ref=${encodeURIComponent(ref)}`;
    const response = await this.call('GET', where);
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw new HarnessError(redact(`forge GET ${where} answered ${response.status}: ${response.text.slice(0, 300)}`));
    const file = jsonBody<{ type?: string; encoding?: string; content?: string }>(response);
    if (Array.isArray(file) || file.type !== 'file' || file.encoding !== 'base64' || typeof file.content !== 'string') {
      throw new HarnessError(`forge GET ${where} is not a file with base64 content: ${response.text.slice(0, 200)}`);
    }
    return Buffer.from(file.content, 'base64').toString('utf8');
  }

  /**
   * `branch` of owner/repo holding `path` with `text`: made from `from` with one commit (Gitea's
   * POST /contents with new_branch) unless it already holds the file, as a rerun finds it.
   * Answers whether it was made now. A branch that holds other text there is an error: a
   * rerun must not test what it did not write.
   */
  async branchWithFile(
    owner: string,
    repo: string,
    change: { branch: string; from: string; path: string; text: string; message: string },
  ): Promise<'made' | 'found'> {
    const existing = await this.fileAt(owner, repo, change.path, change.branch);
    if (existing !== undefined) {
      if (existing !== change.text)
        throw new HarnessError(
          `${owner}/${repo} already has a branch ${change.branch} whose ${change.path} is not the harness's: delete the branch and run again`,
        );
      return 'found';
    }
    const body = { content: Buffer.from(change.text).toString('base64'), message: change.message, branch: change.from, new_branch: change.branch };
    const response = await this.call('POST', `/repos/${owner}/${repo}/contents/${change.path}`, body, { kind: 'file', owner, repo });
    if (response.status === 201) return 'made';
    // 422: the branch exists without the file (a rerun cut short); commit it onto that branch.
    if (response.status === 422) {
      const onto = await this.call(
        'POST',
        `/repos/${owner}/${repo}/contents/${change.path}`,
        { ...body, branch: change.branch, new_branch: undefined },
        { kind: 'file', owner, repo },
      );
      if (onto.status === 201) return 'made';
      throw new HarnessError(
        redact(`forge POST /repos/${owner}/${repo}/contents/${change.path} onto ${change.branch} answered ${onto.status}: ${onto.text.slice(0, 300)}`),
      );
    }
    if (response.status === 403)
      throw new HarnessError(
        `the forge will not let the user of the token from ${this.tokenSource} commit to ${owner}/${repo} (403): give that user write access to ${owner}/${repo}`,
      );
    throw new HarnessError(
      redact(
        `forge POST /repos/${owner}/${repo}/contents/${change.path} (new branch ${change.branch} from ${change.from}) answered ${response.status}: ${response.text.slice(0, 300)}`,
      ),
    );
  }

  /** Every comment on an issue or pull, oldest first. */
  comments(owner: string, repo: string, index: number): Promise<ForgeComment[]> {
    return this.list(`/repos/${owner}/${repo}/issues/${index}/comments`);
  }

  comment(owner: string, repo: string, index: number, body: string): Promise<ForgeComment> {
    return this.expect('POST', `/repos/${owner}/${repo}/issues/${index}/comments`, [201], { body }, { kind: 'comment', owner, repo });
  }
}
