/**
 * A second way to read Open vSwitch's database, for a measured reason: the
 * hook looks up its NICs' ports at every VM start and stop, and starting
 * `ovs-vsctl` from the hook's Node process cost each hook run about 15 ms
 * (bench/hook.ts: the spawn of a 40 MB process, then ovs-vsctl's own start,
 * beside the registration on 2 cores). This sends one read-only JSON-RPC
 * `transact` (three `select`s: Bridge, Port, Interface) to ovsdb-server's
 * unix socket (RFC 7047) and reads the same columns `ovs-vsctl list` reads;
 * a lab test checks both read the same. Everything else uses ovs-vsctl.
 * May not: write to the database, or grow beyond what the hook reads.
 */
import { connect } from 'node:net';
import { exchange } from '../exec/socket-exchange.js';
import { OvsdbReadError } from '../errors/ovsdb-read-error.js';
import { ProgramOutputError } from '../errors/program-output-error.js';
import { joinOvsState, OVS_COLUMNS, type OvsRow } from '../host/ovs-json.js';
import type { OvsSnapshot } from './ovs.js';

/** Largest answer read (a host with a thousand ports answers in about 1 MB). */
const MAX_ANSWER = 64 * 1024 * 1024;

/** ovsdb-server's socket, where OVS's own tools look for it (`OVS_RUNDIR`, default /var/run/openvswitch). */
export function ovsdbSocket(): string {
  return `${process.env.OVS_RUNDIR ?? '/var/run/openvswitch'}/db.sock`;
}

/**
 * Every bridge, port and interface, read in one transaction from ovsdb-server.
 *
 * @throws {OvsdbReadError} `E_OVSDB_READ` when the socket cannot be reached or does not answer within `timeoutMs`.
 * @throws {ProgramOutputError} `E_PROGRAM_OUTPUT` when the answer is not the three tables.
 */
export function readOvsdb(timeoutMs: number, path = ovsdbSocket()): Promise<OvsSnapshot> {
  const select = (table: keyof typeof OVS_COLUMNS) => ({
    op: 'select',
    table,
    where: [],
    columns: OVS_COLUMNS[table].split(','),
  });
  const request = {
    id: 0,
    method: 'transact',
    params: ['Open_vSwitch', select('Bridge'), select('Port'), select('Interface')],
  };
  const socket = connect({ path });
  socket.on('connect', () => socket.write(JSON.stringify(request)));
  return exchange(socket, {
    timeoutMs,
    maxBytes: MAX_ANSWER,
    eager: true,
    parse: (raw) => {
      let answer: { id?: unknown; result?: unknown; error?: unknown };
      try {
        answer = JSON.parse(raw.toString('utf8')) as typeof answer;
      } catch {
        return undefined; // Not all of it yet.
      }
      return snapshotOf(path, answer);
    },
    errors: {
      timeout: () => new OvsdbReadError(path, `ovsdb-server at ${path} gave no answer within ${timeoutMs} ms`),
      tooLarge: () => new OvsdbReadError(path, `ovsdb-server answered more than ${MAX_ANSWER} bytes`),
      closed: () => new OvsdbReadError(path, `ovsdb-server at ${path} closed the connection without an answer`),
      socket: (error) =>
        new OvsdbReadError(
          path,
          `cannot reach ovsdb-server at ${path}: ${(error as NodeJS.ErrnoException).code ?? error.message}`,
        ),
    },
  });
}

function snapshotOf(path: string, answer: { id?: unknown; result?: unknown; error?: unknown }): OvsSnapshot {
  const expected = "a transact answer with three tables' rows";
  if (answer.error !== null && answer.error !== undefined) {
    throw new OvsdbReadError(path, `ovsdb-server refused the read: ${JSON.stringify(answer.error)}`);
  }
  const tables = Array.isArray(answer.result) ? (answer.result as { rows?: unknown }[]) : [];
  const rows = tables.map((t) => (Array.isArray(t?.rows) ? (t.rows as OvsRow[]) : undefined));
  const [bridges, ports, interfaces] = rows;
  if (rows.length !== 3 || bridges === undefined || ports === undefined || interfaces === undefined) {
    throw new ProgramOutputError('ovsdb-server', expected, JSON.stringify(answer).slice(0, 200));
  }
  const state = joinOvsState(bridges, ports, interfaces);
  return { bridges: state.bridges, ports: state.ports };
}
