/**
 * The final sizing of a machine as a decision log records it (the seed: "final cc-nix-test sizing
 * decided and applied … record in DECISIONS.md"). Decision logs are prose, so the rule is narrow
 * and stated: a line that names the machine, or sits under a heading that names it or "sizing",
 * with a decision word followed by a size. The last such line wins: a later entry supersedes.
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
