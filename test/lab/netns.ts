import { execa } from 'execa';

/**
 * A network namespace a test created, removed again by {@link Netns.remove}
 * (call it in `afterAll`/`finally`, so it also runs when the test fails).
 */
export class Netns {
  private constructor(readonly name: string) {}

  /** Create the namespace `name` with its loopback up. */
  static async create(name: string): Promise<Netns> {
    await execa('ip', ['netns', 'add', name]);
    const netns = new Netns(name);
    await netns.run('ip', ['link', 'set', 'lo', 'up']);
    return netns;
  }

  /** Run a program inside the namespace; rejects on a non-zero exit. */
  run(program: string, args: readonly string[], options: { input?: string; timeout?: number } = {}) {
    return execa('ip', ['netns', 'exec', this.name, program, ...args], {
      ...(options.input === undefined ? {} : { input: options.input }),
      timeout: options.timeout ?? 30_000,
    });
  }

  /** Delete the namespace (and with it every interface inside). Never throws. */
  async remove(): Promise<void> {
    await execa('ip', ['netns', 'del', this.name], { reject: false });
  }
}
