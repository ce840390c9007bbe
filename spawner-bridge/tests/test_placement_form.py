"""The spawn form says, per size, which cloud costs the organisation least after credits and why."""

from __future__ import annotations

from ngsci_spawner.options import render_form

from .conftest import CATALOG


def test_a_size_with_a_placement_shows_its_reason_escaped_and_the_others_none():
    sizes = [str(s["id"]) for s in CATALOG["sizes"]]
    placed, other = sizes[0], sizes[1]
    reason = "on GCP: covered by research credits until 2027-03-31 <b>"
    html = render_form(
        {**CATALOG, "placements": {placed: {"cloud": "gcp", "region": "r", "reason": reason}}}
    )
    assert html.count("ngsci-placement") == 1
    row = html[html.index(f'id="ngsci-size-{placed}"') :]
    row = row[: row.index("</label>")]
    assert (
        "Least cost for your organisation: on GCP: covered by research credits until "
        "2027-03-31 &lt;b&gt;" in row
    )
    other_row = html[html.index(f'id="ngsci-size-{other}"') :]
    assert "ngsci-placement" not in other_row[: other_row.index("</label>")]


def test_no_placements_no_lines():
    assert "ngsci-placement" not in render_form(CATALOG)
