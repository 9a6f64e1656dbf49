// What lossless wants Nacos to hold, and what the current connection told it, per service: the plan
// that brings one to the other. It runs after every register/deregister/update and, after a
// reconnect, for every service ("redo": a new connection holds nothing, so everything wanted is sent
// again, with the latest weight, enabled and metadata; a deregistered instance is no longer wanted, so
// a redo never brings it back).
//
// Nacos keeps one registration per service and connection: a second InstanceRequest for the service
// replaces the first, a BatchInstanceRequest holds several, and a deregistration drops them all. rnacos
// keys instances by ip:port, upserts each instance of a batch, deregisters only the one named, and
// reads enabled=true and weight=1.0 in a registration of an instance it holds as "unchanged". The plan
// works on both: it deregisters what is no longer wanted (and a disabled instance to enable it again),
// then registers everything still wanted in one request, and sends 1.0 as UPDATE_WEIGHT_ONE to an
// instance the connection registered with another weight.

import { UPDATE_WEIGHT_ONE } from '../instance.js';

/** One instance as lossless wants Nacos to hold it. */
export interface Wanted {
  /** `ip:port`: how both Nacos and rnacos tell instances of a service apart. */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  /** On Nacos' scale (1.0 = lossless 100). */
  readonly nacosWeight: number;
  readonly enabled: boolean;
  readonly metadata: Readonly<Record<string, string>>;
}

/** What the current connection last told Nacos about an instance (its wanted values then). */
export interface Told {
  readonly nacosWeight: number;
  readonly enabled: boolean;
  /** JSON of the metadata. */
  readonly metadata: string;
}

/** An instance in a request: what is sent for it. */
export interface Sent extends Wanted {
  /** The weight actually sent (UPDATE_WEIGHT_ONE instead of 1 for an update). */
  readonly sentWeight: number;
}

export type Step =
  | { readonly kind: 'deregister'; readonly instance: Sent }
  /** One instance: InstanceRequest registerInstance; several: BatchInstanceRequest batchRegisterInstance. */
  | { readonly kind: 'register'; readonly instances: readonly Sent[] };

export function keyOf(instance: { readonly ip: string; readonly port: number }): string {
  return `${instance.ip}:${instance.port}`;
}

export function toldOf(wanted: Wanted): Told {
  return { nacosWeight: wanted.nacosWeight, enabled: wanted.enabled, metadata: JSON.stringify(wanted.metadata) };
}

function same(wanted: Wanted, told: Told | undefined): boolean {
  return (
    told !== undefined &&
    told.nacosWeight === wanted.nacosWeight &&
    told.enabled === wanted.enabled &&
    told.metadata === JSON.stringify(wanted.metadata)
  );
}

/** The requests that make Nacos hold `wanted` (sorted by key) for a service where `told` is what the connection said. */
export function planService(wanted: readonly Wanted[], told: ReadonlyMap<string, Told>): Step[] {
  const steps: Step[] = [];
  const wantedKeys = new Set(wanted.map((w) => w.key));
  const plain = (w: Wanted): Sent => ({ ...w, sentWeight: w.nacosWeight });
  for (const [key, t] of told) {
    if (wantedKeys.has(key)) continue;
    const [ip, port] = splitKey(key);
    steps.push({
      kind: 'deregister',
      instance: {
        key,
        ip,
        port,
        nacosWeight: t.nacosWeight,
        sentWeight: t.nacosWeight,
        enabled: t.enabled,
        metadata: {},
      },
    });
  }
  // rnacos keeps a held instance disabled when it is registered again enabled: deregister it first
  // (it is out of every consumer's list while disabled, so nobody sees it leave)
  for (const w of wanted) {
    if (told.get(w.key)?.enabled === false && w.enabled) steps.push({ kind: 'deregister', instance: plain(w) });
  }
  const deregistered = steps.length > 0;
  const changed = deregistered || wanted.some((w) => !same(w, told.get(w.key)));
  if (wanted.length > 0 && changed) {
    const sorted = [...wanted].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    steps.push({
      kind: 'register',
      instances: sorted.map((w) => {
        // after a deregistration (Nacos drops the connection's whole registration) every instance is new
        const held = deregistered ? undefined : told.get(w.key);
        const update = held !== undefined && held.nacosWeight !== 1 && w.nacosWeight === 1;
        return { ...w, sentWeight: update ? UPDATE_WEIGHT_ONE : w.nacosWeight };
      }),
    });
  }
  return steps;
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
