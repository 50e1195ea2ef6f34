/** HTTPS requests to cc-ci's faces through the one dialer: the front door of `request.ts`. */
export type { Endpoint, HttpsResponse, HttpsTransport, RequestOptions } from './request.ts';
export { dialDomainAt, httpsRequest, isRetryableStatus, jsonBody } from './request.ts';
