/**
 * Reads the server's Certificate message from the bytes captured during a handshake: in clear
 * for TLS 1.2, decrypted with the socket's own handshake secret (its 'keylog' event, kept in
 * memory only) for TLS 1.3. Kept because getPeerCertificate(true) rebuilds the chain and adds
 * the trusted root, so it cannot show what was served.
 */
import { X509Certificate, createDecipheriv, createHash, createHmac, type DecipherGCM } from 'node:crypto';

const HANDSHAKE_SERVER_HELLO = 2;
const HANDSHAKE_CERTIFICATE = 11;
const RECORD_CHANGE_CIPHER_SPEC = 20;
const RECORD_ALERT = 21;
const RECORD_HANDSHAKE = 22;
const RECORD_APPLICATION_DATA = 23;
/** RFC 8446 4.1.3: a ServerHello whose random is SHA-256("HelloRetryRequest") is a HelloRetryRequest. */
const HELLO_RETRY_RANDOM = createHash('sha256').update('HelloRetryRequest').digest();

const TLS13_SUITES: Record<number, { cipher: string; keyLength: number; hash: string }> = {
  0x1301: { cipher: 'aes-128-gcm', keyLength: 16, hash: 'sha256' },
  0x1302: { cipher: 'aes-256-gcm', keyLength: 32, hash: 'sha384' },
  0x1303: { cipher: 'chacha20-poly1305', keyLength: 32, hash: 'sha256' },
};

/** Accumulates handshake bytes across records and yields whole messages. */
class HandshakeStream {
  private pending = Buffer.alloc(0);
  push(bytes: Buffer): Array<{ type: number; body: Buffer }> {
    this.pending = Buffer.concat([this.pending, bytes]);
    const messages: Array<{ type: number; body: Buffer }> = [];
    while (this.pending.length >= 4) {
      const length = this.pending.readUIntBE(1, 3);
      if (this.pending.length < 4 + length) break;
      messages.push({ type: this.pending[0]!, body: this.pending.subarray(4, 4 + length) });
      this.pending = this.pending.subarray(4 + length);
    }
    return messages;
  }
}

/**
 * The certificate list of the server's Certificate message, or undefined if it cannot be read
 * (unknown suite, compressed certificates, truncated capture): the caller then falls back.
 */
export function readServerCertificates(bytes: Buffer, keylog: Buffer[]): X509Certificate[] | undefined {
  try {
    const plain = new HandshakeStream();
    let tls13 = false;
    let encrypted: { stream: HandshakeStream; key: Buffer; iv: Buffer; cipher: string; sequence: bigint } | undefined;
    for (let offset = 0; offset + 5 <= bytes.length; ) {
      const type = bytes[offset]!;
      const length = bytes.readUInt16BE(offset + 3);
      if (offset + 5 + length > bytes.length) return undefined;
      const header = bytes.subarray(offset, offset + 5);
      const body = bytes.subarray(offset + 5, offset + 5 + length);
      offset += 5 + length;
      if (type === RECORD_CHANGE_CIPHER_SPEC) {
        // TLS 1.3: a compatibility no-op. TLS 1.2: what follows is encrypted, and the
        // Certificate message should have come before it.
        if (tls13) continue;
        return undefined;
      }
      if (type === RECORD_ALERT) return undefined;
      if (type === RECORD_HANDSHAKE && !encrypted) {
        for (const message of plain.push(body)) {
          if (message.type === HANDSHAKE_SERVER_HELLO) {
            const hello = readServerHello(message.body);
            tls13 = hello.tls13;
            if (hello.tls13 && !hello.retry) {
              encrypted = { stream: new HandshakeStream(), sequence: 0n, ...handshakeKeys(hello.suite, keylog) };
            }
          } else if (message.type === HANDSHAKE_CERTIFICATE) {
            return readCertificateList(message.body, false);
          }
        }
        continue;
      }
      if (type === RECORD_APPLICATION_DATA && encrypted) {
        const inner = decryptRecord(encrypted, header, body);
        encrypted.sequence += 1n;
        if (inner.type !== RECORD_HANDSHAKE) continue;
        for (const message of encrypted.stream.push(inner.content)) {
          if (message.type === HANDSHAKE_CERTIFICATE) return readCertificateList(message.body, true);
        }
      }
    }
    return undefined;
  } catch {
    return undefined;
  }
}

function readServerHello(body: Buffer): { suite: number; tls13: boolean; retry: boolean } {
  let offset = 2; // legacy_version
  const random = body.subarray(offset, offset + 32);
  offset += 32;
  offset += 1 + body[offset]!; // legacy_session_id
  const suite = body.readUInt16BE(offset);
  offset += 3; // cipher_suite, legacy_compression_method
  let tls13 = false;
  if (offset + 2 <= body.length) {
    const end = offset + 2 + body.readUInt16BE(offset);
    offset += 2;
    while (offset + 4 <= end) {
      const extension = body.readUInt16BE(offset);
      const length = body.readUInt16BE(offset + 2);
      offset += 4;
      // supported_versions carrying TLS 1.3
      if (extension === 0x002b && length === 2 && body.readUInt16BE(offset) === 0x0304) tls13 = true;
      offset += length;
    }
  }
  return { suite, tls13, retry: random.equals(HELLO_RETRY_RANDOM) };
}

function handshakeKeys(suite: number, keylog: Buffer[]): { key: Buffer; iv: Buffer; cipher: string } {
  const params = TLS13_SUITES[suite];
  if (!params) throw new Error(`unsupported TLS 1.3 suite 0x${suite.toString(16)}`);
  const line = keylog.map((entry) => entry.toString('latin1').trim()).find((entry) => entry.startsWith('SERVER_HANDSHAKE_TRAFFIC_SECRET '));
  if (!line) throw new Error('no server handshake secret in the key log');
  const secret = Buffer.from(line.split(' ')[2] ?? '', 'hex');
  return {
    key: expandLabel(params.hash, secret, 'key', params.keyLength),
    iv: expandLabel(params.hash, secret, 'iv', 12),
    cipher: params.cipher,
  };
}

/** RFC 8446 7.1 HKDF-Expand-Label with an empty context. */
function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const fullLabel = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, fullLabel.length]), fullLabel, Buffer.from([0])]);
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let counter = 1, total = 0; total < length; counter++) {
    previous = createHmac(hash, secret)
      .update(previous)
      .update(info)
      .update(Buffer.from([counter]))
      .digest();
    blocks.push(previous);
    total += previous.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function decryptRecord(keys: { key: Buffer; iv: Buffer; cipher: string; sequence: bigint }, header: Buffer, body: Buffer): { type: number; content: Buffer } {
  const nonce = Buffer.from(keys.iv);
  const sequence = Buffer.alloc(8);
  sequence.writeBigUInt64BE(keys.sequence);
  for (let i = 0; i < 8; i++) nonce[4 + i]! ^= sequence[i]!;
  // GCM and ChaCha20-Poly1305 share the AEAD calls used here.
  const decipher = createDecipheriv(keys.cipher as 'aes-128-gcm', keys.key, nonce, { authTagLength: 16 }) as DecipherGCM;
  decipher.setAAD(header);
  decipher.setAuthTag(body.subarray(body.length - 16));
  const inner = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  let end = inner.length;
  while (end > 0 && inner[end - 1] === 0) end--; // padding
  if (end === 0) throw new Error('empty TLS inner plaintext');
  return { type: inner[end - 1]!, content: inner.subarray(0, end - 1) };
}

function readCertificateList(body: Buffer, tls13: boolean): X509Certificate[] {
  let offset = tls13 ? 1 + body[0]! : 0; // TLS 1.3: certificate_request_context
  const end = offset + 3 + body.readUIntBE(offset, 3);
  offset += 3;
  const certificates: X509Certificate[] = [];
  while (offset < end) {
    const length = body.readUIntBE(offset, 3);
    offset += 3;
    certificates.push(new X509Certificate(body.subarray(offset, offset + length)));
    offset += length;
    if (tls13) offset += 2 + body.readUInt16BE(offset); // per-certificate extensions
  }
  return certificates;
}
