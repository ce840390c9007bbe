"""The magic's money and hours formatter against the contract's test vectors.

contract/src/figures.ts is the formatter's one definition; its tests and these read the same file
(contract/fixtures/money-format.json), so `%ngsci` and every other surface write a figure alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ngsci_magic.figures import format_hours, format_micros, format_rate, format_unit_price

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "contract" / "fixtures" / "money-format.json").read_text(
        "utf-8"
    )
)


@pytest.mark.parametrize("case", VECTORS["amounts"], ids=lambda c: str(c["micros"]))
def test_amounts(case):
    assert format_micros(case["micros"]) == case["text"]


@pytest.mark.parametrize("case", VECTORS["amountsCompact"], ids=lambda c: str(c["micros"]))
def test_amounts_in_two_decimal_columns(case):
    assert format_micros(case["micros"], precise=False) == case["text"]


@pytest.mark.parametrize("case", VECTORS["unitPrices"], ids=lambda c: str(c["micros"]))
def test_unit_prices_are_never_rounded(case):
    assert format_unit_price(case["micros"]) == case["text"]


@pytest.mark.parametrize("case", VECTORS["rates"], ids=lambda c: str(c["micros"]))
def test_rates(case):
    assert format_rate(case["micros"]) == case["text"]


@pytest.mark.parametrize("case", VECTORS["hours"], ids=lambda c: str(c["seconds"]))
def test_hours(case):
    assert format_hours(case["seconds"]) == case["text"]


def test_no_non_zero_amount_is_zero_dollars():
    for micros in [*range(1, 20_000, 7), 999_999, -1, -5_000]:
        assert format_micros(micros) != "$0.00"
        assert format_micros(micros, precise=False) != "$0.00"
