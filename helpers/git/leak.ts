/**
 * The D6/C1 leak probe: how often each secret value occurs anywhere in a repo's history.
 *
 * The reviewers ran `git grep -F <value> $(git rev-list --all)`: one grep per secret, each
 * re-reading every file of every commit, with the value in argv (visible to `ps`) and in any
 * match it prints. Instead this reads each reachable object exactly once — every commit,
 * tree, blob and annotated tag from any ref (`git rev-list --all --objects` into one
 * `git cat-file --batch`) — and searches its bytes in-process for all values at once. Git
 * stores each distinct content once, so a file unchanged across 1,000 commits is scanned
 * once. Values never reach argv, stdout, logs or error messages: results and errors name a
 * value only by its index or the caller's label.
 *
 * Each value is searched in every form it may leak in (helpers/common/secret-forms.ts): whole,
 * line by line (a PEM block re-indented in YAML, or with CRLF endings), field by field, and
 * base64, hex, percent- and JSON-escaped; all forms of all values in one Aho-Corasick pass.
 *
 * Commit counts come from a second pass, only when something matched: each commit's root
 * tree is walked (memoised per tree) to see whether it reaches a matching blob or tree.
 */
import { spawn } from 'node:child_process';
import { HarnessError } from '../common/errors.ts';
import { exec } from '../common/exec.ts';
import { FormIndex, formName, MIN_VALUE_LENGTH } from '../common/secret-forms.ts';

export interface LeakCount {
  /**
   * Occurrences summed over distinct objects (blob contents, trees' file names, commit and
   * tag messages). Content kept unchanged across many commits counts once. For a multi-line
   * value, an object counts max(whole-value matches, matches of its most frequent line).
   */
  count: number;
  /** Commits whose snapshot or message contains the value. */
  commits: number;
  /** Distinct objects containing the value. */
  objects: number;
  /** The forms it was found in (`line 2, base64`), never the value; empty when not found. */
  forms: string[];
  /** Up to five places (newest commits first): commit id and path, never the value. */
  where: Array<{ commit: string; path: string }>;
  /** What the scan covered (the same for every value of one call), for the observation. */
  scanned: { commits: number; objects: number };
}

export interface LeakScanOptions {
  /** ASCII case-insensitive, for values such as domain names. */
  ignoreCase?: boolean;
  /**
   * `all` (the default): every form of each value (helpers/common/secret-forms.ts); `verbatim`:
   * the value and its long lines only, as the probe searched before forms (the bench's baseline).
   */
  forms?: 'all' | 'verbatim';
}

/** Shorter values would match by chance (and redact() would not hide them either). */
export const MIN_NEEDLE_LENGTH = MIN_VALUE_LENGTH;
const MAX_WHERE = 5;

function checkedNeedle(label: string, value: string): { label: string; value: string } {
  if (typeof value !== 'string') throw new HarnessError(`needle ${label} is not a string`);
  const trimmed = value.replace(/\r\n/g, '\n').trim();
  if (trimmed.length < MIN_NEEDLE_LENGTH) {
    throw new HarnessError(`needle ${label} is too short to search for (${trimmed.length} characters, at least ${MIN_NEEDLE_LENGTH} needed)`);
  }
  return { label, value };
}

async function git(repoDir: string, args: string[]): Promise<string> {
  const result = await exec('git', ['-C', repoDir, ...args], { timeoutMs: 600_000 });
  if (result.exitCode !== 0) throw new HarnessError(`git ${args.join(' ')} in ${repoDir} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  return result.stdout;
}

interface GitObject {
  oid: string;
  type: string;
  content: Buffer;
}

/** Streams `git cat-file --batch` for the given ids, one object at a time, without copying it twice. */
async function* catFile(repoDir: string, oids: string[]): AsyncGenerator<GitObject> {
  const child = spawn('git', ['-C', repoDir, 'cat-file', '--batch'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? -1));
  });
  // Git may die before reading it all; its exit code then tells the story, not EPIPE.
  child.stdin.on('error', () => undefined);
  child.stdin.end(oids.length > 0 ? `${oids.join('\n')}\n` : '');

  let header = Buffer.alloc(0);
  let body: Buffer | undefined;
  let filled = 0;
  let skipNewline = false;
  let current: { oid: string; type: string } | undefined;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        if (skipNewline) {
          skipNewline = false;
          at++;
          continue;
        }
        if (body && current) {
          const take = Math.min(body.length - filled, chunk.length - at);
          chunk.copy(body, filled, at, at + take);
          filled += take;
          at += take;
          if (filled === body.length) {
            yield { oid: current.oid, type: current.type, content: body };
            body = undefined;
            current = undefined;
            skipNewline = true;
          }
          continue;
        }
        const end = chunk.indexOf(0x0a, at);
        if (end === -1) {
          header = Buffer.concat([header, chunk.subarray(at)]);
          break;
        }
        const line = Buffer.concat([header, chunk.subarray(at, end)]).toString();
        header = Buffer.alloc(0);
        at = end + 1;
        const [oid, type, size] = line.split(' ');
        if (type === 'missing' || size === undefined) throw new HarnessError(`object ${oid} is missing from ${repoDir}: is it a partial clone?`);
        current = { oid: oid!, type: type! };
        body = Buffer.allocUnsafe(Number(size));
        filled = 0;
        if (body.length === 0) {
          yield { oid: current.oid, type: current.type, content: body };
          body = undefined;
          current = undefined;
          skipNewline = true;
        }
      }
    }
  } finally {
    if (child.exitCode === null) child.kill();
  }
  const code = await exited;
  if (code !== 0) throw new HarnessError(`git cat-file --batch in ${repoDir} failed (exit ${code}): ${stderr.trim()}`);
}

interface TreeEntry {
  name: string;
  oid: string;
  tree: boolean;
}

function parseTree(content: Buffer, hashBytes: number): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let at = 0;
  while (at < content.length) {
    const space = content.indexOf(0x20, at);
    const nul = content.indexOf(0x00, space);
    const mode = content.toString('latin1', at, space);
    const name = content.toString('utf8', space + 1, nul);
    const oid = content.toString('hex', nul + 1, nul + 1 + hashBytes);
    at = nul + 1 + hashBytes;
    // Gitlinks (submodules) point into another repo: that repo is scanned on its own.
    if (mode !== '160000') entries.push({ name, oid, tree: mode === '40000' });
  }
  return entries;
}

type Needles = readonly string[] | ReadonlyMap<string, string> | Readonly<Record<string, string>>;

/**
 * Counts each value across all history of the repo at `repoDir` (a full clone: shallow and
 * partial clones are refused). Keys follow the input: indices for an array, labels otherwise.
 */
export async function countOccurrences(repoDir: string, needles: readonly string[], options?: LeakScanOptions): Promise<Map<number, LeakCount>>;
export async function countOccurrences(
  repoDir: string,
  needles: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  options?: LeakScanOptions,
): Promise<Map<string, LeakCount>>;
export async function countOccurrences(repoDir: string, needles: Needles, options: LeakScanOptions = {}): Promise<Map<number | string, LeakCount>> {
  const keyed: Array<[number | string, string]> = Array.isArray(needles)
    ? (needles as readonly string[]).map((value, index) => [index, value])
    : needles instanceof Map
      ? [...(needles as ReadonlyMap<string, string>)]
      : Object.entries(needles as Record<string, string>);
  const matchers = keyed.map(([key, value]) => checkedNeedle(typeof key === 'number' ? `#${key}` : JSON.stringify(key), value));
  const index = new FormIndex(matchers, { ignoreCase: options.ignoreCase ?? false, verbatimOnly: options.forms === 'verbatim' });
  const formsFound = matchers.map(() => new Set<string>());

  if ((await git(repoDir, ['rev-parse', '--is-shallow-repository'])).trim() === 'true') {
    throw new HarnessError(`${repoDir} is a shallow clone: its history is incomplete, so a leak scan would prove nothing`);
  }
  const listing = await git(repoDir, ['rev-list', '--all', '--objects']);
  const oids = listing
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' ', 1)[0]!);

  // Pass 1: every object once; remember what matched and each commit's root tree.
  const matched = new Map<string, { type: string; counts: number[] }>();
  const commitTree = new Map<string, string>(); // rev-list order: newest first
  const trees: string[] = [];
  let hashBytes = 20;
  for await (const object of catFile(repoDir, oids)) {
    hashBytes = object.oid.length / 2;
    if (object.type === 'commit') commitTree.set(object.oid, object.content.toString('latin1', 5, 5 + object.oid.length));
    else if (object.type === 'tree') trees.push(object.oid);
    const found = index.search(object.content);
    if (!found) continue;
    const counts = new Array<number>(matchers.length).fill(0);
    for (const [secret, { count, forms }] of found) {
      counts[secret] = count;
      for (const form of forms) formsFound[secret]!.add(formName(form));
    }
    matched.set(object.oid, { type: object.type, counts });
  }
  // Zero matches over nothing would read as a pass.
  if (commitTree.size === 0) throw new HarnessError(`${repoDir} has no commits reachable from any ref: nothing to scan`);
  const hits = (oid: string, index: number): boolean => (matched.get(oid)?.counts[index] ?? 0) > 0;

  const scanned = { commits: commitTree.size, objects: oids.length };
  const results = matchers.map((_, secret): LeakCount => ({ count: 0, commits: 0, objects: 0, forms: [...formsFound[secret]!].sort(), where: [], scanned }));
  for (const { counts } of matched.values()) {
    counts.forEach((n, index) => {
      if (n === 0) return;
      results[index]!.count += n;
      results[index]!.objects += 1;
    });
  }

  // Pass 2, only when a blob or tree matched: which commits' snapshots reach it, and where.
  const children = new Map<string, TreeEntry[]>();
  if ([...matched.values()].some(({ type }) => type === 'blob' || type === 'tree')) {
    for await (const object of catFile(repoDir, trees)) children.set(object.oid, parseTree(object.content, hashBytes));
  }
  const reach = new Map<string, Set<number>>();
  const reaches = (tree: string): Set<number> => {
    let found = reach.get(tree);
    if (found) return found;
    found = new Set<number>();
    reach.set(tree, found);
    matchers.forEach((_, index) => {
      if (hits(tree, index)) found.add(index);
    });
    for (const entry of children.get(tree) ?? []) {
      if (entry.tree) for (const index of reaches(entry.oid)) found.add(index);
      else
        matchers.forEach((_, index) => {
          if (hits(entry.oid, index)) found.add(index);
        });
    }
    return found;
  };
  const pathsTo = (tree: string, index: number, prefix: string, out: string[]): void => {
    for (const entry of children.get(tree) ?? []) {
      if (out.length >= MAX_WHERE) return;
      const path = `${prefix}${entry.name}`;
      if (hits(entry.oid, index)) out.push(entry.tree ? `${path}/ (directory listing)` : path);
      else if (entry.tree && reaches(entry.oid).has(index)) pathsTo(entry.oid, index, `${path}/`, out);
    }
  };

  for (const [commit, tree] of commitTree) {
    const inTree = children.size > 0 ? reaches(tree) : undefined;
    results.forEach((result, index) => {
      const message = hits(commit, index);
      const snapshot = inTree?.has(index) ?? false;
      if (!message && !snapshot) return;
      result.commits += 1;
      if (message && result.where.length < MAX_WHERE) result.where.push({ commit, path: '(commit message)' });
      if (snapshot && result.where.length < MAX_WHERE) {
        const paths = hits(tree, index) ? ['(root directory listing)'] : [];
        pathsTo(tree, index, '', paths);
        for (const path of paths.slice(0, MAX_WHERE - result.where.length)) result.where.push({ commit, path });
      }
    });
  }
  // Annotated tags are not commits, but their messages are history too.
  for (const [oid, { type }] of matched) {
    if (type !== 'tag') continue;
    results.forEach((result, index) => {
      if (hits(oid, index) && result.where.length < MAX_WHERE) result.where.push({ commit: oid, path: '(annotated tag message)' });
    });
  }

  return new Map(keyed.map(([key], index) => [key, results[index]!]));
}

/** One plain value (the instance domain, say) across all history. */
export async function scanString(repoDir: string, value: string, options?: LeakScanOptions): Promise<LeakCount> {
  return (await countOccurrences(repoDir, [value], options)).get(0)!;
}

/** A check's observation of one result: counts and places, never the value. */
export function describeLeak(label: string, result: LeakCount): string {
  const over = `${result.scanned.commits} commits, ${result.scanned.objects} objects scanned`;
  if (result.count === 0) return `${label}: 0 matches (${over})`;
  const places = result.where.map((place) => `${place.commit.slice(0, 12)}:${place.path}`).join(', ');
  const forms = result.forms.length > 0 ? ` as ${result.forms.join('; ')}` : '';
  return `${label}: ${result.count} match(es)${forms} in ${result.objects} object(s), ${result.commits} commit(s) (${over}); e.g. ${places}`;
}
