"""The spawn form and placement by cloud credits.

Per size, the form says which cloud costs the organisation least after credits and why. On a hub
with several clouds its cloud menu offers "Automatic" (the default), which sends no cloud so the
service places the start; the prices shown are then those of the cloud placement picks.
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest

from ngsci_spawner import SpawnError, options_from_form, validate_options
from ngsci_spawner.options import AUTOMATIC_LABEL, render_form

from .conftest import CATALOG
from .test_pairs import PAIRS_CATALOG

# conftest's CATALOG: cpu-small on local and AWS only; gpu-t4 on AWS ($0.526/h, spot $0.21/h)
# and GCP ($0.54/h, no spot); the default cloud is AWS.
GCP_CREDITS = "on Google Cloud: covered by research credits until 2027-03-31"
PLACED = {
    **CATALOG,
    "placements": {"gpu-t4": {"cloud": "gcp", "region": "us-central1", "reason": GCP_CREDITS}},
}


def row_of(html: str, size: str) -> str:
    row = html[html.index(f'id="ngsci-size-{size}"') :]
    return row[: row.index("</label>")]


def label_of(html: str, size: str) -> str:
    """The whole <label> of a size, its data-* attributes included."""
    end = html.index(f'id="ngsci-size-{size}"')
    start = html.rindex('<label class="ngsci-size"', 0, end)
    return html[start : html.index("</label>", end)]


def price_of(html: str, size: str) -> str:
    match = re.search(r'<span class="ngsci-price">([^<]*)</span>', row_of(html, size))
    assert match
    return unescape(match.group(1))


def data(html: str, size: str, attribute: str) -> dict[str, Any]:
    match = re.search(rf'{attribute}="([^"]*)"', label_of(html, size))
    assert match
    return json.loads(unescape(match.group(1)))


def cloud_menu(html: str) -> list[tuple[str, str, bool]]:
    menu = html[html.index('name="cloud"') : html.index("</select>")]
    return [
        (value, unescape(text), bool(selected))
        for value, selected, text in re.findall(
            r'<option value="([^"]*)"( selected)?>([^<]*)</option>', menu
        )
    ]


def test_a_size_with_a_placement_shows_its_reason_escaped_and_the_others_none():
    sizes = [str(s["id"]) for s in CATALOG["sizes"]]
    placed, other = sizes[0], sizes[1]
    reason = "on GCP: covered by research credits until 2027-03-31 <b>"
    html = render_form(
        {**CATALOG, "placements": {placed: {"cloud": "gcp", "region": "r", "reason": reason}}},
        previous={"cloud": "aws"},
    )
    assert html.count('class="ngsci-runway ngsci-placement"') == 1
    row = row_of(html, placed)
    assert (
        '<span class="ngsci-runway ngsci-placement">Least cost for your organisation: on GCP: '
        "covered by research credits until 2027-03-31 &lt;b&gt;" in row
    )
    assert "ngsci-placement" not in row_of(html, other)


def test_no_placements_no_lines_and_no_automatic():
    html = render_form(CATALOG)
    assert 'class="ngsci-runway ngsci-placement"' not in html
    # without placements the menu is as before: the clouds, the default one chosen
    assert cloud_menu(html) == [
        ("local", "This machine", False),
        ("aws", "AWS", True),
        ("gcp", "Google Cloud", False),
    ]


def test_several_clouds_with_placements_default_to_automatic():
    html = render_form(PLACED)
    menu = cloud_menu(html)
    assert menu[0] == ("", AUTOMATIC_LABEL, True)
    assert [value for value, _, selected in menu if selected] == [""]
    # the size line names the cloud placement picks and why, at that cloud's price (not AWS's)
    assert price_of(html, "gpu-t4") == f"$0.54/h {GCP_CREDITS}"
    assert data(html, "gpu-t4", "data-prices")[""]["onDemand"] == "$0.54/h"
    # the separate "least cost" line would say the same: hidden while Automatic is chosen
    assert '<span class="ngsci-runway ngsci-placement" hidden>' in row_of(html, "gpu-t4")
    # (.ngsci-runway is display: block, which would beat the browser's own [hidden] rule)
    assert "#ngsci-options .ngsci-placement[hidden] { display: none; }" in html
    # a size with no placement (one cloud offers it, or it is the default) goes to the default cloud
    assert price_of(html, "cpu-small") == "$0.0832/h on AWS"


def test_a_cloud_named_by_the_last_spawn_stays_chosen_and_shows_its_own_price():
    html = render_form(PLACED, previous={"size": "gpu-t4", "cloud": "aws"})
    assert [value for value, _, selected in cloud_menu(html) if selected] == ["aws"]
    assert cloud_menu(html)[0][0] == ""  # Automatic is still offered
    assert price_of(html, "gpu-t4") == "$0.526/h"
    assert "Least cost for your organisation: " + GCP_CREDITS in row_of(html, "gpu-t4")
    assert '<span class="ngsci-runway ngsci-placement" hidden>' not in row_of(html, "gpu-t4")


def test_a_one_cloud_hub_has_no_automatic_entry():
    one = {**PLACED, "clouds": ["aws"]}
    html = render_form(one)
    menu = cloud_menu(html)
    assert "" not in [value for value, _, _ in menu]
    assert [value for value, _, selected in menu if selected] == ["aws"]
    assert price_of(html, "gpu-t4") == "$0.526/h"


def test_a_size_only_on_a_cloud_other_than_the_default_cannot_be_placed_automatically():
    catalog = json.loads(json.dumps(PLACED))
    catalog["defaultCloud"] = "gcp"
    catalog["sizes"][1]["offers"] = catalog["sizes"][1]["offers"][1:]  # gpu-t4: GCP only
    catalog["placements"] = {"cpu-small": {"cloud": "aws", "region": "r", "reason": "on AWS: x"}}
    html = render_form(catalog)
    assert cloud_menu(html)[0] == ("", AUTOMATIC_LABEL, True)
    # GCP is the default here: gpu-t4 is placed there, and says so
    assert price_of(html, "gpu-t4") == "$0.54/h on Google Cloud"
    catalog["defaultCloud"] = "aws"
    catalog["sizes"][1]["offers"] = [{**catalog["sizes"][1]["offers"][0], "cloud": "azure"}]
    catalog["clouds"] = ["local", "aws", "gcp", "azure"]
    html = render_form(catalog)
    # offered on Azure only and the default is AWS: the service would refuse it without a cloud
    assert 'value="gpu-t4" disabled' in row_of(html, "gpu-t4")
    assert price_of(html, "gpu-t4") == "offered only on Azure: choose it in the cloud menu"
    assert data(html, "gpu-t4", "data-absent")[""] == price_of(html, "gpu-t4")


def test_spot_under_automatic_uses_the_spot_placement():
    catalog = {
        **PLACED,
        "spotPlacements": {
            "gpu-t4": {"cloud": "aws", "region": "us-east-1", "reason": "on AWS: spot x"}
        },
    }
    html = render_form(catalog, previous={"size": "gpu-t4", "spot": True})
    assert price_of(html, "gpu-t4") == "$0.21/h spot on AWS: spot x"
    prices = data(html, "gpu-t4", "data-prices")[""]
    assert prices == {
        "onDemand": "$0.54/h",
        "where": GCP_CREDITS,
        "spot": "$0.21/h",
        "spotWhere": "on AWS: spot x",
    }
    # no spot placement for the size (one cloud has spot): the service takes the default cloud
    html = render_form({**PLACED, "spotPlacements": {}}, previous={"size": "gpu-t4", "spot": True})
    assert price_of(html, "gpu-t4") == "$0.21/h spot on AWS"
    # ... and when the default cloud has no spot offer, its on-demand price, not the placed one's
    catalog = {
        **PLACED,
        "defaultCloud": "gcp",
        "placements": {"gpu-t4": {"cloud": "aws", "region": "r", "reason": "on AWS: cheapest"}},
        "spotPlacements": {},
    }
    html = render_form(catalog, previous={"size": "gpu-t4", "spot": True})
    assert price_of(html, "gpu-t4") == "$0.54/h (no spot offer) on Google Cloud"
    assert (
        price_of(render_form(catalog, {"size": "gpu-t4"}), "gpu-t4") == "$0.526/h on AWS: cheapest"
    )
    # a service that sends no spot placements at all: the on-demand one is the best guess, and
    # GCP has no spot offer
    html = render_form(PLACED, previous={"size": "gpu-t4", "spot": True})
    assert price_of(html, "gpu-t4") == f"$0.54/h (no spot offer) {GCP_CREDITS}"


def test_the_runway_line_under_automatic_is_the_placed_clouds():
    runway = [
        {"size": "gpu-t4", "cloud": "aws", "spot": False, "runwaySeconds": 3600},
        {"size": "gpu-t4", "cloud": "gcp", "spot": False, "runwaySeconds": 7200},
    ]
    html = render_form({**PLACED, "runway": runway})
    assert "2 h left in your budget" in row_of(html, "gpu-t4")
    assert data(html, "gpu-t4", "data-runway")[""] == {
        "onDemand": "2 h left in your budget \u00b7 no idle stop"
    }


def test_automatic_sends_no_cloud_and_an_unknown_cloud_is_refused():
    assert options_from_form({"size": ["gpu-t4"], "cloud": [""]}) == {
        "size": "gpu-t4",
        "spot": False,
    }
    for bad in (["auto"], ["Automatic"], ["GCP"]):
        with pytest.raises(SpawnError, match="cloud must be one of"):
            options_from_form({"size": ["gpu-t4"], "cloud": bad})
    with pytest.raises(SpawnError, match="cloud must be one of"):
        validate_options({"size": "gpu-t4", "cloud": ""})


async def test_the_spawner_hands_an_automatic_spawn_to_the_service_without_a_cloud(
    service, make_spawner
):
    service.catalog = json.loads(json.dumps(PLACED))
    spawner = make_spawner()
    spawner.user_options = {}
    html = await spawner.render_options_form()
    assert cloud_menu(html)[0] == ("", AUTOMATIC_LABEL, True)
    # the browser sends the chosen (empty) cloud value back
    spawner.user_options = spawner.run_options_from_form({"size": ["gpu-t4"], "cloud": [""]})
    await spawner.start()
    start = next(r for r in service.requests if r.path.endswith("/bridge/start"))
    assert start.body["options"] == {"size": "gpu-t4", "spot": False}
    # the next form preselects Automatic again (the last spawn named no cloud)
    assert cloud_menu(await spawner.render_options_form())[0][2] is True


def test_a_pair_under_automatic_is_priced_on_the_default_cloud_and_names_it():
    catalog = {**PAIRS_CATALOG, "placements": PLACED["placements"]}
    page = unescape(render_form(catalog, {"size": "s.t4"}))
    # the service places named sizes by credits; a pair goes to the hub's default cloud (AWS)
    assert (
        '<span class="ngsci-pair-price">$0.526/h on g4dn.xlarge (AWS); you get 4 vCPU and 16 GiB;'
        in page
    )
    pairs = re.search(r'data-pairs="([^"]*)"', render_form(catalog, {"size": "s.t4"}))
    assert pairs
    assert json.loads(unescape(pairs.group(1)))["s.t4"][""]["cloudLabel"] == "AWS"
