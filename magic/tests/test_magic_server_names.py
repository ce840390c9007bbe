"""The magic's copy of the server-name rule against the contract's examples.

contract/src/server-name.ts is the rule's one definition; its test and this one read the same
file (contract/server-names.json), so the magic cannot accept a name the service refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ngsci_magic.magic import (
    DEFAULT_SERVER,
    SERVER_NAME_PATTERN,
    NgsciMagics,
    UsageError,
    check_server,
    is_server_name,
)

EXAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "contract" / "server-names.json").read_text("utf-8")
)


def test_pattern_and_default_are_the_contracts():
    assert EXAMPLES["pattern"] == SERVER_NAME_PATTERN
    assert EXAMPLES["default"] == DEFAULT_SERVER
    assert NgsciMagics(env={"JUPYTERHUB_SERVER_NAME": ""}).server == EXAMPLES["default"]


@pytest.mark.parametrize("name", EXAMPLES["valid"])
def test_valid_names_pass(name):
    assert is_server_name(name)
    assert check_server(name) == name


@pytest.mark.parametrize("name", EXAMPLES["invalid"])
def test_invalid_names_are_a_usage_error(name):
    assert not is_server_name(name)
    with pytest.raises(UsageError, match="is not a server name"):
        check_server(name)
