"""Spawn options: validation, the form built from the catalog, and reading the form back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ngsci_spawner import SpawnError, options_from_form, validate_options
from ngsci_spawner.options import format_price, render_form

from .conftest import CATALOG


def test_validate_accepts_the_contract_shape():
    options = {"size": "gpu-a100", "cloud": "gcp", "region": "us-central1", "spot": True}
    assert validate_options(options) == options
    assert validate_options({"size": "cpu.small-2"}) == {"size": "cpu.small-2"}


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ("gpu-t4", "expected an object"),
        ({"size": "gpu-t4", "image": "evil"}, "unknown option(s) image"),
        ({"cloud": "aws"}, "size is required"),
        ({"size": 4}, "size must be a size id"),
        ({"size": "-gpu"}, "size must be a size id"),
        ({"size": "g" * 64}, "size must be a size id"),
        ({"size": "gpu-t4", "cloud": "AWS"}, "cloud must be one of"),
        ({"size": "gpu-t4", "cloud": None}, "cloud must be one of"),
        ({"size": "gpu-t4", "region": "r" * 65}, "region must be a string of at most 64"),
        ({"size": "gpu-t4", "spot": "true"}, "spot must be true or false"),
        ({"size": "gpu-t4", "spot": 1}, "spot must be true or false"),
        ({"size": "gpu-t4", "spot": True, "spotFallback": "yes"}, "spotFallback must be true"),
    ],
)
def test_validate_rejects(options, complaint):
    with pytest.raises(SpawnError) as bad:
        validate_options(options)
    assert complaint in str(bad.value)
    assert bad.value.code == "validation_failed"
    assert bad.value.status_code == 400


def test_options_from_form():
    form = {"size": ["gpu-t4"], "cloud": ["gcp"], "spot": ["on"]}
    assert options_from_form(form) == {"size": "gpu-t4", "cloud": "gcp", "spot": True}
    # an unchecked box is absent; empty fields are no choice
    assert options_from_form({"size": ["cpu-small"], "cloud": [""]}) == {
        "size": "cpu-small",
        "spot": False,
    }


def test_spot_fallback_travels_with_a_spot_spawn_only():
    spot = {"size": ["gpu-t4"], "spot": ["on"], "spotFallback": ["on"]}
    assert options_from_form(spot) == {"size": "gpu-t4", "spot": True, "spotFallback": True}
    # on demand has nothing to fall back from
    assert validate_options({"size": "gpu-t4", "spot": False, "spotFallback": True}) == {
        "size": "gpu-t4",
        "spot": False,
    }
    html = render_form(CATALOG, previous={"size": "gpu-t4", "spot": True, "spotFallback": True})
    assert 'name="spotFallback" id="ngsci-spot-fallback" value="on" checked' in html


def test_options_from_form_rejects_a_form_without_size():
    with pytest.raises(SpawnError, match="size is required"):
        options_from_form({"cloud": ["aws"]})


def test_spawner_uses_form_parsing(make_spawner):
    spawner = make_spawner()
    assert spawner.run_options_from_form({"size": ["gpu-t4"], "cloud": ["aws"]}) == {
        "size": "gpu-t4",
        "cloud": "aws",
        "spot": False,
    }


_MONEY_FORMAT = json.loads(
    (Path(__file__).resolve().parents[2] / "contract" / "fixtures" / "money-format.json").read_text(
        encoding="utf-8"
    )
)


@pytest.mark.parametrize(
    ("micros", "text"),
    [(v["micros"], v["text"]) for v in _MONEY_FORMAT["rates"]]
    + [(526_000, "$0.526/h"), (0, "$0.00/h"), (4_999, "$0.004999/h"), (32_770_000, "$32.77/h")],
)
def test_format_price_is_the_contracts_rate_never_rounded(micros, text):
    assert format_price(micros) == text


def test_form_shows_every_size_with_its_price_on_the_default_cloud():
    html = render_form(CATALOG)

    # defaultCloud is aws: both sizes priced there
    assert "$0.0832/h" in html  # cpu-small on aws, as exact as the bill
    assert "$0.526/h" in html  # gpu-t4 on aws
    assert 'value="cpu-small" checked' in html
    assert "2 vCPU \u00b7 8 GiB" in html
    assert "1\u00d7 T4 (16 GiB)" in html
    assert '<option value="aws" selected>AWS</option>' in html
    # azure's only offer is unavailable: not a choice
    assert 'value="azure"' not in html
    assert "as of 2025-07-01" in html


def test_form_carries_every_cloud_price_for_the_script():
    html = render_form(CATALOG)
    # JSON in an attribute, HTML-escaped
    assert "&quot;gcp&quot;: {&quot;onDemand&quot;: &quot;$0.54/h&quot;" in html
    assert "&quot;spot&quot;: &quot;$0.21/h&quot;" in html


def test_form_escapes_catalog_text():
    html = render_form(CATALOG)
    assert "T4 &lt;GPU&gt; &amp; friends" in html
    assert "<GPU>" not in html


def test_form_escapes_hostile_ids():
    catalog = {
        **CATALOG,
        "asOf": "<script>alert(1)</script>",
        "sizes": [{**CATALOG["sizes"][0], "id": 'x"><img src=x onerror=alert(1)>'}],
    }
    html = render_form(catalog)
    assert "<img" not in html
    assert "<script>alert" not in html


def test_form_preselects_previous_choices():
    html = render_form(CATALOG, previous={"size": "gpu-t4", "cloud": "gcp", "spot": True})
    assert 'value="gpu-t4" checked' in html
    assert '<option value="gcp" selected>' in html
    assert 'name="spot" id="ngsci-spot" value="on" checked' in html
    # gcp has no spot price for the T4, and no cpu-small at all
    assert "$0.54/h (no spot offer)" in html
    assert 'value="cpu-small" disabled' in html
    assert "not offered on Google Cloud" in html


def test_form_when_nothing_is_available():
    catalog = {**CATALOG, "sizes": [{**CATALOG["sizes"][1], "offers": []}]}
    assert "cannot be shown right now" in render_form(catalog)


async def test_spawner_form_comes_from_the_catalog(service, make_spawner):
    spawner = make_spawner()
    html = await spawner.get_options_form()
    assert "$0.526/h" in html
    # for the spawning user: the answer carries their runway per size
    assert service.paths() == ["GET /services/ngsci/api/v1/bridge/catalog?user=alice"]


async def test_spawner_form_says_when_the_catalog_is_unavailable(service, make_spawner):
    service.errors["catalog"] = (500, "internal", "database is down")
    html = await make_spawner().get_options_form()
    assert "cannot be shown right now" in html
    assert "(internal)" in html
    assert "database is down" not in html


async def test_spawner_form_survives_a_malformed_catalog(service, make_spawner):
    service.catalog = {"sizes": [{"id": "x", "offers": [{"available": True}]}]}
    html = await make_spawner().get_options_form()
    assert "cannot read" in html
