import { ApiError } from '../../errors/api-error.js';
import type { AllowListLimits } from '../../site/model.js';
import { dedupe, entryElements } from '../nft/elements.js';
import type { AllowEntry } from '../../protocol/api.js';

/**
 * Refuse an allow-list larger than the site allows, before anything changes:
 * more than `entries` entries, an entry that expands to more than
 * `elementsPerEntry` set elements (a wide CIDR times a port range), or more
 * than `elementsPerList` elements in all (per NIC).
 *
 * @throws {ApiError} 422 `E_ALLOW_LIST_TOO_LARGE` naming the limit, what was expected and what was found.
 */
export function checkAllowListLimits(entries: readonly AllowEntry[], limits: AllowListLimits): void {
  const refuse = (path: string, message: string) =>
    new ApiError(422, 'E_ALLOW_LIST_TOO_LARGE', `Allow-list too large: ${path}: ${message}`, [{ path, message }]);
  if (entries.length > limits.entries) {
    throw refuse(
      'body.entries',
      `expected at most ${limits.entries} entries (backend.allowLists.entries), found ${entries.length}`,
    );
  }
  // Any id will do: the count of elements does not depend on it.
  const perEntry = entries.map((entry) => entryElements(1, entry));
  perEntry.forEach((elements, index) => {
    if (elements.length > limits.elementsPerEntry) {
      throw refuse(
        `body.entries.${index}`,
        `expected an entry of at most ${limits.elementsPerEntry} set elements (backend.allowLists.elementsPerEntry), found ${elements.length}: narrow the address block or the port range`,
      );
    }
  });
  const total = dedupe(perEntry.flat()).length;
  if (total > limits.elementsPerList) {
    throw refuse(
      'body.entries',
      `expected at most ${limits.elementsPerList} set elements in all (backend.allowLists.elementsPerList), found ${total}`,
    );
  }
}
