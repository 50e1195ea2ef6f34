/**
 * The edits a sabotage makes to a fork of a lab repo, declared as data so that a unit test can
 * apply every one to the lab's templates: an edit that no longer finds its text would break
 * nothing, and only the 45-minute matrix would notice.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HarnessError } from '../helpers/common/errors.ts';

export type FileEdit =
  /** `expected` must occur exactly once in the file; it becomes `replacement`. */
  | { file: string; expected: string; replacement: string }
  /** Added at the end of a file that must exist. */
  | { file: string; append: string }
  /** The whole file, created or overwritten. */
  | { file: string; content: string }
  | { file: string; remove: true };

/** One commit of a fork: its message and what it changes. */
export interface ForkCommit {
  message: string;
  edits: readonly FileEdit[];
}

/**
 * A declared edit that does not fit the file it names: the sabotage would break nothing. An
 * ERROR (the harness could not break the lab as declared), not a FAIL.
 */
function editError(sabotage: string, file: string, problem: string): HarnessError {
  return new HarnessError(`sabotage ${sabotage}: ${file} ${problem}; update the sabotage's declared edit in lab/sabotage.ts to the file's current text`);
}

const excerpt = (text: string) => JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);

/**
 * The file's text after one edit; `text` is undefined when the file does not exist, and the
 * result is undefined when the edit removes it. Throws a HarnessError when the edit does
 * not fit: its text missing or ambiguous, or the file absent.
 */
export function editedText(sabotage: string, edit: FileEdit, text: string | undefined): string | undefined {
  if ('content' in edit) return edit.content;
  if (text === undefined) throw editError(sabotage, edit.file, 'does not exist');
  if ('remove' in edit) return undefined;
  if ('append' in edit) return text + edit.append;
  const count = text.split(edit.expected).length - 1;
  if (count === 0) throw editError(sabotage, edit.file, `no longer contains ${excerpt(edit.expected)}`);
  if (count > 1) throw editError(sabotage, edit.file, `contains ${excerpt(edit.expected)} ${count} times, so the edit is ambiguous`);
  return text.replace(edit.expected, () => edit.replacement);
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Applies `edits` in order to the work tree at `dir`. */
export async function applyEdits(sabotage: string, dir: string, edits: readonly FileEdit[]): Promise<void> {
  for (const edit of edits) {
    const path = join(dir, edit.file);
    const text = editedText(sabotage, edit, await readIfPresent(path));
    if (text === undefined) {
      await rm(path);
    } else {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, text);
    }
  }
}
