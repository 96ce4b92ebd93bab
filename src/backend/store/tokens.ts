import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';

/** Who an API token speaks for. */
export interface Principal {
  /** A host id (role `host`), an admin name (role `admin`) or a metrics scraper's name (role `metrics`). */
  readonly name: string;
  readonly role: Role;
}

/** What a token may do: `host` register its NICs, `admin` allow-lists and placements, `metrics` read /metrics. */
export type Role = 'host' | 'admin' | 'metrics';

const hash = (secret: string) => createHash('sha256').update(secret).digest();

/**
 * API tokens. A token is `<principal>.<secret>` with 32 random bytes of
 * secret; only its SHA-256 is stored, and it is compared in constant time.
 * Issuing a token for an existing principal replaces (revokes) the old one.
 */
export class TokenTable {
  private readonly one;
  private readonly upsert;
  private readonly remove;
  private readonly all;

  constructor(db: Database.Database) {
    this.one = db.prepare<[string], { role: Role; hash: Buffer }>('SELECT role, hash FROM tokens WHERE principal = ?');
    this.upsert = db.prepare(
      `INSERT INTO tokens (principal, role, hash, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (principal) DO UPDATE SET role = excluded.role, hash = excluded.hash, created_at = excluded.created_at`,
    );
    this.remove = db.prepare('DELETE FROM tokens WHERE principal = ?');
    this.all = db.prepare<[], { principal: string; role: Role }>(
      'SELECT principal, role FROM tokens ORDER BY principal',
    );
  }

  /** The role of a principal's token, if it has one. */
  roleOf(name: string): Role | undefined {
    return this.one.get(name)?.role;
  }

  /** Issue a new token for a principal and return it; it is shown once and stored only hashed. */
  issue(principal: Principal): string {
    const token = `${principal.name}.${randomBytes(32).toString('base64url')}`;
    this.upsert.run(principal.name, principal.role, hash(token), Date.now());
    return token;
  }

  /** Who a presented token speaks for, or `undefined` for an unknown or wrong token. */
  verify(token: string): Principal | undefined {
    const dot = token.lastIndexOf('.');
    if (dot <= 0 || token.length > 512) return undefined;
    const name = token.slice(0, dot);
    const row = this.one.get(name);
    const presented = hash(token);
    // Compare even when the principal is unknown, so timing does not tell which names exist.
    const expected = row?.hash ?? Buffer.alloc(presented.length);
    const equal = timingSafeEqual(
      presented,
      expected.length === presented.length ? expected : Buffer.alloc(presented.length),
    );
    return row && equal ? { name, role: row.role } : undefined;
  }

  /** Revoke a principal's token; whether it had one. */
  revoke(name: string): boolean {
    return this.remove.run(name).changes > 0;
  }

  /** Every principal with a token. */
  list(): Principal[] {
    return this.all.all().map((row) => ({ name: row.principal, role: row.role }));
  }
}
