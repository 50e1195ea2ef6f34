/**
 * What a decision log (the base repo's DECISIONS.md) records of the seed's open decisions: the
 * final sizing of a machine, and how the instance repo is composed. Decision logs are prose, so
 * each rule is narrow and stated: a line about the decision (by its own words or its heading's)
 * with a decision word followed by the choice. The last such line wins: a later entry supersedes.
 */

/** Words that make a line a decision rather than history ("resized 6 GB → 4 GB" is history). */
const DECISION_WORD = /\b(?:decided|decide|decision|final|keep|kept|chose|chosen|settled|restored?|restore to)\b/i;
const SIZE = /(\d+(?:\.\d+)?)\s?(TiB|TB|GiB|GB|G|MiB|MB|M)\b/g;
const UNIT_BYTES: Record<string, number> = { TiB: 2 ** 40, TB: 1e12, GiB: 2 ** 30, GB: 1e9, G: 2 ** 30, MiB: 2 ** 20, MB: 1e6, M: 2 ** 20 };

export interface RecordedSizing {
  /** The decision line, as written, and its line number (1-based). */
  line: string;
  lineNumber: number;
  /** The size the decision names, as written ("4 GB"), and in bytes. */
  size: string;
  bytes: number;
}

/** The machine's final sizing in `text`, or undefined when no line records one by the rule above. */
export function recordedSizing(text: string, machine: string): RecordedSizing | undefined {
  let heading = '';
  let found: RecordedSizing | undefined;
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    if (/^#{1,6}\s/.test(line)) {
      heading = line;
      return;
    }
    const about = line.includes(machine) || heading.includes(machine) || /sizing/i.test(heading);
    const decision = DECISION_WORD.exec(line);
    if (!about || !decision) return;
    const after = line.slice(decision.index + decision[0].length);
    const size = [...after.matchAll(SIZE)][0];
    if (!size) return;
    found = { line: line.trim(), lineNumber: index + 1, size: size[0], bytes: Number(size[1]) * UNIT_BYTES[size[2]!]! };
  });
  return found;
}

/**
 * Whether a size in prose is the configured one: "4 GB" in a decision log means Incus's 4GiB, so
 * sizes within 8 % agree (GB and GiB differ by 7.4 %); 4 and 6 GB never do.
 */
export function sameSize(proseBytes: number, configuredBytes: number): boolean {
  return Math.abs(proseBytes - configuredBytes) <= 0.08 * configuredBytes;
}

export type Composition = 'submodule' | 'input';

export interface RecordedComposition {
  line: string;
  lineNumber: number;
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
  let heading = '';
  let found: RecordedComposition | undefined;
  text.split('\n').forEach((line, index) => {
    if (/^#{1,6}\s/.test(line)) {
      heading = line;
      return;
    }
    if (!ABOUT_COMPOSITION.test(line) && !ABOUT_COMPOSITION.test(heading)) return;
    const decision = DECISION_WORD.exec(line);
    if (!decision) return;
    const choice = COMPOSITION_CHOICE.exec(line.slice(decision.index + decision[0].length));
    if (!choice) return;
    found = { line: line.trim(), lineNumber: index + 1, composition: /submodule/i.test(choice[0]) ? 'submodule' : 'input' };
  });
  return found;
}
