/**
 * How a page, a badge or a PR comment reports a run's outcome, read as a person reads it: by
 * the words it shows. Both directions are read, so that a report that says "passed" of a failed
 * run is caught even when it also repeats the raw status somewhere.
 */

export type Outcome = 'passing' | 'failing';

/** The words of each outcome, whole words only ("required" is not "red"). */
const WORDS: Record<Outcome, RegExp> = {
  passing: /\b(?:pass(?:ed|es|ing)?|success(?:ful)?|succeeded|green)\b/i,
  failing: /\b(?:fail(?:ed|s|ing|ure)?|error(?:ed|s)?|red|broken|killed)\b/i,
};

/** The outcome a Drone status means; undefined for one still running, or unknown. */
export function outcomeOfStatus(status: string): Outcome | undefined {
  if (status === 'success') return 'passing';
  if (['failure', 'error', 'killed', 'declined'].includes(status)) return 'failing';
  return undefined;
}

export const OTHER_OUTCOME: Record<Outcome, Outcome> = { passing: 'failing', failing: 'passing' };

/** The text a person sees: tags dropped, the few entities badges and pages use decoded, links left out. */
export function visibleText(markup: string): string {
  return markup
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(amp|lt|gt|quot|#39);/g, (_whole, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[name]!)
    .replace(/https?:\/\/\S+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Which outcomes `text` (markup or plain) speaks of. */
export function outcomesIn(text: string): Set<Outcome> {
  const seen = visibleText(text);
  return new Set((Object.keys(WORDS) as Outcome[]).filter((outcome) => WORDS[outcome].test(seen)));
}

/**
 * Why `text` does not report `outcome`, or undefined when it does: it must speak of that outcome
 * and not of the other one.
 */
export function outcomeProblem(text: string, outcome: Outcome): string | undefined {
  const said = outcomesIn(text);
  if (said.has(OTHER_OUTCOME[outcome])) return `it says ${OTHER_OUTCOME[outcome]}${said.has(outcome) ? ` as well as ${outcome}` : ''}`;
  if (!said.has(outcome)) return `it says neither passing nor failing`;
  return undefined;
}

/**
 * The visible text of a run list's entry for the run at `path`: the innermost table row or list
 * item holding a link to it, else the markup's line that holds the link. Undefined when nothing
 * links `path`.
 */
export function runListEntry(markup: string, path: string): string | undefined {
  const link = markup.indexOf(`href="${path}"`);
  if (link < 0) return undefined;
  for (const tag of ['tr', 'li']) {
    const start = markup.lastIndexOf(`<${tag}`, link);
    const end = markup.indexOf(`</${tag}>`, link);
    // Innermost: no other entry of the same kind closes between its start and the link.
    if (start >= 0 && end >= 0 && !markup.slice(start, link).includes(`</${tag}>`)) return visibleText(markup.slice(start, end));
  }
  const lineStart = markup.lastIndexOf('\n', link) + 1;
  const lineEnd = markup.indexOf('\n', link);
  return visibleText(markup.slice(lineStart, lineEnd < 0 ? undefined : lineEnd));
}
