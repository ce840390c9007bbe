"""How `%ngsci` writes money and hours: the rules of contract/src/figures.ts, in Python.

This is a copy in Python (a kernel gets no Node); tests/test_figures.py checks it against the
contract's own test vectors, contract/fixtures/money-format.json, so both write every figure alike.
All arithmetic is on integers (micro-dollars, seconds); rounding is half away from zero.
"""

from __future__ import annotations

# the bands of amounts: at or above this many µ$, this many decimals
_AMOUNT_BANDS = ((1_000_000, 2), (10_000, 3), (0, 4))
_SMALLEST = 100  # µ$: $0.0001, the last digit an amount shows


def _round_div(value: int, unit: int) -> int:
    """`value / unit` rounded half away from zero, for value >= 0."""
    return (value + unit // 2) // unit


def _digits(value: int, decimals: int) -> str:
    """A non-negative count of 10**-decimals dollars as `1,234.56`."""
    whole, frac = divmod(value, 10**decimals)
    return f"{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")


def _decimals_for(micros: int) -> int:
    return next(d for floor, d in _AMOUNT_BANDS if micros >= floor)


def format_micros(micros: int, precise: bool = True) -> str:
    """An amount: never "$0.00" unless it is zero.

    precise (the default): 2 decimals from $1, 3 from a cent, 4 below, "< $0.0001" under that;
    precise=False (2-decimal columns): "< $0.01" under a cent.
    """
    micros = int(micros)
    sign = "-" if micros < 0 else ""
    a = abs(micros)
    if a == 0:
        return "$0.00"
    if not precise:
        if a < 10_000:
            return "> -$0.01" if micros < 0 else "< $0.01"
        return f"{sign}${_digits(_round_div(a, 10_000), 2)}"
    if a < _SMALLEST:
        return "> -$0.0001" if micros < 0 else "< $0.0001"
    decimals = _decimals_for(a)
    while True:
        unit = 10 ** (6 - decimals)
        q = _round_div(a, unit)
        # a rounding that carries into the next band is written with that band's decimals
        if decimals > 2 and _decimals_for(q * unit) < decimals:
            decimals = _decimals_for(q * unit)
            continue
        return f"{sign}${_digits(q, decimals)}"


def format_unit_price(micros: int) -> str:
    """A price per unit, never rounded: at least 2 decimals, as many as the exact value needs."""
    micros = int(micros)
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    decimals = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{decimals}"


def format_rate(micros_per_hour: int) -> str:
    """A price per hour: `$0.526/h`."""
    return f"{format_unit_price(micros_per_hour)}/h"


def format_hours(seconds: float) -> str:
    """Seconds for an hours column: `0 h`, `< 0.01 h`, `0.50 h`, `1.5 h`."""
    s = int(max(0, seconds) + 0.5)  # half up, as the contract rounds (not round()'s half even)
    if s == 0:
        return "0 h"
    hundredths = _round_div(s, 36)
    if hundredths == 0:
        return "< 0.01 h"
    if hundredths < 100:
        return f"{_digits(hundredths, 2)} h"
    return f"{_digits(_round_div(s, 360), 1)} h"
