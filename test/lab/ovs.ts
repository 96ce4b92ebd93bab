import { execa } from 'execa';

/**
 * An Open vSwitch bridge a test created, on the userspace (netdev) datapath:
 * the only one this lab's kernel supports (LAB.md). Remove it with
 * {@link OvsBridge.remove} in `afterAll`, so it also goes when a test fails.
 *
 * @example
 * const bridge = await OvsBridge.create(`${prefix}br`);
 * await bridge.addAccessPort(`${prefix}v1`, 1081);
 * await bridge.remove();
 */
export class OvsBridge {
  private constructor(readonly name: string) {}

  /** `ovs-vsctl add-br NAME -- set bridge NAME datapath_type=netdev`. */
  static async create(name: string): Promise<OvsBridge> {
    await execa('ovs-vsctl', ['--timeout=10', 'add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev']);
    return new OvsBridge(name);
  }

  /** Attach an existing interface (in the root namespace) as an access port of `vlan`. */
  async addAccessPort(port: string, vlan: number): Promise<void> {
    await execa('ovs-vsctl', ['--timeout=10', 'add-port', this.name, port, `tag=${vlan}`]);
  }

  /** Forget every learned MAC (after a test moved a MAC between ports). */
  async flushFdb(): Promise<void> {
    await execa('ovs-appctl', ['fdb/flush', this.name], { reject: false });
  }

  /** Delete the bridge and its ports (the interfaces themselves stay). Never throws. */
  async remove(): Promise<void> {
    await execa('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-br', this.name], { reject: false });
  }
}
