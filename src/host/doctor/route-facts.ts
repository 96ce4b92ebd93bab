/** A route of the machine, from `ip -j route`. */
export interface RouteFact {
  /** `default` or a CIDR (a bare address is a /32). */
  readonly dst: string;
  readonly dev?: string;
}

/** Routes from `ip -j route show`. */
export function parseRoutes(text: string): RouteFact[] {
  let list: { dst?: string; dev?: string }[];
  try {
    list = JSON.parse(text || '[]') as { dst?: string; dev?: string }[];
  } catch {
    return [];
  }
  return list
    .filter((r) => typeof r.dst === 'string')
    .map((r) => ({
      dst: r.dst === 'default' || (r.dst as string).includes('/') ? (r.dst as string) : `${r.dst as string}/32`,
      ...(r.dev === undefined ? {} : { dev: r.dev }),
    }));
}
