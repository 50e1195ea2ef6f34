/**
 * For tests: a canary written in each form a leak takes, the way the leaking program would
 * write it (node's own encoders and the shell's habits), not through secret-forms.ts, so a test
 * that finds it proves the derivation rather than repeating it.
 */
import { randomBytes } from 'node:crypto';

export interface PlantedForm {
  /** What the test is called after. */
  name: string;
  /** The secret as registered (a sops value). */
  value: string;
  /** The text a leaking program would write. */
  planted: string;
}

const token = (prefix: string) => `${prefix}-${randomBytes(15).toString('base64url')}`;
const base64 = (text: string) => Buffer.from(text).toString('base64');

/** One planted canary per form; fresh values per call. */
export function plantedForms(): PlantedForm[] {
  const plain = (name: string, write: (value: string) => string, prefix = 'canary'): PlantedForm => {
    const value = token(prefix);
    return { name, value, planted: write(value) };
  };
  const withSpecials = () => `canary/${randomBytes(9).toString('hex')} +&="quoted"\\end`;
  const jsonSecret = () => ({ user: 'ci-bot', host: 'db.internal', password: `pw-${randomBytes(12).toString('hex')}` });
  const pemBody = Array.from({ length: 4 }, () => randomBytes(48).toString('base64'));
  const pem = ['-----BEGIN PRIVATE KEY-----', ...pemBody, '-----END PRIVATE KEY-----', ''].join('\n');
  const longValue = `long-${randomBytes(90).toString('hex')}`;
  const json = jsonSecret();
  const dotenvPassword = `dot-${randomBytes(10).toString('hex')}`;
  return [
    plain('verbatim', (value) => `token=${value}`),
    // `echo $TOKEN | base64`: the newline is encoded too.
    plain('base64 (echo | base64)', (value) => `step: ${base64(`${value}\n`)}`),
    plain('base64, padded', (value) => `Authorization: Basic ${base64(value)}`),
    plain('base64 without padding', (value) => `k=${base64(value).replace(/=+$/, '')};`),
    plain('base64url', (value) => `jwt.${Buffer.from(value).toString('base64url')}.sig`),
    // Inside a larger blob at offsets 1 and 2 (mod 3).
    plain('base64 of a blob, offset 1', (value) => `blob ${base64(`x${value} and more`)}`),
    plain('base64 of a blob, offset 2', (value) => `blob ${base64(`{"${value}": true}`)}`),
    plain('base64url of a blob, offset 1', (value) => `blob ${Buffer.from(`y${value} tail`).toString('base64url')}`),
    { name: 'base64 wrapped at 76', value: longValue, planted: `-- dump --\n${base64(longValue).replace(/.{76}/g, '$&\n')}\n` },
    { name: 'base64 wrapped at 64', value: longValue, planted: `-- dump --\n${base64(longValue).replace(/.{64}/g, '$&\r\n')}\n` },
    plain('hex', (value) => `0000: ${Buffer.from(value).toString('hex')}`),
    plain('HEX', (value) => `DUMP ${Buffer.from(value).toString('hex').toUpperCase()}`),
    { name: 'url-encoded', value: withSpecials(), planted: '' },
    { name: 'form-encoded', value: withSpecials(), planted: '' },
    { name: 'json-escaped', value: withSpecials(), planted: '' },
    { name: 'json-escaped with slashes (PHP)', value: withSpecials(), planted: '' },
    { name: 'html-escaped', value: withSpecials(), planted: '' },
    { name: 'a line of a PEM block', value: pem, planted: `diff\n+    ${pemBody[2]}\n` },
    { name: 'a JSON field', value: JSON.stringify(json), planted: `password is ${json.password}` },
    { name: 'a JSON field, base64', value: JSON.stringify(json), planted: `p=${base64(json.password)}` },
    {
      name: 'a dotenv field, url-encoded',
      value: `DB_USER=ci\nDB_PASSWORD="${dotenvPassword}/x"\n`,
      planted: `https://ci:${encodeURIComponent(`${dotenvPassword}/x`)}@db`,
    },
  ].map((form) => {
    if (form.name === 'url-encoded') return { ...form, planted: `https://h/?t=${encodeURIComponent(form.value)}` };
    if (form.name === 'form-encoded') return { ...form, planted: new URLSearchParams({ t: form.value }).toString() };
    if (form.name === 'html-escaped') return { ...form, planted: `<td>${form.value.replaceAll('&', '&amp;').replaceAll('"', '&quot;')}</td>` };
    if (form.name === 'json-escaped with slashes (PHP)') return { ...form, planted: `{"t":${JSON.stringify(form.value).replaceAll('/', '\\/')}}` };
    if (form.name === 'json-escaped') return { ...form, planted: JSON.stringify({ level: 'info', msg: `got ${form.value}` }) };
    return form;
  });
}
