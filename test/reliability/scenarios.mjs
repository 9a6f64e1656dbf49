// The fault scenarios and bad-input cases lossless promises to survive, each with what a user should
// observe and the tests that show it. docs/reliability.md is generated from this list and from what
// those tests measured (`node test/reliability/report.mjs`); test/docs checks that every test named
// here exists.

/** @type {{ id: string, scenario: string, expected: string, tests: { file: string, name: string }[] }[]} */
export const SCENARIOS = [
  {
    id: '1',
    scenario: 'Registry unreachable at start-up (Nacos paused)',
    expected: 'Never ready; /readyz answers 503 and says why (coded); ready once the registry is back.',
    tests: [
      {
        file: 'test/nacos/provider.test.ts',
        name: 'with Nacos down at start-up: not ready, /readyz says why, ready once Nacos is back',
      },
    ],
  },
  {
    id: '2',
    scenario: 'Registry unreachable during the drain (Nacos paused after SIGTERM)',
    expected: 'The drain still completes with marker and quiet window; nothing lost; the failure logged with a code.',
    tests: [
      {
        file: 'test/nacos/provider.test.ts',
        name: 'with Nacos down during the drain: the drain completes, nothing lost, the failure logged with a code',
      },
    ],
  },
  {
    id: '2b',
    scenario: 'Registry restarted with all its data lost (rnacos on an empty data folder, same ports)',
    expected:
      'Over gRPC the provider hears the connection lost at once (watch: unreachable), registers again with its latest weight within 10 s of the server answering (watch: present).',
    tests: [
      {
        file: 'test/nacos/grpc.test.ts',
        name: 'registers again within 10 s of a restart on an empty data folder; watch says unreachable, then present',
      },
    ],
  },
  {
    id: '2c',
    scenario:
      'Registry loses its data under the express example started with nothing but --registry nacos://127.0.0.1:PORT (gRPC), and with ?transport=http',
    expected:
      '/readyz is never 200 for more than 2 s while Nacos answers without the instance; listed again within 10 s. Over HTTP the provider’s lookup turns /readyz 503 until it registers again, unless the next heartbeat registered it first.',
    tests: [
      {
        file: 'test/nacos/example-default.test.ts',
        name: 'registers over gRPC, heals after Nacos lost its data, ramps its weight to 1.0, and leaves within 3 s of a SIGKILL',
      },
      {
        file: 'test/nacos/example-default.test.ts',
        name: 'over ?transport=http: Nacos loses its data; /readyz is not 200 for more than 2 s while Nacos answers without it, and it is back within 10 s',
      },
    ],
  },
  {
    id: '2d',
    scenario:
      'A Nacos node SIGKILLed during a rolling restart (3-node rnacos raft cluster; providers and client on nacos://a,b,c over gRPC), then restarted',
    expected:
      'No request fails; every drain exits 0; the connections of the killed node move to a live node, where the registrations are made again and listed by every live node; the restarted node catches up.',
    tests: [
      {
        file: 'test/nacos/cluster-rollout.test.ts',
        name: 'loses no request while a provider is restarted, a Nacos node is SIGKILLed, another restarted, and the node brought back',
      },
    ],
  },
  {
    id: '3',
    scenario: 'Warm-up hook throws or hangs',
    expected:
      'Never registered; start() rejects with LOSSLESS_ERR_WARMUP_FAILED / LOSSLESS_ERR_WARMUP_TIMEOUT naming the hook; a later drain exits 1.',
    tests: [
      {
        file: 'packages/core/test/provider.test.ts',
        name: 'stays unregistered and not ready when a warm-up hook rejects, naming the hook',
      },
      {
        file: 'packages/core/test/provider.test.ts',
        name: 'fails with a timeout error when a warm-up hook hangs, and aborts its signal',
      },
      { file: 'packages/core/test/provider.test.ts', name: 'exits 1 when the drain ends a process whose start failed' },
    ],
  },
  {
    id: '4',
    scenario: 'SIGTERM during the warm-up (real process)',
    expected: 'Exits promptly with code 0; never appears in the registry.',
    tests: [
      {
        file: 'test/process/warmup-sigterm.test.ts',
        name: 'exits promptly, exit code 0, never listed in the registry',
      },
    ],
  },
  {
    id: '5',
    scenario: 'Second SIGTERM during a drain; SIGTERM after POST /prestop',
    expected:
      'A second SIGTERM ends the drain now: what is in flight is cut, logged with method and path, exit 1. A SIGTERM after POST /prestop joins that drain.',
    tests: [
      {
        file: 'test/process/express-example.test.ts',
        name: 'a second SIGTERM cuts the drain short and exits 1, naming the request it cut',
      },
      {
        file: 'packages/core/test/provider.test.ts',
        name: 'POST /prestop answers once the drain is over; a SIGTERM during it joins it',
      },
    ],
  },
  {
    id: '6',
    scenario: 'Maximum drain reached with a request still running',
    expected:
      'The request is cut (its connection reset), logged with method, path and age as LOSSLESS_ERR_DRAIN_TIMEOUT; exit code 1.',
    tests: [
      {
        file: 'packages/core/test/provider.test.ts',
        name: 'cuts what is still in flight at the maximum, names it, and exits 1',
      },
    ],
  },
  {
    id: '7',
    scenario: 'Provider killed with SIGKILL under load (three real processes)',
    expected:
      'The client retries refused connections on the survivors, opens the dead instance’s circuit, and loses no idempotent request.',
    tests: [
      {
        file: 'test/reliability/sigkill.test.ts',
        name: 'retries refused connections on the survivors, opens the circuit, and loses no GET',
      },
      {
        file: 'test/reliability/sigkill.test.ts',
        name: 'retries a POST without idempotency key whose connection was refused: nothing was sent',
      },
    ],
  },
  {
    id: '7b',
    scenario: 'Provider killed with SIGKILL while registered in Nacos over gRPC',
    expected:
      'Nacos drops its instance with its connection: gone from a subscriber’s pushed list within 3 s (over HTTP it would stay until its heartbeats are missed).',
    tests: [
      {
        file: 'test/nacos/grpc.test.ts',
        name: 'a SIGKILLed provider leaves with its connection: gone within 3 s',
      },
    ],
  },
  {
    id: '8',
    scenario: 'Registry flapping: instances vanish and return, empty answers, errors',
    expected: 'Clients keep serving from the last good list; no burst of errors; a real departure is still followed.',
    tests: [{ file: 'test/reliability/flapping.test.ts', name: '' }],
  },
  {
    id: '9',
    scenario: 'Storm of offline markers',
    expected: 'Registry reads stay bounded (one at a time, one per refreshIntervalMs); nothing fails.',
    tests: [
      {
        file: 'packages/client/test/discovery/marker.test.ts',
        name: 'a storm of 2,000 marked responses: registry reads stay bounded, nothing fails',
      },
    ],
  },
  {
    id: '10a',
    scenario: 'Slow consumer holding a keep-alive socket past the drain',
    expected: 'The idle socket does not hold the exit; a slow reader still gets its whole body.',
    tests: [{ file: 'test/reliability/keepalive.test.ts', name: '' }],
  },
  {
    id: '10b',
    scenario: 'Server-sent events stream during the drain',
    expected:
      'Declared with provider.stream(): ended cleanly with the application’s goodbye once the wait is over, exit 0. Undeclared (default): held until maxDrainMs, then cut, exit 1.',
    tests: [
      {
        file: 'test/process/streams.test.ts',
        name: 'ends the stream with a goodbye event once the slow request is done, then exits 0',
      },
      {
        file: 'packages/core/test/streams.test.ts',
        name: 'by default (not declared) a stream counts as in flight: the drain waits for drain.maxDrainMs, then cuts it',
      },
    ],
  },
  {
    id: '11',
    scenario: 'Three requests pipelined on one raw socket around SIGTERM (a POST queued behind a slow GET)',
    expected:
      'Every request that was read is answered (the POST’s 201 included); no answer but the last closes the connection; exit 0, nothing cut.',
    tests: [
      {
        file: 'test/process/pipelining.test.ts',
        name: 'answers all three read before the signal; no answer but the last may close the connection',
      },
      { file: 'test/process/pipelining.test.ts', name: 'answers all three when they arrive during the drain' },
    ],
  },
  {
    id: '12',
    scenario: 'Every instance of a service draining at once (scale to zero, a Recreate deployment)',
    expected:
      'The client keeps calling the draining instances as a last resort while no other is in rotation; no request fails locally with LOSSLESS_ERR_NO_INSTANCE while they serve.',
    tests: [
      {
        file: 'test/reliability/all-draining.test.ts',
        name: 'serves every request through the drains until the providers have left',
      },
      {
        file: 'packages/client/test/discovery/marker.test.ts',
        name: 'keeps calling the draining instances while no other is in rotation, and leaves them the moment one appears',
      },
    ],
  },
  {
    id: '13',
    scenario:
      'The registry loses a ready instance’s registration (file entry deleted or corrupted; a registry that lost its data)',
    expected:
      'Not ready within 2 s (/readyz 503 with the reason, LOSSLESS_ERR_REGISTRATION_LOST), registered again with backoff, ready once read back; a registry that cannot be reached leaves it ready and says so.',
    tests: [
      {
        file: 'test/process/heal.test.ts',
        name: 'entry deleted: not ready within 2 s, registered again, ready once read back',
      },
      {
        file: 'test/process/heal.test.ts',
        name: 'entry corrupted: not ready within 2 s, registered again, ready once read back',
      },
      {
        file: 'packages/core/test/lifecycle/registration.test.ts',
        name: 'makes /readyz answer 503 with the reason, registers again, and answers 200 once read back',
      },
      {
        file: 'packages/core/test/lifecycle/registration.test.ts',
        name: 'keeps serving while the registry cannot be reached, says so in /readyz, and registers nothing',
      },
    ],
  },
  {
    id: '14',
    scenario:
      'File registry shared across pid namespaces (hostNetwork pods or host-network containers sharing a volume)',
    expected:
      'A live provider’s entry is judged by its heartbeat age, never deleted because its pid means nothing here.',
    tests: [
      {
        file: 'packages/core/test/registry/file.test.ts',
        name: 'judges an entry from another pid namespace on this host by heartbeat age, not by its pid',
      },
    ],
  },
  {
    id: '15',
    scenario: 'A one-shot script: createClient(), one await client.fetch(), nothing else',
    expected: 'The request is sent and answered; the process exits 0 (it exited with code 13 before).',
    tests: [{ file: 'test/process/one-shot.test.ts', name: 'gets its answer and exits 0' }],
  },
  {
    id: 'B1',
    scenario:
      'Admin endpoints: unknown paths and methods, oversized bodies, missing or wrong token, non-loopback callers',
    expected: '404 / 405 / 413 / 401 with a coded JSON body; no drain started; tokens compared in constant time.',
    tests: [{ file: 'packages/core/test/admin/handler.test.ts', name: '' }],
  },
  {
    id: 'B2',
    scenario: 'Registry data with bad ip, port, weight or metadata; unparseable file-registry entries',
    expected: 'Skipped with a LOSSLESS_ERR_BAD_INSTANCE warning; never a crash.',
    tests: [
      {
        file: 'packages/core/test/registry/file.test.ts',
        name: 'skips invalid entries with a LOSSLESS_ERR_BAD_INSTANCE warning and still lists the good ones',
      },
      {
        file: 'packages/client/test/discovery/marker.test.ts',
        name: 'skips invalid instances with a logged LOSSLESS_ERR_BAD_INSTANCE warning, and never crashes',
      },
    ],
  },
  {
    id: 'B3',
    scenario: 'An offline marker affects only the instance that sent it',
    expected: 'Exactly the instances that sent a marker are ejected, whatever the marker’s value says.',
    tests: [{ file: 'packages/client/test/discovery/marker-scope.property.test.ts', name: '' }],
  },
  {
    id: 'B4',
    scenario: 'Any value in any option, any registry URL (property-based, fast-check)',
    expected:
      'Valid options are accepted as given; anything else throws a coded LOSSLESS_ERR_* error; no crash, no hang.',
    tests: [
      { file: 'packages/core/test/options.property.test.ts', name: '' },
      { file: 'packages/client/test/options.property.test.ts', name: '' },
      { file: 'packages/nacos/test/options.property.test.ts', name: '' },
    ],
  },
];
