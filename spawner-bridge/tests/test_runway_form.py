"""The spawn form's budget-aware part: each size's runway, quota refusals and idle timeout."""

from __future__ import annotations

from ngsci_spawner.options import format_runway, render_form

from .conftest import CATALOG


def _runway(size, cloud, spot=False, **extra):
    return {
        "size": size,
        "cloud": cloud,
        "spot": spot,
        "rateMicrosPerHour": 1,
        "runwaySeconds": None,
        "budget": None,
        "forbidden": None,
        "idleTimeoutSeconds": 0,
        **extra,
    }


def test_format_runway_reads_like_the_sidebar():
    assert format_runway(30) == "< 1 min"
    assert format_runway(45 * 60) == "45 min"
    assert format_runway(3 * 3600 + 12 * 60 + 59) == "3 h 12 min"
    assert format_runway(2 * 3600) == "2 h"
    assert format_runway(52 * 3600) == "2 d 4 h"


def test_each_size_shows_its_runway_and_a_forbidden_size_is_disabled_with_the_reason():
    sizes = [str(s["id"]) for s in CATALOG["sizes"]]
    allowed, refused = sizes[0], sizes[1]
    clouds = {o["cloud"] for s in CATALOG["sizes"] for o in s["offers"] if o["available"]}
    runway = [
        _runway(allowed, c, runwaySeconds=11_520, budget="user:ada", idleTimeoutSeconds=1800)
        for c in clouds
    ] + [
        _runway(
            refused,
            c,
            forbidden={"code": "quota_exceeded", "reason": "not among your allowed sizes"},
        )
        for c in clouds
    ]
    html = render_form({**CATALOG, "runway": runway})
    assert "3 h 12 min left in your budget \u00b7 stops after 30 min idle" in html
    assert "Not allowed: not among your allowed sizes" in html
    assert f'value="{refused}" disabled' in html
    assert f'value="{allowed}" checked' in html or f'value="{allowed}"' in html
    # without runway data (an older service) the form is as before
    assert "left in your budget" not in render_form(CATALOG)


def test_a_simulated_gpu_size_on_this_machine_says_there_is_no_gpu_and_shows_no_price():
    gpu = next(s for s in CATALOG["sizes"] if s.get("gpu"))
    offers = [o for o in gpu["offers"] if o["cloud"] != "local"] + [
        {
            "cloud": "local",
            "region": "localhost",
            "instanceType": "process",
            "available": False,
            "onDemandMicrosPerHour": 0,
            "spotMicrosPerHour": None,
            "simulated": True,
        }
    ]
    catalog = {
        **CATALOG,
        "clouds": ["local"],
        "defaultCloud": "local",
        "sizes": [CATALOG["sizes"][0], {**gpu, "offers": offers}],
    }
    html = render_form(catalog)
    assert "not on this machine: it has no GPU" in html
    assert f'value="{gpu["id"]}" disabled' in html
