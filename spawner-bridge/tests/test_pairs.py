"""Pairs of packages in spawn options and the spawn form: `{"cpu": "m", "gpu": "t4"}` is the size
m.t4; the form's pair selects are priced on the chosen cloud with what the machine gives beyond
the ask, or why the pair is unavailable there."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from ngsci_spawner import SpawnError, options_from_form, validate_options
from ngsci_spawner.options import render_form

from .conftest import CATALOG


def _offer(cloud: str, **fields: Any) -> dict[str, Any]:
    return {"cloud": cloud, "region": "r", "spotMicrosPerHour": None, **fields}


PAIRS_CATALOG: dict[str, Any] = {
    **CATALOG,
    "packages": {
        "cpu": [
            {"id": "s", "label": "S (2 vCPU, 8 GiB)", "vcpu": 2, "memoryGiB": 8},
            {"id": "m", "label": "M (4 vCPU, 16 GiB)", "vcpu": 4, "memoryGiB": 16},
        ],
        "gpu": [
            {"id": "none", "label": "no GPU", "gpu": None},
            {
                "id": "t4",
                "label": "1x NVIDIA T4",
                "gpu": {"model": "T4", "count": 1, "memoryGiB": 16},
            },
        ],
    },
    "pairs": [
        {
            "id": "s.t4",
            "package": {"cpu": "s", "gpu": "t4"},
            "offers": [
                _offer(
                    "aws",
                    instanceType="g4dn.xlarge",
                    available=True,
                    onDemandMicrosPerHour=526_000,
                    spotMicrosPerHour=210_400,
                    fit={"beyondAsk": "you get 4 vCPU and 16 GiB; you asked for 2 vCPU and 8 GiB"},
                ),
                _offer(
                    "gcp",
                    instanceType="",
                    available=False,
                    onDemandMicrosPerHour=0,
                    note="this hub is not set up to provision on gcp",
                ),
            ],
        },
        {
            "id": "m.t4",
            "package": {"cpu": "m", "gpu": "t4"},
            "offers": [
                _offer(
                    "aws",
                    instanceType="g4dn.xlarge",
                    available=True,
                    onDemandMicrosPerHour=526_000,
                    fit={"beyondAsk": None},
                ),
            ],
        },
    ],
}


def test_a_pair_is_passed_on_as_its_size_id():
    assert validate_options({"cpu": "m", "gpu": "t4", "cloud": "aws"}) == {
        "size": "m.t4",
        "cloud": "aws",
    }
    assert validate_options({"cpu": "xl"}) == {"size": "xl.none"}


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"cpu": "xxl", "gpu": "t4"}, "cpu must be a CPU package: s, m, l, xl"),
        ({"cpu": "m", "gpu": "k80"}, "gpu must be a GPU package: none, t4"),
        ({"gpu": "t4"}, "gpu needs cpu as well"),
        ({"size": "gpu-t4", "cpu": "m"}, "either size or cpu"),
        ({"cpu": 4}, "cpu must be a CPU package"),
    ],
)
def test_bad_pairs_are_refused(options, complaint):
    with pytest.raises(SpawnError) as bad:
        validate_options(options)
    assert complaint in str(bad.value)
    assert bad.value.code == "validation_failed"


def test_the_forms_cpu_select_wins_over_the_size_radio():
    form = {"size": ["cpu-small"], "cpu": ["m"], "gpu": ["t4"], "cloud": ["aws"]}
    assert options_from_form(form) == {"size": "m.t4", "cloud": "aws", "spot": False}
    # no CPU package chosen: the size radio
    assert options_from_form({"size": ["cpu-small"], "cpu": [""], "gpu": ["t4"]}) == {
        "size": "cpu-small",
        "spot": False,
    }


def test_the_form_offers_pairs_priced_on_the_cloud_with_what_they_give():
    page = render_form(PAIRS_CATALOG, {"size": "s.t4", "cloud": "aws"})
    assert "Or combine a CPU package with a GPU package" in page
    assert re.search(r'<option value="s" selected>S \(2 vCPU, 8 GiB\)</option>', page)
    assert re.search(r'<option value="t4" selected>', page)
    price = re.search(r'<span class="ngsci-pair-price">([^<]*)</span>', page)
    assert price
    assert html.unescape(price.group(1)) == (
        "$0.526/h on g4dn.xlarge; you get 4 vCPU and 16 GiB; you asked for 2 vCPU and 8 GiB"
    )
    assert "unavailable" in html.unescape(page)  # gcp's reason travels in data-pairs for the script
    spot = render_form(PAIRS_CATALOG, {"size": "s.t4", "cloud": "aws", "spot": True})
    assert "$0.2104/h spot on g4dn.xlarge" in html.unescape(spot)


def test_without_pairs_the_form_is_as_before():
    page = render_form(CATALOG)
    assert "ngsci-pairs" not in page
    assert 'name="cpu"' not in page
