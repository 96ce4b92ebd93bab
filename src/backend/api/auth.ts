import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors/api-error.js';
import type { Principal, TokenTable } from '../store/tokens.js';

/**
 * The principal behind a request's `Authorization: Bearer <token>`, checked
 * against the store (constant-time hash comparison), and required to have
 * `role`.
 *
 * @throws {ApiError} 401 `E_UNAUTHENTICATED` without a valid token; 403 `E_FORBIDDEN` with another role's.
 */
export function authenticate(request: FastifyRequest, tokens: TokenTable, role: Principal['role']): Principal {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_.~+/=-]{1,512})$/.exec(header) : null;
  const principal = match?.[1] === undefined ? undefined : tokens.verify(match[1]);
  if (!principal) {
    throw new ApiError(401, 'E_UNAUTHENTICATED', 'Missing or invalid token: expected Authorization: Bearer <token>');
  }
  if (principal.role !== role) {
    throw new ApiError(
      403,
      'E_FORBIDDEN',
      `Token of ${principal.role} ${principal.name} cannot call this: expected a ${role} token`,
    );
  }
  return principal;
}
