import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors/api-error.js';
import type { Principal, Role, TokenTable } from '../store/tokens.js';

const verified = new WeakMap<FastifyRequest, Principal | null>();

/**
 * The principal behind a request's `Authorization: Bearer <token>`, checked
 * against the store (constant-time hash comparison) once per request, or
 * `undefined` without a valid token.
 */
export function principalOf(request: FastifyRequest, tokens: TokenTable): Principal | undefined {
  const known = verified.get(request);
  if (known !== undefined) return known ?? undefined;
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_.~+/=-]{1,512})$/.exec(header) : null;
  const principal = match?.[1] === undefined ? undefined : tokens.verify(match[1]);
  verified.set(request, principal ?? null);
  return principal;
}

/**
 * The principal behind a request, required to have one of `roles`.
 *
 * @throws {ApiError} 401 `E_UNAUTHENTICATED` without a valid token; 403 `E_FORBIDDEN` with another role's.
 */
export function authenticate(request: FastifyRequest, tokens: TokenTable, ...roles: Role[]): Principal {
  const principal = principalOf(request, tokens);
  if (!principal) {
    throw new ApiError(401, 'E_UNAUTHENTICATED', 'Missing or invalid token: expected Authorization: Bearer <token>');
  }
  if (!roles.includes(principal.role)) {
    throw new ApiError(
      403,
      'E_FORBIDDEN',
      `Token of ${principal.role} ${principal.name} cannot call this: expected a ${roles.join(' or ')} token`,
    );
  }
  return principal;
}
