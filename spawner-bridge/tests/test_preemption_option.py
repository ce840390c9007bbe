"""The spawn form's "if the cloud takes the spot machine back" choice (onPreemption)."""

import pytest

from ngsci_spawner.errors import SpawnError
from ngsci_spawner.options import options_from_form, render_form, validate_options

from .conftest import CATALOG


def test_the_choice_goes_with_a_spot_spawn_only():
    form = {"size": ["gpu-t4"], "spot": ["on"], "onPreemption": ["on-demand"]}
    assert options_from_form(form) == {"size": "gpu-t4", "spot": True, "onPreemption": "on-demand"}
    # the empty choice leaves the service's default
    assert options_from_form({"size": ["gpu-t4"], "spot": ["on"], "onPreemption": [""]}) == {
        "size": "gpu-t4",
        "spot": True,
    }
    # an on-demand machine is never taken back: nothing to choose
    assert validate_options({"size": "gpu-t4", "onPreemption": "stop"}) == {"size": "gpu-t4"}


def test_an_unknown_choice_is_refused():
    with pytest.raises(SpawnError, match="onPreemption must be one of on-demand, spot, stop"):
        validate_options({"size": "gpu-t4", "spot": True, "onPreemption": "later"})


def test_the_form_offers_it_and_keeps_the_last_choice():
    html = render_form(CATALOG, previous={"size": "gpu-t4", "spot": True, "onPreemption": "stop"})
    assert 'name="onPreemption"' in html
    assert '<option value="stop" selected>leave it stopped</option>' in html


def test_without_a_previous_choice_the_form_sends_none():
    # the default option is selected and empty, so the user's own default (GET/PUT
    # /api/v1/me/preemption) and then the admin's apply; an explicit choice stays possible
    html = render_form(CATALOG, previous={"size": "gpu-t4", "spot": True})
    default = "my default (ngsci preemption), else the admin&#x27;s"
    assert f'<option value="" selected>{default}</option>' in html
    assert '<option value="spot">start it again on spot</option>' in html
    assert "onPreemption" not in options_from_form({"size": ["gpu-t4"], "spot": ["on"]})
