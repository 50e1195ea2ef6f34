/**
 * The forge contract: the HTTP shapes of Gitea's API v1 that the harness, the bridge and the
 * lab's stand-in (lab/base/services/forge.py) rely on, as a list of behaviours. The same list
 * is run against real-shaped fixtures and against the stand-in, so the fake cannot drift from
 * what the clients expect without a named behaviour breaking.
 */
import http from 'node:http';

/**
 * Who makes a request: a member of the org whose team may create repos, a member whose team may
 * not, a user outside it, or a token the forge does not know.
 */
export type ForgeRole = 'member' | 'plainMember' | 'outsider' | 'badToken';

/** What the forge under test holds before the contract runs; the behaviours read their data from here. */
export interface ForgeWorld {
  org: string;
  repo: string;
  /** A member's login and an outsider's. */
  member: string;
  outsider: string;
  /** Exactly this many open pulls on org/repo, more than CONTRACT_PAGE. */
  openPulls: number;
  /** A pull on org/repo with exactly `comments` comments (more than CONTRACT_PAGE). */
  commentedPull: number;
  comments: number;
  /** A branch of org/repo, not main, whose `file` (under tests/) holds `fileText`. */
  branch: string;
  file: string;
  fileText: string;
}

/** The page size the contract asks for: small, so that a handful of pulls spans pages. */
export const CONTRACT_PAGE = 2;

export interface ContractRequest {
  as: ForgeRole;
  method: 'GET' | 'POST';
  /** Under /api/v1, with its query. */
  path: string;
  body?: unknown;
}

export interface ContractAnswer {
  status: number;
  headers: Record<string, string | undefined>;
  /** Parsed JSON, or undefined for an empty or non-JSON body. */
  body: unknown;
}

export interface ForgeBehaviour {
  name: string;
  request: (world: ForgeWorld) => ContractRequest;
  /** The statuses that meet it; anything else is a difference and the rest is not checked. */
  status: readonly number[];
  /** What else must hold of the answer: each string is one difference. */
  check?: (answer: ContractAnswer, world: ForgeWorld) => string[];
}

export interface BrokenBehaviour {
  name: string;
  differences: string[];
}

export type ForgeAsk = (request: ContractRequest) => Promise<ContractAnswer>;

/** Gitea's Link header as rel → target URL. */
export function parseLink(header: string | undefined): Map<string, URL> {
  const links = new Map<string, URL>();
  for (const part of (header ?? '').split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="([^"]+)"/.exec(part);
    if (match) links.set(match[2]!, new URL(match[1]!, 'http://forge.invalid'));
  }
  return links;
}

const pullsPath = (w: ForgeWorld, query: string) => `/repos/${w.org}/${w.repo}/pulls?state=open&${query}`;
const lastPage = (w: ForgeWorld) => Math.ceil(w.openPulls / CONTRACT_PAGE);

function asList(answer: ContractAnswer): Array<Record<string, unknown>> | undefined {
  return Array.isArray(answer.body) ? (answer.body as Array<Record<string, unknown>>) : undefined;
}

function linkTo(answer: ContractAnswer, rel: string, page: number): string[] {
  const target = parseLink(answer.headers.link).get(rel);
  if (!target) return [`no rel="${rel}" in Link: ${answer.headers.link ?? '(no Link header)'}`];
  const problems: string[] = [];
  if (target.searchParams.get('page') !== String(page)) problems.push(`rel="${rel}" is page ${target.searchParams.get('page')}, not ${page}`);
  if (target.searchParams.get('limit') !== String(CONTRACT_PAGE))
    problems.push(`rel="${rel}" has limit ${target.searchParams.get('limit')}, not ${CONTRACT_PAGE}`);
  return problems;
}

function totalCount(answer: ContractAnswer, expected: number): string[] {
  return answer.headers['x-total-count'] === String(expected) ? [] : [`X-Total-Count is ${answer.headers['x-total-count'] ?? '(absent)'}, not ${expected}`];
}

function ordered(list: Array<Record<string, unknown>>, key: string, direction: 'ascending' | 'descending'): string[] {
  const values = list.map((item) => Number(item[key]));
  const sorted = values.every((value, i) => i === 0 || (direction === 'ascending' ? value > values[i - 1]! : value < values[i - 1]!));
  return sorted ? [] : [`${key}s are not ${direction}: ${values.join(', ')}`];
}

const contentsPath = (w: ForgeWorld, path: string, ref: string) => `/repos/${w.org}/${w.repo}/contents/${path}?ref=${encodeURIComponent(ref)}`;

export const FORGE_CONTRACT: readonly ForgeBehaviour[] = [
  {
    name: 'pulls: a first page holds `limit` pulls, links rel="next" and rel="last", and counts them all',
    request: (w) => ({ as: 'member', method: 'GET', path: pullsPath(w, `page=1&limit=${CONTRACT_PAGE}`) }),
    status: [200],
    check: (answer, w) => {
      const list = asList(answer);
      if (!list) return ['the body is not a list'];
      return [
        ...(list.length === CONTRACT_PAGE ? [] : [`page 1 holds ${list.length} pulls, not ${CONTRACT_PAGE}`]),
        ...linkTo(answer, 'next', 2),
        ...linkTo(answer, 'last', lastPage(w)),
        ...totalCount(answer, w.openPulls),
      ];
    },
  },
  {
    name: 'pulls: the last page holds the rest and links no rel="next"',
    request: (w) => ({ as: 'member', method: 'GET', path: pullsPath(w, `page=${lastPage(w)}&limit=${CONTRACT_PAGE}`) }),
    status: [200],
    check: (answer, w) => {
      const list = asList(answer);
      if (!list) return ['the body is not a list'];
      const rest = w.openPulls - CONTRACT_PAGE * (lastPage(w) - 1);
      return [
        ...(list.length === rest ? [] : [`the last page holds ${list.length} pulls, not ${rest}`]),
        ...(parseLink(answer.headers.link).has('next') ? [`the last page links rel="next": ${answer.headers.link}`] : []),
        ...linkTo(answer, 'prev', lastPage(w) - 1),
        ...totalCount(answer, w.openPulls),
      ];
    },
  },
  {
    name: 'pulls: listed newest first',
    request: (w) => ({ as: 'member', method: 'GET', path: pullsPath(w, 'page=1&limit=50') }),
    status: [200],
    check: (answer, w) => {
      const list = asList(answer);
      if (!list) return ['the body is not a list'];
      return [...(list.length === w.openPulls ? [] : [`${list.length} pulls, not ${w.openPulls}`]), ...ordered(list, 'number', 'descending')];
    },
  },
  {
    // The harness tells its own pulls (accept/… heads) from the recipe's by this.
    name: 'pulls: one asked for by its number names its head branch',
    request: (w) => ({ as: 'member', method: 'GET', path: `/repos/${w.org}/${w.repo}/pulls/${w.commentedPull}` }),
    status: [200],
    check: (answer, w) => {
      const pull = answer.body as { number?: unknown; head?: { ref?: unknown } } | undefined;
      return [
        ...(pull?.number === w.commentedPull ? [] : [`number is ${String(pull?.number)}, not ${w.commentedPull}`]),
        ...(typeof pull?.head?.ref === 'string' && pull.head.ref !== '' ? [] : [`head.ref is ${JSON.stringify(pull?.head?.ref)}, not a branch name`]),
      ];
    },
  },
  {
    // Gitea takes no page/limit here: an issue's comments come whole, with their count.
    name: "comments: an issue's comments come all at once, oldest first, counted in X-Total-Count",
    request: (w) => ({ as: 'member', method: 'GET', path: `/repos/${w.org}/${w.repo}/issues/${w.commentedPull}/comments` }),
    status: [200],
    check: (answer, w) => {
      const list = asList(answer);
      if (!list) return ['the body is not a list'];
      const times = list.map((comment) => Date.parse(String(comment.created_at)));
      return [
        ...(list.length === w.comments ? [] : [`${list.length} comments, not ${w.comments}`]),
        ...ordered(list, 'id', 'ascending'),
        ...(times.every((time, i) => !Number.isNaN(time) && (i === 0 || time >= times[i - 1]!)) ? [] : ['created_at is not oldest first']),
        ...totalCount(answer, w.comments),
      ];
    },
  },
  {
    name: 'membership: a member asking about a member gets 204',
    request: (w) => ({ as: 'member', method: 'GET', path: `/orgs/${w.org}/members/${w.member}` }),
    status: [204],
  },
  {
    name: 'membership: a member asking about an outsider gets 404',
    request: (w) => ({ as: 'member', method: 'GET', path: `/orgs/${w.org}/members/${w.outsider}` }),
    status: [404],
  },
  {
    // Gitea before 1.20 sent 302; since its context refactor, Redirect's default is 303.
    name: 'membership: an outsider asking is redirected to public_members',
    request: (w) => ({ as: 'outsider', method: 'GET', path: `/orgs/${w.org}/members/${w.member}` }),
    status: [302, 303],
    check: (answer, w) => {
      const location = answer.headers.location ?? '';
      return location.endsWith(`/api/v1/orgs/${w.org}/public_members/${w.member}`)
        ? []
        : [`Location is ${location || '(absent)'}, not …/api/v1/orgs/${w.org}/public_members/${w.member}`];
    },
  },
  {
    name: 'pulls: one whose head is its base is refused with 422',
    request: (w) => ({
      as: 'member',
      method: 'POST',
      path: `/repos/${w.org}/${w.repo}/pulls`,
      body: { title: 'contract: head is base', head: 'main', base: 'main' },
    }),
    status: [422],
  },
  {
    // Gitea's CreatePullRequest looks both branches up first: a head that is no branch is not found.
    name: 'pulls: one whose head branch does not exist is refused with 404',
    request: (w) => ({
      as: 'member',
      method: 'POST',
      path: `/repos/${w.org}/${w.repo}/pulls`,
      body: { title: 'contract: no such head', head: 'contract-no-such-branch', base: 'main' },
    }),
    status: [404],
  },
  {
    name: 'contents: a file at a branch comes whole, its content in base64',
    request: (w) => ({ as: 'member', method: 'GET', path: contentsPath(w, w.file, w.branch) }),
    status: [200],
    check: (answer, w) => {
      const file = answer.body as Record<string, unknown> | undefined;
      if (!file || Array.isArray(file)) return ['the body is not one file'];
      const problems = [
        ...(file.type === 'file' ? [] : [`type is ${String(file.type)}, not file`]),
        ...(file.path === w.file ? [] : [`path is ${String(file.path)}, not ${w.file}`]),
        ...(file.encoding === 'base64' ? [] : [`encoding is ${String(file.encoding)}, not base64`]),
      ];
      const text = typeof file.content === 'string' ? Buffer.from(file.content, 'base64').toString('utf8') : undefined;
      return text === w.fileText ? problems : [...problems, `content decodes to ${JSON.stringify(text?.slice(0, 60))}, not the file's text`];
    },
  },
  {
    name: 'contents: a directory is the list of its entries, without their content',
    request: (w) => ({ as: 'member', method: 'GET', path: contentsPath(w, w.file.split('/').slice(0, -1).join('/'), w.branch) }),
    status: [200],
    check: (answer, w) => {
      const list = asList(answer);
      if (!list) return ['the body is not a list'];
      const entry = list.find((item) => item.path === w.file);
      if (!entry) return [`no entry for ${w.file}: ${list.map((item) => String(item.path)).join(', ')}`];
      return [
        ...(entry.type === 'file' ? [] : [`${w.file} is listed as ${String(entry.type)}`]),
        ...(entry.content == null ? [] : [`${w.file} is listed with its content`]),
      ];
    },
  },
  {
    name: 'contents: a path the ref does not hold is 404',
    request: (w) => ({ as: 'member', method: 'GET', path: contentsPath(w, 'tests/contract-no-such-file.py', w.branch) }),
    status: [404],
  },
  {
    // files_service.ChangeRepoFiles: a new_branch that exists is ErrBranchAlreadyExists, answered 422.
    name: 'contents: a file committed onto a new branch that already exists is refused with 422',
    request: (w) => ({
      as: 'member',
      method: 'POST',
      path: `/repos/${w.org}/${w.repo}/contents/tests/contract-again.py`,
      body: { content: Buffer.from('pass\n').toString('base64'), message: 'contract', branch: 'main', new_branch: w.branch },
    }),
    status: [422],
  },
  {
    // Gitea's CreateOrgRepo: only a member of a team with "Create repositories" (or an owner) may.
    name: 'repos: a member without create rights in the org is refused with 403',
    request: (w) => ({ as: 'plainMember', method: 'POST', path: `/orgs/${w.org}/repos`, body: { name: 'contract-not-allowed', auto_init: true } }),
    status: [403],
  },
  {
    name: 'auth: a wrong token gets 401',
    request: () => ({ as: 'badToken', method: 'GET', path: '/user' }),
    status: [401],
  },
];

/** Runs each behaviour once; answers what broke (none: the forge meets the contract). */
export async function runForgeContract(ask: ForgeAsk, world: ForgeWorld, behaviours: readonly ForgeBehaviour[] = FORGE_CONTRACT): Promise<BrokenBehaviour[]> {
  const broken: BrokenBehaviour[] = [];
  for (const behaviour of behaviours) {
    const request = behaviour.request(world);
    let differences: string[];
    try {
      const answer = await ask(request);
      differences = behaviour.status.includes(answer.status)
        ? (behaviour.check?.(answer, world) ?? [])
        : [`${request.method} ${request.path} as ${request.as} answered ${answer.status}, not ${behaviour.status.join(' or ')}`];
    } catch (error) {
      differences = [`${request.method} ${request.path} as ${request.as} got no answer: ${(error as Error).message}`];
    }
    if (differences.length) broken.push({ name: behaviour.name, differences });
  }
  return broken;
}

/**
 * Asks a forge over plain HTTP (a stand-in or a fixture on 127.0.0.1), never following a
 * redirect: where it points is part of the contract.
 */
export function httpForge(baseUrl: string, tokens: Record<ForgeRole, string>): ForgeAsk {
  // The contract writes (its 422 probe): it is for local fakes only, never a real forge.
  const host = new URL(baseUrl).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) throw new Error(`the forge contract runs against local fakes only, not ${baseUrl}`);
  return (request) =>
    new Promise((resolve, reject) => {
      const body = request.body === undefined ? undefined : JSON.stringify(request.body);
      const outgoing = http.request(
        `${baseUrl.replace(/\/$/, '')}/api/v1${request.path}`,
        {
          method: request.method,
          headers: {
            Authorization: `token ${tokens[request.as]}`,
            Accept: 'application/json',
            ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } : {}),
          },
          timeout: 10_000,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            const headers: Record<string, string | undefined> = {};
            for (const [key, value] of Object.entries(response.headers)) headers[key] = Array.isArray(value) ? value.join(', ') : value;
            resolve({ status: response.statusCode ?? 0, headers, body: parsed });
          });
        },
      );
      outgoing.on('timeout', () => outgoing.destroy(new Error('no answer within 10 s')));
      outgoing.on('error', reject);
      outgoing.end(body);
    });
}
