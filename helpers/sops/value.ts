/** The AES-256-GCM value codec: ENC[AES256_GCM,data:…,iv:…,tag:…,type:…] */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { registerSecret } from '../common/redact.ts';
import { SopsError } from './error.ts';
import { leafBytes } from './leaves.ts';
import { INT64_MAX, INT64_MIN, type Leaf } from './tree.ts';

const ENC_VALUE = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;

function strictBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

export function encryptValue(leaf: Leaf, key: Buffer, ad: string): string {
  const iv = randomBytes(32);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(ad, 'utf8'));
  const data = Buffer.concat([cipher.update(leafBytes(leaf)), cipher.final()]);
  const type = leaf.t === 'bytes' ? 'bytes' : leaf.t;
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')},type:${type}]`;
}

type Where = { source: string; display: string };

export function decryptValue(text: string, key: Buffer, ad: string, where: Where): Leaf {
  const { source, display } = where;
  const match = ENC_VALUE.exec(text);
  const parts = match ? [strictBase64(match[1]!), strictBase64(match[2]!), strictBase64(match[3]!)] : [];
  const [data, iv, tag] = parts;
  if (!match || !data || !iv || !tag) {
    throw new SopsError('tampered-value', source, `${source}: the value at ${display} is not a sops-encrypted value, where one is expected`);
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(ad, 'utf8'));
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    throw new SopsError(
      'tampered-value',
      source,
      `${source}: the value at ${display} fails AES-GCM authentication: it was modified, or moved from another key`,
    );
  }
  const text8 = plain.toString('utf8');
  registerSecret(text8);
  const bad = (what: string): never => {
    throw new SopsError('malformed', source, `${source}: the value at ${display} is typed ${match[4]} but its plaintext is not ${what}`);
  };
  switch (match[4]) {
    case 'str':
    case 'comment':
      return { t: 'str', v: text8, raw: plain };
    case 'int': {
      if (!/^[+-]?\d+$/.test(text8)) return bad('an integer');
      const v = BigInt(text8);
      return v >= INT64_MIN && v <= INT64_MAX ? { t: 'int', v } : bad('a 64-bit integer');
    }
    case 'float': {
      if (/^[+-]?(inf|infinity)$/i.test(text8)) return { t: 'float', v: text8.startsWith('-') ? -Infinity : Infinity };
      if (/^nan$/i.test(text8)) return { t: 'float', v: NaN };
      const v = Number(text8);
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text8) && Number.isFinite(v) ? { t: 'float', v } : bad('a float');
    }
    case 'bool': {
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text8)) return { t: 'bool', v: true };
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text8)) return { t: 'bool', v: false };
      return bad('a boolean');
    }
    case 'time':
      return { t: 'time', text: text8, canon: text8 };
    case 'bytes':
      return { t: 'bytes', v: plain };
    default:
      throw new SopsError('malformed', source, `${source}: the value at ${display} has an unknown sops type ${JSON.stringify(match[4])}`);
  }
}
