/**
 * cc-ci's apex: the dashboard (runs at /runs/<n>/, badges at /badge/<recipe>.svg) and the
 * bridge's webhook at /hook, signed as Gitea signs: X-Gitea-Signature = hex HMAC-SHA256(body).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { httpsRequest, type HttpsResponse, type HttpsTransport } from '../https/index.ts';

export function signBody(body: string, key: string): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

export class Apex {
  constructor(
    readonly baseUrl: string,
    private readonly transport: HttpsTransport,
  ) {}

  get(path: string): Promise<HttpsResponse> {
    return httpsRequest(this.transport, `${this.baseUrl.replace(/\/$/, '')}${path}`);
  }

  /** POST /hook with the body as given, as Gitea delivers it; `signature` undefined sends none. */
  hook(body: string, signature: string | undefined, event: string, delivery: string = randomUUID()): Promise<HttpsResponse> {
    return httpsRequest(this.transport, `${this.baseUrl.replace(/\/$/, '')}/hook`, {
      method: 'POST',
      body,
      headers: {
        'Content-Type': 'application/json',
        'X-Gitea-Event': event,
        'X-Gitea-Delivery': delivery,
        ...(signature === undefined ? {} : { 'X-Gitea-Signature': signature }),
      },
    });
  }
}

/**
 * Why `text` is not a well-formed SVG document, or undefined if it is: one root <svg> in the SVG
 * namespace, every element closed in order, nothing after the root. (No XML parser is installed;
 * this is the subset badges use: no DTD, no CDATA.)
 */
export function svgProblem(text: string): string | undefined {
  const body = text.replace(/^\uFEFF?\s*(<\?xml[^>]*\?>\s*)?/, '').replace(/<!--[\s\S]*?-->/g, '');
  if (!/^<svg[\s>]/.test(body)) return 'the document does not start with an <svg> element';
  if (!/^<svg[^>]*\sxmlns="http:\/\/www\.w3\.org\/2000\/svg"/.test(body)) return 'the <svg> root does not declare the SVG namespace';
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  let at = 0;
  for (let match = tag.exec(body); match; match = tag.exec(body)) {
    const between = body.slice(at, match.index);
    if (between.includes('<')) return `malformed markup near ${JSON.stringify(between.slice(between.indexOf('<'), between.indexOf('<') + 30))}`;
    if (stack.length === 0 && at > 0) return 'content after the root element';
    const [, closing, name, , selfClosing] = match;
    if (closing) {
      const open = stack.pop();
      if (open !== name) return `</${name}> closes <${open ?? 'nothing'}>`;
    } else if (!selfClosing) {
      stack.push(name!);
    }
    at = tag.lastIndex;
  }
  if (stack.length) return `<${stack.at(-1)}> is never closed`;
  if (body.slice(at).trim() !== '') return 'content after the root element';
  return undefined;
}
