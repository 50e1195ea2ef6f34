import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MultiMatcher } from './multi-match.ts';
import { forgetSecrets, redact, registerSecret } from './redact.ts';
import { plantedForms } from './testing/planted-forms.ts';
import { applyRecipe, base64Core, FormIndex, MIN_PART_LENGTH, secretForms, secretParts, secretsInTexts } from './secret-forms.ts';

afterEach(() => forgetSecrets());

describe('MultiMatcher', () => {
  it('finds every pattern, overlapping ones and patterns inside others included', () => {
    const matcher = new MultiMatcher(['he', 'she', 'his', 'hers'].map((text) => Buffer.from(text)));
    expect([...matcher.counts(Buffer.from('ushers and his hers'))!]).toEqual([2, 1, 1, 2]);
    expect(matcher.counts(Buffer.from('nothing'))).toBeUndefined();
  });

  it('folds ASCII case on request only', () => {
    const text = Buffer.from('CI.Example.NET');
    expect(new MultiMatcher([Buffer.from('ci.example.net')]).counts(text)).toBeUndefined();
    expect([...new MultiMatcher([Buffer.from('CI.example.net')], { ignoreCase: true }).counts(text)!]).toEqual([1]);
  });

  it('agrees with indexOf on random text and a thousand patterns', () => {
    const text = randomBytes(30_000).toString('base64');
    const patterns = Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? text.slice(i * 30, i * 30 + 4) : randomBytes(12).toString('base64')));
    const counts = new MultiMatcher(patterns.map((pattern) => Buffer.from(pattern))).counts(Buffer.from(text))!;
    patterns.forEach((pattern, i) => {
      let n = 0;
      for (let at = text.indexOf(pattern); at !== -1; at = text.indexOf(pattern, at + 1)) n++;
      expect(counts[i], pattern).toBe(n);
    });
  });
});

describe('base64Core', () => {
  it('is the part of the encoding that the value alone decides, at each offset', () => {
    const value = Buffer.from('correct horse battery staple');
    for (const offset of [0, 1, 2] as const) {
      const core = applyRecipe(base64Core(value.length, offset, false), value.toString());
      for (const prefix of ['', 'a', 'ab', 'abc', 'abcd', 'abcde']) {
        if (prefix.length % 3 !== offset) continue;
        for (const suffix of ['', '!', '!!', '!!!']) expect(Buffer.from(`${prefix}${value}${suffix}`).toString('base64')).toContain(core);
      }
    }
  });
});

describe('secretParts', () => {
  it('splits a multi-line value into long lines, without the PEM armour', () => {
    const body = randomBytes(48).toString('base64');
    expect(secretParts(`-----BEGIN X-----\n${body}\nshort\n-----END X-----\n`).map(({ name }) => name)).toEqual(['whole value', 'whole value', 'line 2']);
  });

  it('finds the long string fields of JSON, YAML and dotenv values', () => {
    const names = (value: string) =>
      secretParts(value)
        .map(({ name }) => name)
        .filter((name) => name.startsWith('field'));
    expect(names(JSON.stringify({ user: 'ci', auth: { password: `${'p'.repeat(12)}q`, port: 5432 } }))).toEqual(['field auth.password']);
    expect(names('user: ci\ntokens:\n  - aaaaaaaaaaaaaaaaa1\n')).toEqual(['field tokens.0']);
    expect(names('# db\nexport DB_USER=ci\nDB_PASSWORD="a-long-password-1"\n')).toEqual(['field DB_PASSWORD']);
    expect(names('just one long token without structure')).toEqual([]);
  });
});

describe('the short-fragment rule', () => {
  it(`searches a part only from ${MIN_PART_LENGTH} characters: a short field is not matched by chance`, () => {
    const value = JSON.stringify({ user: 'admin', host: 'db.internal', port: '5432', password: `pw-${randomBytes(12).toString('hex')}` });
    const ordinary = 'login as admin on db.internal:5432 with the usual settings';
    expect(secretsInTexts({ credential: value }, [{ where: 'log', text: ordinary }])).toEqual([]);
    const forms = secretForms('credential', value);
    for (const short of ['admin', 'db.internal', '5432']) expect(forms.some(({ text }) => text === short)).toBe(false);
  });

  it('keeps base64 at an offset only while it pins down as many bytes as its source needs', () => {
    // Six characters: the whole value is searched, and base64 at offset 0 (8 characters) with it,
    // but the offset cores (7 and 6 characters) would hold fewer bits than the value.
    const encodings = secretForms('pin', '7h3x9q').map(({ encoding }) => encoding);
    expect(encodings).toContain('base64');
    expect(encodings).not.toContain('base64 at offset 1');
    expect(encodings).not.toContain('base64 at offset 2');
  });

  it('refuses a whole value under six characters, in the probes and in redaction', () => {
    expect(secretForms('tiny', 'abc12')).toEqual([]);
    registerSecret('abc12');
    expect(redact('abc12 YWJjMTI=')).toBe('abc12 YWJjMTI=');
  });
});

describe.each(plantedForms())('a canary planted as $name', ({ value, planted }) => {
  it('is found in a build log and on a dashboard page, naming the secret, the form and the place, never the value', () => {
    const log = `+ ./deploy.sh\n${planted}\n+ exit 0\n`;
    const html = `<html><body><pre>${planted}</pre></body></html>`;
    const found = secretsInTexts({ canary: value }, [
      { where: 'log of build #7 default/deploy', text: log },
      { where: 'dashboard /runs/7', text: html },
    ]);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^canary in the log of build #7 default\/deploy \(as .+\)$/);
    expect(found[1]).toMatch(/^canary in the dashboard \/runs\/7 \(as .+\)$/);
    for (const line of found) for (const form of secretForms('canary', value)) expect(line).not.toContain(form.text);
  });

  it('is redacted from a report, so no form of it is left', () => {
    registerSecret(value);
    const report = redact(`# run\n\nevidence: ${planted}\n`);
    expect(report).toContain('[REDACTED]');
    expect(secretsInTexts({ canary: value }, [{ where: 'report', text: report }])).toEqual([]);
  });
});

describe('redaction in text that is not ASCII', () => {
  it('cuts at the right characters around multi-byte text, and takes the Python-escaped form too', () => {
    registerSecret('pässwörd-geheim-1');
    expect(redact('ü → pässwörd-geheim-1 ✓')).toBe('ü → [REDACTED] ✓');
    expect(redact('{"pw": "p\\u00e4ssw\\u00f6rd-geheim-1"} ✓')).toBe('{"pw": "[REDACTED]"} ✓');
  });
});

describe('FormIndex', () => {
  it('counts one leak found in several forms once, and names the forms', () => {
    const value = `tok-${randomBytes(12).toString('hex')}`;
    const index = new FormIndex([{ label: 'a', value }]);
    const found = index.search(Buffer.from(`${value} ${Buffer.from(value).toString('base64')}`))!.get(0)!;
    expect(found.count).toBe(1);
    expect(found.forms.map(({ encoding }) => encoding)).toEqual(expect.arrayContaining(['verbatim', 'base64']));
  });

  it('verbatim only searches the whole value and its lines', () => {
    const value = `tok-${randomBytes(12).toString('hex')}`;
    const index = new FormIndex([{ label: 'a', value }], { verbatimOnly: true });
    expect(index.forms.map(({ encoding }) => encoding)).toEqual(['verbatim']);
  });
});
