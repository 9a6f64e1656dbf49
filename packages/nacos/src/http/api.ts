// The Nacos HTTP OpenAPI through undici: what the npm client lacks (updating enabled/weight/metadata,
// reading one instance, deregistering with its group), the access token (login, refresh before it
// expires, once more on 403; the gRPC transport logs in here too), and the transport handed to the npm
// client itself, so that its calls carry the token and report the configured `clientIP` instead of the
// host's LAN address.

import { Agent, request } from 'undici';
import { NacosAuthError, NacosRequestError, NacosUnavailableError } from '../errors.js';
import type { ResolvedNacosOptions } from '../options.js';

export type Params = Record<string, string>;

export interface Answer {
  readonly status: number;
  readonly text: string;
}

/** The shape of the `httpclient` option of the `nacos` npm client (urllib's `request`). */
export interface LegacyHttpClient {
  request(
    url: string,
    options: {
      method?: string;
      headers?: Record<string, string>;
      data?: Record<string, unknown>;
      dataAsQueryString?: boolean;
    },
  ): Promise<{ status: number; data: string }>;
}

const LOGIN_V1 = '/nacos/v1/auth/login';
const LOGIN_V3 = '/nacos/v3/auth/user/login';
/** Answers that say "no such login here" rather than "wrong credentials". */
const LOGIN_MISSING = new Set([404, 405, 410, 501]);

interface Token {
  readonly value: string;
  readonly refreshAt: number;
}

export class NacosHttp {
  readonly #o: ResolvedNacosOptions;
  readonly #agent: Agent;
  #token: Token | undefined;
  #login: Promise<Token> | undefined;
  #next = 0;
  /** The login path that answered last: v1 first, as Nacos 2.x and rnacos serve it. */
  #loginPath = LOGIN_V1;

  constructor(options: ResolvedNacosOptions) {
    this.#o = options;
    // Nacos (Tomcat) keeps idle connections 60 s; rnacos (actix) 5 s: stay below both
    this.#agent = new Agent({ keepAliveTimeout: 4000, connect: { timeout: options.requestTimeoutMs } });
  }

  /** Calls the OpenAPI on the first server that answers. Parameters travel in the query string, as the npm client sends them. */
  async call(method: string, path: string, params: Params, accept404 = false, accept500 = false): Promise<Answer> {
    const servers = this.#o.servers;
    let lastError: unknown;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[(this.#next + i) % servers.length] as string;
      let answer: Answer;
      try {
        answer = await this.#send(server, method, path, params);
        if (answer.status === 403 && this.#o.username !== undefined) {
          // the token may have expired early (server restart): log in again once
          this.#token = undefined;
          answer = await this.#send(server, method, path, params);
        }
      } catch (error) {
        if (error instanceof NacosAuthError) throw error;
        lastError = error;
        continue;
      }
      this.#next = (this.#next + i) % servers.length;
      if (answer.status >= 200 && answer.status < 300) return answer;
      if ((answer.status === 404 && accept404) || (answer.status === 500 && accept500)) return answer;
      throw new NacosRequestError(method, path, answer.status, answer.text);
    }
    throw new NacosUnavailableError(servers, lastError);
  }

  /** Logs in now when credentials are set, so that refused credentials surface as NacosAuthError. */
  async ensureLogin(): Promise<void> {
    await this.accessToken();
  }

  /**
   * The access token (undefined without credentials), from the first server that answers the login.
   * Rejects with NacosAuthError when the credentials are refused, NacosUnavailableError when no server answers.
   */
  async accessToken(): Promise<string | undefined> {
    if (this.#o.username === undefined) return undefined;
    const servers = this.#o.servers;
    let lastError: unknown;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[(this.#next + i) % servers.length] as string;
      try {
        return await this.#accessToken(server);
      } catch (error) {
        if (error instanceof NacosAuthError) throw error;
        lastError = error;
      }
    }
    throw new NacosUnavailableError(servers, lastError);
  }

  /** Forgets the token: the server refused it (expired early, or the server restarted with new keys). */
  dropToken(): void {
    this.#token = undefined;
  }

  async json<T>(method: string, path: string, params: Params): Promise<T> {
    const { text } = await this.call(method, path, params);
    return JSON.parse(text) as T;
  }

  /** The transport for the npm client: token added, credentials never sent, clientIP rewritten. */
  readonly legacyClient: LegacyHttpClient = {
    request: async (url, options) => {
      const target = new URL(url);
      const params: Params = {};
      for (const [k, v] of Object.entries(options.data ?? {})) {
        if (v !== undefined && v !== null) params[k] = String(v);
      }
      // the client sends username/password on every call; the token replaces them
      delete params.username;
      delete params.password;
      if ('clientIP' in params && this.#o.clientIp !== undefined) params.clientIP = this.#o.clientIp;
      const answer = await this.#send(target.host, options.method ?? 'GET', target.pathname, params, target.protocol);
      return { status: answer.status, data: answer.text };
    },
  };

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #send(server: string, method: string, path: string, params: Params, protocol?: string): Promise<Answer> {
    const query = new URLSearchParams({ namespaceId: this.#o.namespace, ...params });
    if (this.#o.username !== undefined) query.set('accessToken', await this.#accessToken(server));
    const base = protocol ?? (this.#o.tls ? 'https:' : 'http:');
    const res = await request(`${base}//${server}${path}?${query}`, {
      method: method as 'GET',
      dispatcher: this.#agent,
      headersTimeout: this.#o.requestTimeoutMs,
      bodyTimeout: this.#o.requestTimeoutMs,
      signal: AbortSignal.timeout(this.#o.requestTimeoutMs),
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async #accessToken(server: string): Promise<string> {
    const current = this.#token;
    if (current !== undefined && Date.now() < current.refreshAt) return current.value;
    this.#login ??= this.#logIn(server).finally(() => {
      this.#login = undefined;
    });
    this.#token = await this.#login;
    return this.#token.value;
  }

  async #logIn(server: string): Promise<Token> {
    let answer = await this.#postLogin(server, this.#loginPath);
    // Nacos 3.2 and later serve only the v3 login (3.0 and 3.1 both); 2.x and rnacos the v1 one
    if (LOGIN_MISSING.has(answer.status)) {
      const other = this.#loginPath === LOGIN_V1 ? LOGIN_V3 : LOGIN_V1;
      const second = await this.#postLogin(server, other);
      if (!LOGIN_MISSING.has(second.status)) {
        this.#loginPath = other;
        answer = second;
      }
    }
    const { status, text } = answer;
    if (status !== 200) throw new NacosAuthError(server, status, text.slice(0, 200));
    let body: { accessToken?: unknown; tokenTtl?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new NacosAuthError(server, status, 'login answered no JSON');
    }
    if (typeof body.accessToken !== 'string') throw new NacosAuthError(server, status, 'login answered no accessToken');
    const ttlMs = (typeof body.tokenTtl === 'number' ? body.tokenTtl : 18_000) * 1000;
    // refresh well before the server's expiry, whatever clock drift
    return { value: body.accessToken, refreshAt: Date.now() + ttlMs * 0.8 };
  }

  async #postLogin(server: string, path: string): Promise<Answer> {
    const base = this.#o.tls ? 'https:' : 'http:';
    const res = await request(`${base}//${server}${path}`, {
      method: 'POST',
      dispatcher: this.#agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: this.#o.username ?? '', password: this.#o.password ?? '' }).toString(),
      headersTimeout: this.#o.requestTimeoutMs,
      bodyTimeout: this.#o.requestTimeoutMs,
      signal: AbortSignal.timeout(this.#o.requestTimeoutMs),
    });
    return { status: res.statusCode, text: await res.body.text() };
  }
}
