// Which Nacos-compatible server the tests use: NACOS_ADDR, else Docker, else rnacos (built when missing).

import { describe, expect, it } from 'vitest';
// @ts-expect-error -- plain ESM helper shared with the install step
import { chooseNacosSource, dockerAvailable } from './source.mjs';

const none = { nacosAddr: undefined, dockerAvailable: false, rnacos: undefined, cargoAvailable: false };

describe('chooseNacosSource', () => {
  it('prefers NACOS_ADDR over everything', () => {
    expect(chooseNacosSource({ ...none, nacosAddr: ' 10.0.0.5:8848 ', dockerAvailable: true, rnacos: '/x' })).toEqual({
      kind: 'env',
      addr: '10.0.0.5:8848',
    });
  });

  it('uses Docker (the official image) when an engine answers and NACOS_ADDR is unset', () => {
    expect(chooseNacosSource({ ...none, nacosAddr: '', dockerAvailable: true, rnacos: '/x' })).toEqual({
      kind: 'docker',
    });
  });

  it('uses a built rnacos without Docker', () => {
    expect(chooseNacosSource({ ...none, rnacos: '/tools/rnacos/bin/rnacos', cargoAvailable: true })).toEqual({
      kind: 'rnacos',
      path: '/tools/rnacos/bin/rnacos',
    });
  });

  it('asks to build rnacos when cargo is there but rnacos is not', () => {
    expect(chooseNacosSource({ ...none, cargoAvailable: true })).toEqual({ kind: 'build-rnacos' });
  });

  it('says clearly what is missing when nothing can provide a server', () => {
    const choice = chooseNacosSource(none);
    expect(choice.kind).toBe('none');
    expect(choice.message).toMatch(/NACOS_ADDR.*Docker.*cargo/s);
  });

  it('finds no Docker engine behind a socket that does not exist', async () => {
    expect(await dockerAvailable({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' })).toBe(false);
  });
});
