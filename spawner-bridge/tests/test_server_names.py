"""The spawner's copy of the server-name rule against the contract's examples.

contract/src/server-name.ts is the rule's one definition; its test and this one read the same
file (contract/server-names.json), so the hub cannot start a server the service cannot address.
In hub terms '' is the default server, and a named server may not be called `default`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ngsci_spawner import SpawnError
from ngsci_spawner.spawner import RESERVED_SERVER_NAME, SERVER_NAME_PATTERN

EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "contract" / "server-names.json").read_text("utf-8")
)


def test_pattern_and_reserved_name_are_the_contracts():
    assert EXAMPLES["pattern"] == SERVER_NAME_PATTERN
    assert EXAMPLES["default"] == RESERVED_SERVER_NAME


@pytest.mark.parametrize("name", ["", *(n for n in EXAMPLES["valid"] if n != EXAMPLES["default"])])
async def test_valid_names_are_accepted(make_spawner, name):
    make_spawner(name).check_server_name()


@pytest.mark.parametrize("name", [n for n in EXAMPLES["invalid"] if n != ""])
async def test_invalid_names_are_refused(make_spawner, name):
    with pytest.raises(SpawnError) as bad:
        make_spawner(name).check_server_name()
    assert bad.value.code == "invalid_server_name"
    assert bad.value.status_code == 400


async def test_the_api_default_is_reserved_for_the_default_server(make_spawner):
    with pytest.raises(SpawnError, match="is reserved") as bad:
        make_spawner(EXAMPLES["default"]).check_server_name()
    assert bad.value.code == "invalid_server_name"
