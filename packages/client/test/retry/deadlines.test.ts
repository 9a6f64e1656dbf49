// The overall timeouts of a client's requests on one timer: each request expires timeoutMs after it
// was added, not before and not much after, unless removed; the timer is gone once no request is
// timed (a process with nothing in flight is not held open for timeoutMs).

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, type Timed } from '../../src/retry/deadlines.js';

function request(name: string, expired: string[], onExpire?: () => void): Timed {
  return {
    deadline: 0,
    prev: undefined,
    next: undefined,
    expire() {
      expired.push(name);
      onExpire?.();
    },
  };
}

describe('Deadlines', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires each request timeoutMs after it was added, in that order, on one timer', () => {
    const expired: string[] = [];
    const deadlines = new Deadlines(100, Date.now);
    const a = request('a', expired);
    const b = request('b', expired);
    const c = request('c', expired);
    deadlines.add(a);
    vi.advanceTimersByTime(30);
    deadlines.add(b);
    vi.advanceTimersByTime(30);
    deadlines.add(c);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(39);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1); // t = 100
    expect(expired).toEqual(['a']);
    vi.advanceTimersByTime(29);
    expect(expired).toEqual(['a']);
    vi.advanceTimersByTime(1); // t = 130
    expect(expired).toEqual(['a', 'b']);
    vi.advanceTimersByTime(30); // t = 160
    expect(expired).toEqual(['a', 'b', 'c']);
    expect(deadlines.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never expires a removed request, whether it was the first, in the middle or the last', () => {
    const expired: string[] = [];
    const deadlines = new Deadlines(100, Date.now);
    const all = ['a', 'b', 'c', 'd', 'e'].map((name) => request(name, expired));
    for (const r of all) {
      deadlines.add(r);
      vi.advanceTimersByTime(10);
    }
    deadlines.remove(all[0] as Timed);
    deadlines.remove(all[2] as Timed);
    deadlines.remove(all[4] as Timed);
    deadlines.remove(all[2] as Timed); // twice: harmless
    expect(deadlines.size).toBe(2);
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual(['b', 'd']);
  });

  it('clears its timer when the last request is removed, and starts one for the next', () => {
    const expired: string[] = [];
    const deadlines = new Deadlines(30_000, Date.now);
    const a = request('a', expired);
    deadlines.add(a);
    expect(vi.getTimerCount()).toBe(1);
    deadlines.remove(a);
    expect(vi.getTimerCount()).toBe(0);
    const b = request('b', expired);
    deadlines.add(b);
    vi.advanceTimersByTime(29_999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['b']);
  });

  it('keeps time for the requests left when one that expires starts another', () => {
    const expired: string[] = [];
    const deadlines = new Deadlines(100, Date.now);
    const late = request('late', expired);
    const first = request('first', expired, () => deadlines.add(late));
    const second = request('second', expired);
    deadlines.add(first);
    vi.advanceTimersByTime(50);
    deadlines.add(second);
    vi.advanceTimersByTime(50); // t = 100: first expires, its caller starts late (due at 200)
    expect(expired).toEqual(['first']);
    vi.advanceTimersByTime(50); // t = 150
    expect(expired).toEqual(['first', 'second']);
    vi.advanceTimersByTime(49);
    expect(expired).toEqual(['first', 'second']);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['first', 'second', 'late']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
