// Retries, as a grpc-js client interceptor: a call is tried again (up to retry.attempts, with a
// jittered exponential backoff, within its deadline) only when it failed with UNAVAILABLE before any
// of it was sent:
//   - no instance could be picked (the `lossless` policy marks that status with UNSENT_KEY);
//   - its stream was refused (REFUSED_STREAM, or above a GOAWAY's last stream id): the server did not
//     process it. grpc-js replays such a stream once by itself (its transparent retry); this covers a
//     second refusal.
// Why an interceptor rather than a retryPolicy in the service config: grpc-js' retries (gRFC A6)
// replay any UNAVAILABLE until response headers arrive, including a call whose connection dropped
// after the server got it, which is not safe for a method that is not idempotent; they cannot be told
// apart there. Nothing else is retried: a status the server sent, a connection lost under a call,
// a deadline.

import {
  type InterceptingCall,
  type InterceptingListener,
  type Interceptor,
  type InterceptorOptions,
  type Metadata,
  type NextCall,
  type StatusObject,
  status,
} from '@grpc/grpc-js';
import { UNSENT_KEY } from './balancer.js';

export interface RetryPolicy {
  readonly attempts: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly random: () => number;
}

/** Messages kept for a replay at most: a longer client stream is not retried. */
const MAX_KEPT = 100;
/** grpc-js' details for a stream the server refused. */
const REFUSED = 'Stream refused by server';

/** True for a status that no byte of its call caused. */
export function unsent(s: StatusObject): boolean {
  return s.code === status.UNAVAILABLE && (s.metadata?.get(UNSENT_KEY).length > 0 || s.details === REFUSED);
}

export function retryInterceptor(policy: RetryPolicy): Interceptor {
  // grpc-js takes any object with InterceptingCall's methods (its InterceptingCallInterface, not exported)
  return (options, nextCall) => new RetryingCall(options, nextCall, policy) as unknown as InterceptingCall;
}

/** What grpc-js calls on an intercepting call. */
type InterceptingCallInterface = Pick<
  InterceptingCall,
  | 'start'
  | 'sendMessageWithContext'
  | 'sendMessage'
  | 'startRead'
  | 'halfClose'
  | 'cancelWithStatus'
  | 'getPeer'
  | 'getAuthContext'
>;
type MessageContext = Parameters<InterceptingCall['sendMessageWithContext']>[0];

class RetryingCall implements InterceptingCallInterface {
  readonly #options: InterceptorOptions;
  readonly #next: NextCall;
  readonly #policy: RetryPolicy;
  #call: InterceptingCallInterface;
  #metadata: Metadata | undefined;
  #listener: Partial<InterceptingListener> = {};
  /** What was sent so far, to send again: kept until the call commits (the first answer). */
  readonly #sent: unknown[] = [];
  #halfClosed = false;
  #reading = false;
  #committed = false;
  #attempt = 1;
  #timer: NodeJS.Timeout | undefined;
  #cancelled = false;

  constructor(options: InterceptorOptions, next: NextCall, policy: RetryPolicy) {
    this.#options = options;
    this.#next = next;
    this.#policy = policy;
    this.#call = next(options);
  }

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    this.#metadata = metadata.clone();
    this.#listener = listener ?? {};
    this.#startAttempt(this.#call, metadata);
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (!this.#committed) {
      if (this.#sent.length < MAX_KEPT) this.#sent.push(message);
      else this.#commit();
    }
    this.#call.sendMessageWithContext(context, message);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  startRead(): void {
    this.#reading = true;
    this.#call.startRead();
  }

  halfClose(): void {
    this.#halfClosed = true;
    this.#call.halfClose();
  }

  cancelWithStatus(code: status, details: string): void {
    this.#cancelled = true;
    clearTimeout(this.#timer);
    this.#call.cancelWithStatus(code, details);
  }

  getPeer(): string {
    return this.#call.getPeer();
  }

  getAuthContext(): ReturnType<InterceptingCallInterface['getAuthContext']> {
    return this.#call.getAuthContext();
  }

  #startAttempt(call: InterceptingCallInterface, metadata: Metadata): void {
    let nothing = false;
    call.start(metadata, {
      onReceiveMetadata: (received: Metadata) => {
        this.#commit();
        this.#listener.onReceiveMetadata?.(received);
      },
      onReceiveMessage: (message: unknown) => {
        // grpc-js hands a unary call that got no message a null one just before its status: held
        // back until the status says whether the call is tried again
        if (message === null && !this.#committed) {
          nothing = true;
          return;
        }
        this.#commit();
        this.#listener.onReceiveMessage?.(message);
      },
      onReceiveStatus: (received: StatusObject) => {
        if (!this.#committed && !this.#cancelled && unsent(received) && this.#retry()) return;
        if (nothing) this.#listener.onReceiveMessage?.(null);
        this.#listener.onReceiveStatus?.(received);
      },
    });
  }

  #commit(): void {
    this.#committed = true;
    this.#sent.length = 0;
  }

  /** Schedules the next attempt; false when none is left (attempts, deadline). */
  #retry(): boolean {
    const { attempts, minDelayMs, maxDelayMs, random } = this.#policy;
    if (this.#attempt >= attempts) return false;
    const base = Math.min(maxDelayMs, minDelayMs * 2 ** (this.#attempt - 1));
    const delay = Math.round(base * (0.5 + random() / 2));
    const deadline = this.#options.deadline;
    const until = deadline instanceof Date ? deadline.getTime() : (deadline ?? Number.POSITIVE_INFINITY);
    if (Date.now() + delay >= until) return false;
    this.#attempt++;
    this.#timer = setTimeout(() => {
      if (this.#cancelled) return;
      const call = this.#next(this.#options);
      this.#call = call;
      this.#startAttempt(call, (this.#metadata as Metadata).clone());
      for (const message of this.#sent) call.sendMessageWithContext({}, message);
      if (this.#halfClosed) call.halfClose();
      if (this.#reading) call.startRead();
    }, delay);
    return true;
  }
}
