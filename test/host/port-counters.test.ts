import { describe, expect, it } from 'vitest';
import { parseVmPortCounters, portCountersArgs, readVmPortCounters } from '../../src/host/port-counters.js';
import { ProgramOutputError } from '../../src/errors/program-output-error.js';
import type { ProgramRunner } from '../../src/exec/run.js';

const stats = (rx: number, tx: number) => [
  'map',
  [
    ['collisions', 0],
    ['rx_bytes', rx * 98],
    ['rx_dropped', 1],
    ['rx_errors', 0],
    ['rx_packets', rx],
    ['tx_bytes', tx * 98],
    ['tx_dropped', 0],
    ['tx_errors', 2],
    ['tx_packets', tx],
  ],
];

// What ovs-vsctl 3.1 prints for `--format=json --columns=name,external_ids,statistics list Interface`.
const LISTING = JSON.stringify({
  headings: ['name', 'external_ids', 'statistics'],
  data: [
    ['bond0', ['map', []], stats(5, 5)],
    [
      'vnet7',
      [
        'map',
        [
          ['attached-mac', '52:54:00:AB:00:01'],
          ['iface-id', '6a1c0d2e-0000-4000-8000-000000000001'],
          ['iface-status', 'active'],
          ['vm-id', '0b1d2c3e-0000-4000-8000-0000000000e1'],
        ],
      ],
      stats(50, 48),
    ],
    ['vnet2', ['map', [['attached-mac', '52:54:00:ab:00:02']]], ['map', []]],
  ],
});

describe("a host's VM port counters", () => {
  it('reads every interface in one ovs-vsctl call', () => {
    expect(portCountersArgs(10_000)).toEqual([
      '--timeout=10',
      '--format=json',
      '--columns=name,external_ids,statistics',
      'list',
      'Interface',
    ]);
  });

  it("gives each VM port (libvirt's attached-mac) its VM and counters each way, and leaves other ports out", () => {
    expect(parseVmPortCounters(LISTING)).toEqual([
      {
        port: 'vnet2',
        mac: '52:54:00:ab:00:02',
        rx: { packets: 0, bytes: 0, dropped: 0, errors: 0 },
        tx: { packets: 0, bytes: 0, dropped: 0, errors: 0 },
      },
      {
        port: 'vnet7',
        mac: '52:54:00:ab:00:01',
        vmUuid: '0b1d2c3e-0000-4000-8000-0000000000e1',
        ifaceId: '6a1c0d2e-0000-4000-8000-000000000001',
        rx: { packets: 50, bytes: 4900, dropped: 1, errors: 0 },
        tx: { packets: 48, bytes: 4704, dropped: 0, errors: 2 },
      },
    ]);
  });

  it('refuses what is not ovs-vsctl JSON', () => {
    expect(() =>
      parseVmPortCounters('ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed'),
    ).toThrow(ProgramOutputError);
  });

  it('runs ovs-vsctl once', async () => {
    const calls: string[][] = [];
    const run: ProgramRunner = async (program, args) => {
      calls.push([program, ...args]);
      return { command: [program, ...args], exitCode: 0, signal: undefined, stdout: LISTING, stderr: '' };
    };
    expect(await readVmPortCounters(run)).toHaveLength(2);
    expect(calls).toHaveLength(1);
  });
});
