"""Risk classes from MCP annotation hints (spec defaults), names and descriptions."""

from __future__ import annotations

from typing import Any

import pytest

from warrant.scanners import risk_class_from_annotations
from warrant.types import RiskClass

from ._vectors import BENIGN

READ = RiskClass.READ_ONLY
WRITE = RiskClass.WRITE
DESTRUCTIVE = RiskClass.DESTRUCTIVE
EXTERNAL = RiskClass.EXTERNAL_COMMUNICATION


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"readOnlyHint": True}, READ),
    ({"readOnlyHint": True, "destructiveHint": True, "openWorldHint": True}, READ),
    # destructiveHint defaults to true when the tool is not read-only.
    ({"readOnlyHint": False}, DESTRUCTIVE),
    ({"openWorldHint": True}, DESTRUCTIVE),
    ({"idempotentHint": True}, DESTRUCTIVE),
    ({"destructiveHint": False}, EXTERNAL),  # openWorldHint defaults to true
    ({"readOnlyHint": False, "destructiveHint": False, "openWorldHint": True}, EXTERNAL),
    ({"readOnlyHint": False, "destructiveHint": False, "openWorldHint": False}, WRITE),
    ({"destructiveHint": True, "openWorldHint": False}, DESTRUCTIVE),
])
def test_hints_follow_the_mcp_defaults(annotations: dict[str, Any], expected: RiskClass) -> None:
    assert risk_class_from_annotations(annotations, name="calendar") is expected


@pytest.mark.parametrize(("name", "expected"), [
    ("get_issue", READ), ("list_files", READ), ("read_file", READ), ("search_code", READ),
    ("getResourceReference", READ), ("github.list_issues", READ),
    ("get_or_create_user", WRITE), ("update_issue", WRITE), ("git_status", WRITE), ("", WRITE),
    ("delete_entities", DESTRUCTIVE), ("drop_table", DESTRUCTIVE),
    ("send_email", EXTERNAL), ("slack_post_message", EXTERNAL),
])
def test_without_hints_the_name_decides_and_unknown_is_write(name: str,
                                                             expected: RiskClass) -> None:
    assert risk_class_from_annotations(None, name=name) is expected
    assert risk_class_from_annotations({"title": "A title"}, name=name) is expected
    assert risk_class_from_annotations({"readOnlyHint": "yes"}, name=name) is expected


def test_a_read_only_claim_contradicted_by_the_name_is_ignored() -> None:
    # Annotations are untrusted: a server can call `delete_repository` read-only.
    lying = {"readOnlyHint": True, "destructiveHint": False}
    assert risk_class_from_annotations(lying, name="delete_repository") is DESTRUCTIVE
    assert risk_class_from_annotations(lying, name="create_note") is WRITE
    assert risk_class_from_annotations(lying, name="get_note") is READ


@pytest.mark.parametrize(("name", "description", "expected"), [
    ("execute_command", "", RiskClass.CODE_EXECUTION),
    ("run_python", "", RiskClass.CODE_EXECUTION),
    ("puppeteer_evaluate", "Execute JavaScript in the browser console", RiskClass.CODE_EXECUTION),
    ("sandbox", "Runs arbitrary shell commands in a container.", RiskClass.CODE_EXECUTION),
    ("transfer_funds", "", RiskClass.MONEY_MOVEMENT),
    ("create_refund", "", RiskClass.MONEY_MOVEMENT),
    ("checkout", "Pays the invoice: sends the payment to the supplier.", RiskClass.MONEY_MOVEMENT),
    ("transfer_file", "", WRITE),
    ("get_payment_status", "", READ),
])
def test_code_execution_and_money_movement_come_from_name_and_description(
        name: str, description: str, expected: RiskClass) -> None:
    # Even a tool that claims to be read-only: the hints cannot express these classes.
    hints = {"readOnlyHint": True} if expected is not READ else None
    assert risk_class_from_annotations(hints, name=name, description=description) is expected


def test_real_read_only_tools_are_read_only_and_the_rest_are_at_least_write() -> None:
    by_name = {t["name"]: risk_class_from_annotations(t.get("annotations"), name=t["name"],
                                                      description=t["description"])
               for t in BENIGN}
    assert by_name["read_file"] is READ
    assert by_name["get_current_time"] is READ
    assert by_name["write_file"] is WRITE
    assert by_name["send_email"] is EXTERNAL
    assert by_name["delete_entities"] is DESTRUCTIVE
    assert by_name["puppeteer_evaluate"] is RiskClass.CODE_EXECUTION
