/**
 * Reading a request's parts with the wire format's zod schemas: what every
 * route does first. May not: know any route.
 */
import type { z } from 'zod';
import { ApiError } from '../../errors/api-error.js';
import { fromZodIssues } from '../../site/issues.js';

/**
 * Validate `value` with `schema`, or throw a 400 naming every bad field.
 *
 * @throws {ApiError} 400 `E_REQUEST_INVALID`.
 */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const issues = fromZodIssues(result.error.issues, [where]);
  throw new ApiError(
    400,
    'E_REQUEST_INVALID',
    `Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    issues,
  );
}
