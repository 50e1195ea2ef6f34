/**
 * What a decision log (the base repo's DECISIONS.md) records of the seed's open decisions: the
 * final sizing of a machine, how the instance repo is composed, and how the bootstrap key is
 * provisioned. Decision logs are prose, so
 * each rule is narrow and stated: a line about the decision (by its own words or its heading's)
 * with a decision word followed by the choice. The last such line wins: a later entry supersedes.
 */

/** Words that make a line a decision rather than history ("resized 6 GB → 4 GB" is history). */
const DECISION_WORD = /\b(?:decided|decide|decision|final|keep|kept|chose|chosen|settled|restored?|restore to)\b/i;
const SIZE = /(\d+(?:\.\d+)?)\s?(TiB|TB|GiB|GB|G|MiB|MB|M)\b/g;
const UNIT_BYTES: Record<string, number> = { TiB: 2 ** 40, TB: 1e12, GiB: 2 ** 30, GB: 1e9, G: 2 ** 30, MiB: 2 ** 20, MB: 1e6, M: 2 ** 20 };

/**
 * The last line of `text` that records a decision: it is about the decision (`about` says so of
 * the line and of the heading it sits under), it holds a decision word, and after that word
 * `choice` reads a choice. Later lines supersede earlier ones.
 */
function lastDecision<T>(
  text: string,
  about: (line: string, heading: string) => boolean,
  choice: (after: string) => T | undefined,
): (Recorded & { choice: T }) | undefined {
  let heading = '';
  let found: (Recorded & { choice: T }) | undefined;
  text.split('\n').forEach((line, index) => {
    if (/^#{1,6}\s/.test(line)) {
      heading = line;
      return;
    }
    if (!about(line, heading)) return;
    const decision = DECISION_WORD.exec(line);
    if (!decision) return;
    const chosen = choice(line.slice(decision.index + decision[0].length));
    if (chosen !== undefined) found = { line: line.trim(), lineNumber: index + 1, choice: chosen };
  });
  return found;
}

/** A decision line, as written, and its line number (1-based). */
export interface Recorded {
  line: string;
  lineNumber: number;
}

export interface RecordedSizing extends Recorded {
  /** The size the decision names, as written ("4 GB"), and in bytes. */
  size: string;
  bytes: number;
}

/** The machine's final sizing in `text`, or undefined when no line records one by the rule above. */
export function recordedSizing(text: string, machine: string): RecordedSizing | undefined {
  const found = lastDecision(
    text,
    (line, heading) => line.includes(machine) || heading.includes(machine) || /sizing/i.test(heading),
    (after) => [...after.matchAll(SIZE)][0],
  );
  if (!found) return undefined;
  const size = found.choice;
  return { line: found.line, lineNumber: found.lineNumber, size: size[0], bytes: Number(size[1]) * UNIT_BYTES[size[2]!]! };
}

/**
 * Whether a size in prose is the configured one: "4 GB" in a decision log means Incus's 4GiB, so
 * sizes within 8 % agree (GB and GiB differ by 7.4 %); 4 and 6 GB never do.
 */
export function sameSize(proseBytes: number, configuredBytes: number): boolean {
  return Math.abs(proseBytes - configuredBytes) <= 0.08 * configuredBytes;
}

export type Composition = 'submodule' | 'input';

export interface RecordedComposition extends Recorded {
  composition: Composition;
}

/** Words that put a line or heading about how the instance repo is composed. */
const ABOUT_COMPOSITION = /instance repo|linkage|composition|composed/i;
const COMPOSITION_CHOICE = /submodule|flake input/i;

/**
 * How the log records the instance repo's composition: a line about it (by its words or its
 * heading's) with a decision word followed by "submodule" or "flake input".
 */
export function recordedComposition(text: string): RecordedComposition | undefined {
  const found = lastChoice(text, ABOUT_COMPOSITION, COMPOSITION_CHOICE, (choice): Composition => (/submodule/i.test(choice) ? 'submodule' : 'input'));
  return found && { line: found.line, lineNumber: found.lineNumber, composition: found.choice };
}

/** lastDecision for a decision named by words: about `about` (the line or its heading), the first of `choices` after the decision word, classified. */
function lastChoice<T>(text: string, about: RegExp, choices: RegExp, classify: (choice: string) => T): (Recorded & { choice: T }) | undefined {
  return lastDecision(
    text,
    (line, heading) => about.test(line) || about.test(heading),
    (after) => {
      const choice = choices.exec(after);
      return choice ? classify(choice[0]) : undefined;
    },
  );
}

/**
 * The seed's two ways to give a new host its key: the off-box recovery key as it is (`recovery`),
 * or a key of the host's own, with the secrets re-encrypted to it (`per-host`).
 */
export type KeyProvisioning = 'recovery' | 'per-host';

export interface RecordedKeyProvisioning extends Recorded {
  provisioning: KeyProvisioning;
}

const ABOUT_KEY = /bootstrap|age key|recovery key|host key|key provisioning/i;
/** "per-host" before "recovery": "a host key instead of the recovery key" chooses the host's own. */
const KEY_CHOICE = /per[- ]host|host'?s own|own key|new host key|re-?encrypt|(?:off-box |master )?recovery (?:age )?key/i;

/**
 * How the log records the bootstrap key's provisioning: a line about the key (by its words or its
 * heading's) with a decision word, and after it the first choice named.
 */
export function recordedKeyProvisioning(text: string): RecordedKeyProvisioning | undefined {
  const found = lastChoice(text, ABOUT_KEY, KEY_CHOICE, (choice): KeyProvisioning => (/recovery/i.test(choice) ? 'recovery' : 'per-host'));
  return found && { line: found.line, lineNumber: found.lineNumber, provisioning: found.choice };
}
