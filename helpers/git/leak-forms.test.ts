import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { succeed } from '../common/exec.ts';
import { plantedForms } from '../common/testing/planted-forms.ts';
import { secretForms } from '../common/secret-forms.ts';
import { countOccurrences, describeLeak } from './leak.ts';

const FORMS = plantedForms();
const fileOf = (index: number) => `planted/form-${index}.txt`;

let work: string;
let repo: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'leak-forms-'));
  repo = join(work, 'repo');
  await succeed('git', ['init', '-q', repo]);
  const data = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  const stream: string[] = [];
  // Each canary lives in one commit's snapshot only: planted, then removed by the next commit.
  FORMS.forEach(({ planted }, index) => {
    stream.push(
      'commit refs/heads/main\n',
      `committer t <t@t.invalid> ${1_700_000_000 + 2 * index} +0000\n`,
      data(`plant ${index}`),
      `M 644 inline ${fileOf(index)}\n`,
      data(planted),
    );
    stream.push('commit refs/heads/main\n', `committer t <t@t.invalid> ${1_700_000_001 + 2 * index} +0000\n`, data(`remove ${index}`), `D ${fileOf(index)}\n`);
  });
  await succeed('git', ['fast-import', '--quiet'], { cwd: repo, input: stream.join('') });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('the leak probe over git history', () => {
  it.each(FORMS.map((form, index) => ({ ...form, index })))(
    'finds a canary planted as $name, in its file and commit, naming the form but never the value',
    async ({ value, index }) => {
      const result = (await countOccurrences(repo, { canary: value })).get('canary')!;
      // Some canaries share a value (two wrappings of one long value): each is in its own commit.
      const sharing = FORMS.flatMap((form, at) => (form.value === value ? [fileOf(at)] : []));
      expect(result.commits).toBe(sharing.length);
      expect(result.where.map(({ path }) => path).sort()).toEqual(sharing.sort());
      expect(sharing).toContain(fileOf(index));
      expect(result.forms.length).toBeGreaterThan(0);
      const line = describeLeak('canary', result);
      for (const form of secretForms('canary', value)) expect(line).not.toContain(form.text);
    },
  );

  it('searching verbatim only misses the encoded canaries, which is why every form is searched', async () => {
    const values = Object.fromEntries(FORMS.map(({ name, value }) => [name, value]));
    const verbatim = await countOccurrences(repo, values, { forms: 'verbatim' });
    expect(verbatim.get('verbatim')!.count).toBe(1);
    expect(verbatim.get('hex')!.count).toBe(0);
    expect(verbatim.get('base64 of a blob, offset 2')!.count).toBe(0);
  });
});
