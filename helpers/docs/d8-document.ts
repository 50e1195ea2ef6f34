/**
 * The D8 document (the DoD's "D8 evidence") a cc-ci system publishes in its base repo
 * (docs/evidence/d8.md), read as C5 reads it. Layout is free Markdown: headings of any level,
 * facts as `Key: value` lines, bulleted or not, keys in bold or not, values in backticks or not,
 * or as two-column table rows.
 * The facts are strict:
 *
 * - a heading naming the **static half**, with `Commit` (the base repo's commit it measured: no
 *   commit can name itself, so a document names an earlier one), `Toplevel`, `Closure hash` and `Built at`;
 * - a heading naming the **live half**, with `Instance`, `Created at`, `Rebuild started at`,
 *   `Rebuild finished at`, `Rebuild exit code`, `Toplevel` and `Closure hash`;
 * - optionally a **Limitations** heading: `None.`, or entries (sub-headings, or one block of text)
 *   that each name what is not shown and carry `Signed-off-by: <name> <YYYY-MM-DD>`.
 *
 * A store path is /nix/store/<32 nix32>-name; a hash is `sha256:<64 hex>` or `sha256-<base64>`;
 * a timestamp is ISO 8601 with a time and a zone.
 */

export interface Fact {
  value: string;
  line: number;
}

export interface DocumentHalf {
  heading: string;
  line: number;
  facts: Map<string, Fact>;
}

export interface Limitation {
  /** The entry's heading, or the first line of an unheaded block. */
  title: string;
  line: number;
  text: string;
  signOff?: { name: string; date: string; line: number };
}

export interface D8Document {
  file: string;
  static?: DocumentHalf;
  live?: DocumentHalf;
  limitations: Limitation[];
  /** Every heading, for a reader told that a half is missing. */
  headings: Array<{ text: string; line: number }>;
}

export const STATIC_FACTS = ['commit', 'toplevel', 'closure hash', 'built at'] as const;
export const LIVE_FACTS = ['instance', 'created at', 'rebuild started at', 'rebuild finished at', 'rebuild exit code', 'toplevel', 'closure hash'] as const;

const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[^/\s]+$/;
const HASH = /^sha256(:[0-9a-f]{64}|-[A-Za-z0-9+/]{43}=)$/;
const COMMIT = /^[0-9a-f]{7,40}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
const SIGN_OFF = /^\s*(?:[-*+]\s+)?(?:\*\*|__)?Signed-off-by:?(?:\*\*|__)?:?\s+(.+?)\s+(\d{4}-\d{2}-\d{2})\s*$/i;
/** A limitation that gives up a whole half (or the live rebuild) is not narrow. */
const WHOLE_HALF =
  /infeasible|not\s+feasible|cannot\s+be\s+(done|performed)\s+by\s+design|\b(static|live)\s+half\s+((is|was)\s+(not|never)|(cannot|could\s+not)\s+be)\s+(shown|done|performed|possible|omitted|skipped)|\bno\s+live\s+(half|rebuild)\b/i;

const normaliseKey = (key: string) => key.replace(/[*_`]/g, '').replace(/\s+/g, ' ').trim().toLowerCase();
const unwrapValue = (value: string) =>
  value
    .replace(/^[*_]+|[*_]+$/g, '')
    .trim()
    .replace(/^`(.*)`$/, '$1')
    .trim();

/** `Key: value` in any of the layouts above, or undefined. */
export function factOf(line: string): { key: string; value: string } | undefined {
  const row = /^\s*\|([^|]+)\|([^|]+)\|\s*$/.exec(line);
  if (row) {
    const value = unwrapValue(row[2]!);
    if (/^:?-+:?$/.test(value)) return undefined;
    return { key: normaliseKey(row[1]!), value };
  }
  const plain = /^\s*(?:[-*+]\s+)?(\*\*|__)?([A-Za-z][A-Za-z -]*?)(?::\1|\1:|:)\s+(.+?)\s*$/.exec(line);
  if (!plain) return undefined;
  return { key: normaliseKey(plain[2]!), value: unwrapValue(plain[3]!) };
}

type SectionKind = 'static' | 'live' | 'limitations' | 'other';

function kindOf(heading: string): SectionKind {
  if (/\bstatic\s+half\b/i.test(heading)) return 'static';
  if (/\blive\s+half\b/i.test(heading)) return 'live';
  if (/^limitations?\b/i.test(heading.replace(/[*_`]/g, ''))) return 'limitations';
  return 'other';
}

export function parseD8Document(text: string, file: string): D8Document {
  const doc: D8Document = { file, limitations: [], headings: [] };
  const lines = text.split('\n');
  let section: { kind: SectionKind; level: number; half?: DocumentHalf } = { kind: 'other', level: 0 };
  let limitation: Limitation | undefined;
  let inFence = false;

  const closeLimitation = () => {
    if (limitation && (limitation.text.trim() || limitation.signOff)) doc.limitations.push(limitation);
    limitation = undefined;
  };

  lines.forEach((raw, index) => {
    const line = index + 1;
    if (/^\s*(```|~~~)/.test(raw)) inFence = !inFence;
    const heading = inFence ? null : HEADING.exec(raw);
    if (heading) {
      const level = heading[1]!.length;
      const title = heading[2]!;
      doc.headings.push({ text: title, line });
      // A sub-heading of Limitations is one entry; any other heading closes the section.
      if (section.kind === 'limitations' && level > section.level && kindOf(title) === 'other') {
        closeLimitation();
        limitation = { title, line, text: '' };
        return;
      }
      closeLimitation();
      const kind = kindOf(title);
      if (kind === 'static' || kind === 'live') {
        const half: DocumentHalf = { heading: title, line, facts: new Map() };
        // The first heading for a half counts; a second one is read into the first.
        if (kind === 'static') doc.static ??= half;
        else doc.live ??= half;
        section = { kind, level, half: kind === 'static' ? doc.static : doc.live };
      } else if (!(section.half && level > section.level && kind === 'other')) {
        // A sub-heading inside a half (say, "Commands") stays in it; any other heading ends it.
        section = { kind, level };
      }
      return;
    }
    if (section.half) {
      const fact = inFence ? undefined : factOf(raw);
      if (fact && !section.half.facts.has(fact.key)) section.half.facts.set(fact.key, { value: fact.value, line });
      return;
    }
    if (section.kind === 'limitations') {
      if (!raw.trim()) return;
      if (!limitation && /^\s*(?:[-*+]\s+)?_?none\.?_?\s*$/i.test(raw)) return;
      limitation ??= { title: raw.trim(), line, text: '' };
      limitation.text += `${raw}\n`;
      const signOff = SIGN_OFF.exec(raw);
      if (signOff) limitation.signOff = { name: signOff[1]!.replace(/[*_`]/g, '').trim(), date: signOff[2]!, line };
    }
  });
  closeLimitation();
  return doc;
}

export interface D8DocumentExpectations {
  /** What this run built from a clean checkout, and the base repo's commit it built. */
  measured: { toplevel: string; commit: string };
  /**
   * The static half's commit as the base repo resolves it: its full id when it is in the base
   * repo's history, undefined when it is not (or the document names none).
   */
  describedCommit: string | undefined;
}

/** The commit the static half names, when it is written as one. */
export function namedCommit(doc: D8Document): string | undefined {
  const value = doc.static?.facts.get('commit')?.value;
  return value !== undefined && COMMIT.test(value) ? value : undefined;
}

/**
 * What the static half can be compared with: this run's build when the document measured the
 * commit this run built; otherwise which commit each side describes (a document can only name a
 * commit before its own, so an older one is no FAIL).
 */
export function staticHalfScope(doc: D8Document, expected: D8DocumentExpectations): string {
  const toplevel = doc.static?.facts.get('toplevel')?.value;
  if (expected.describedCommit === expected.measured.commit)
    return `the static half measured ${short(expected.measured.commit)}, the commit this run built, and names its toplevel ${expected.measured.toplevel}`;
  return `the static half describes ${short(expected.describedCommit ?? namedCommit(doc) ?? '(none)')} (toplevel ${toplevel ?? '(none)'}), this run built ${short(expected.measured.commit)} (toplevel ${expected.measured.toplevel}): not compared`;
}

const short = (commit: string) => commit.slice(0, 12);

const KIND: Record<string, (value: string) => boolean> = {
  commit: (value) => COMMIT.test(value),
  toplevel: (value) => STORE_PATH.test(value),
  'closure hash': (value) => HASH.test(value),
  'built at': isTimestamp,
  'created at': isTimestamp,
  'rebuild started at': isTimestamp,
  'rebuild finished at': isTimestamp,
  'rebuild exit code': (value) => /^\d+$/.test(value),
  instance: (value) => /^\S+$/.test(value),
};

function isTimestamp(value: string): boolean {
  return TIMESTAMP.test(value) && !Number.isNaN(Date.parse(value));
}

/** What a missing fact is, and the form a present one must have. */
const WHAT: Record<string, { noun: string; form: string }> = {
  commit: { noun: 'measured commit (Commit)', form: 'a git commit id, 7 to 40 hex digits' },
  toplevel: { noun: 'toplevel (Toplevel)', form: 'a /nix/store path' },
  'closure hash': { noun: 'closure hash (Closure hash)', form: 'sha256:<64 hex> or sha256-<base64>' },
  'built at': { noun: 'build timestamp (Built at)', form: 'an ISO 8601 time with a zone' },
  'created at': { noun: 'machine creation timestamp (Created at)', form: 'an ISO 8601 time with a zone' },
  'rebuild started at': { noun: 'rebuild start timestamp (Rebuild started at)', form: 'an ISO 8601 time with a zone' },
  'rebuild finished at': { noun: 'rebuild finish timestamp (Rebuild finished at)', form: 'an ISO 8601 time with a zone' },
  'rebuild exit code': { noun: 'rebuild exit code (Rebuild exit code)', form: 'a number' },
  instance: { noun: 'instance name (Instance)', form: 'one word' },
};

function halfProblems(doc: D8Document, name: 'static' | 'live', keys: readonly string[]): string[] {
  const half = doc[name];
  if (!half) {
    const seen = doc.headings.map(({ text, line }) => `${line}: ${text}`).join(', ') || 'none';
    return [`${doc.file}: the D8 evidence document has no ${name} half (no heading names "${name} half"; headings: ${seen})`];
  }
  const problems: string[] = [];
  for (const key of keys) {
    const fact = half.facts.get(key);
    if (!fact) problems.push(`${doc.file}:${half.line}: the ${name} half (${half.heading}) has no ${WHAT[key]!.noun}`);
    else if (!KIND[key]!(fact.value))
      problems.push(`${doc.file}:${fact.line}: the ${name} half's ${key} is not ${WHAT[key]!.form}: ${JSON.stringify(fact.value)}`);
  }
  return problems;
}

/** Everything wrong with a published D8 document, each naming the file and line; [] when it holds. */
export function d8DocumentProblems(doc: D8Document, expected: D8DocumentExpectations): string[] {
  const problems = [...halfProblems(doc, 'static', STATIC_FACTS), ...halfProblems(doc, 'live', LIVE_FACTS)];
  const commit = doc.static?.facts.get('commit');
  if (commit && COMMIT.test(commit.value) && expected.describedCommit === undefined) {
    problems.push(
      `${doc.file}:${commit.line}: the static half names commit ${commit.value}, which is not in the base repo's history: it is evidence for no commit of this system`,
    );
  }
  // Only a document that measured the commit this run built can be held to this run's toplevel.
  const staticToplevel = doc.static?.facts.get('toplevel');
  if (
    expected.describedCommit === expected.measured.commit &&
    staticToplevel &&
    STORE_PATH.test(staticToplevel.value) &&
    staticToplevel.value !== expected.measured.toplevel
  ) {
    problems.push(
      `${doc.file}:${staticToplevel.line}: the static half names toplevel ${staticToplevel.value} for commit ${short(expected.measured.commit)}, but this run built ${expected.measured.toplevel} from a clean checkout of that commit`,
    );
  }
  const exitCode = doc.live?.facts.get('rebuild exit code');
  if (exitCode && /^\d+$/.test(exitCode.value) && exitCode.value !== '0') {
    problems.push(`${doc.file}:${exitCode.line}: the live half records a rebuild that exited ${exitCode.value}`);
  }
  const at = (key: string) => doc.live?.facts.get(key);
  const order = ['created at', 'rebuild started at', 'rebuild finished at'].map(at);
  for (let i = 1; i < order.length; i++) {
    const [before, after] = [order[i - 1], order[i]];
    if (before && after && isTimestamp(before.value) && isTimestamp(after.value) && Date.parse(after.value) < Date.parse(before.value)) {
      problems.push(`${doc.file}:${after.line}: the live half's timestamps run backwards: ${after.value} is before ${before.value}`);
    }
  }
  for (const limitation of doc.limitations) {
    if (!limitation.signOff)
      problems.push(`${doc.file}:${limitation.line}: the limitation "${limitation.title}" carries no "Signed-off-by: <name> <YYYY-MM-DD>" line`);
    if (WHOLE_HALF.test(limitation.text) || WHOLE_HALF.test(limitation.title)) {
      problems.push(`${doc.file}:${limitation.line}: the limitation "${limitation.title}" is not narrow: it gives up a whole half of D8`);
    }
  }
  return problems;
}
