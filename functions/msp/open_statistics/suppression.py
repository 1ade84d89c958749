"""Small-cell suppression of the open statistics: no count under 11 is shown, nor can be worked out exactly.

A count under the threshold is shown as "< 11" (primary suppression). A column that also publishes its total
lets a reader solve for what it withholds: the withheld cells add up to the total minus the cells shown. Each
withheld cell is then known to lie in an interval: [0, 10] for "< 11", from 11 up for "secret" (a cell
withheld to protect another, which a reader knows is not under 11). When that interval shrinks to one value
(a single cell withheld; all of them 0 or all 10; all the "secret" ones exactly 11 and the others 0), the
smallest cell still shown is withheld as "secret" too (secondary suppression), and so on; if nothing is left
to withhold, the total is. A total under the threshold is shown as "< 11", and then solves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

THRESHOLD = 11
SMALL: Literal["< 11"] = "< 11"
WITHHELD: Literal["secret"] = "secret"
Count = Annotated[int, Field(ge=THRESHOLD)] | Literal["< 11", "secret"]


def shown(count: int) -> Count:
    """A count alone, with no total to check it against."""
    return count if count >= THRESHOLD else SMALL


def _some_cell_is_exact(small: int, secret: int, withheld_sum: int) -> bool:
    """Whether the total pins a withheld cell down, `small` cells known in [0, 10] and `secret` ones in
    [11, ∞) adding up to `withheld_sum`.

    A cell's possible values run from the sum minus the most the others can hold to the sum minus the least
    they can: the interval is a single value exactly in the cases below.
    """
    if small + secret == 1:
        return True
    if secret:
        return withheld_sum == THRESHOLD * secret
    return withheld_sum in (0, (THRESHOLD - 1) * small)


def protect_column(cells: Mapping[str, int], total: int) -> tuple[dict[str, Count], Count]:
    """The cells and their total as they may be published; `total` is the sum of the cells."""
    if total != sum(cells.values()):
        raise ValueError("a column's total must be the sum of its cells")
    published: dict[str, Count] = {key: shown(count) for key, count in cells.items()}
    if total < THRESHOLD:
        return published, SMALL
    return published, _withhold_until_safe(cells, published, total)


def _withhold_until_safe(cells: Mapping[str, int], published: dict[str, Count], total: int) -> Count:
    """Withhold the smallest cells still shown until no withheld cell is pinned down by the total (changing
    `published` in place); the total as it may be shown."""
    small = sum(1 for value in published.values() if value == SMALL)
    secret = 0
    withheld_sum = sum(count for key, count in cells.items() if published[key] == SMALL)
    # The smallest cells shown first; ties by key, so that the same figures always withhold the same cells.
    still_shown = sorted((count, key) for key, count in cells.items() if published[key] != SMALL)
    while small and _some_cell_is_exact(small, secret, withheld_sum):
        if not still_shown:
            return WITHHELD
        count, key = still_shown.pop(0)
        published[key] = WITHHELD
        secret += 1
        withheld_sum += count
    return total
