"""The versioned record schema: canonical bytes in, the same record out, anything else rejected."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warrant.audit import SCHEMA, AuditRecord, utc_now
from warrant.errors import AuditIntegrityError
from warrant.types import Decision, Effect, Reason, canonical_json

from .conftest import make_record


def test_a_record_round_trips_through_its_canonical_bytes() -> None:
    record = make_record(7)
    data = record.to_bytes()
    assert json.loads(data)["schema"] == SCHEMA
    assert AuditRecord.from_bytes(data) == record
    assert AuditRecord.from_bytes(data).to_bytes() == data


def test_an_outcome_record_carries_status_and_summary() -> None:
    record = AuditRecord(
        kind="outcome",
        time=utc_now(),
        decision_id="dec-1",
        outcome={"status": "error", "result_digest": "00" * 32, "summary": "timeout"},
    )
    assert AuditRecord.from_bytes(record.to_bytes()) == record


def test_a_decision_value_becomes_a_decision_record() -> None:
    decision = Decision(
        effect=Effect.DENY,
        reasons=(Reason("policy.forbid", "forbidden", "policy"),),
        decision_id="dec-9",
        policy_revision="rev-2",
        latency_us=41.26,
        tool="shell.exec",
        agent="spiffe://d/agent/a",
    )
    record = AuditRecord.for_decision(
        decision, argument_digest="cd" * 32, arguments_redacted={"cmd": "[redacted]"},
        detail={"credential": "expired"},
    )  # fmt: skip
    assert record.effect == "deny"
    assert record.reasons[0]["code"] == "policy.forbid"
    assert AuditRecord.from_bytes(record.to_bytes()) == record


def test_records_are_frozen_all_the_way_down() -> None:
    record = make_record(1)
    with pytest.raises(TypeError):
        record.arguments_redacted["path"] = "/etc/shadow"  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "gossip"},
        {"time": "yesterday"},
        {"outcome": {"status": "maybe"}},
        {"reasons": ({"code": "x"},)},
        {"latency_us": True},
        {"effect": 3},
    ],
)
def test_an_invalid_record_cannot_be_built(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"kind": "event", "time": utc_now()}
    fields.update(kwargs)
    with pytest.raises((ValueError, TypeError)):
        AuditRecord(**fields)  # type: ignore[arg-type]


def _with(data: bytes, **changes: object) -> bytes:
    obj = json.loads(data)
    obj.update(changes)
    return canonical_json(obj)


@pytest.mark.claim("audit.tamper-evident")
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"{not json",
        b'{"latency_us": NaN}',
        b"[" * 100_000,
        _with(make_record(1).to_bytes(), schema="warrant.audit/v2"),
        _with(make_record(1).to_bytes(), extra=1),
        _with(make_record(1).to_bytes(), kind="gossip"),
        make_record(1).to_bytes().replace(b",", b", ", 1),  # valid JSON, not canonical
    ],
)
def test_malformed_record_bytes_raise_an_integrity_error(data: bytes) -> None:
    with pytest.raises(AuditIntegrityError):
        AuditRecord.from_bytes(data)


def test_an_unknown_schema_version_is_named_in_the_error() -> None:
    data = _with(make_record(1).to_bytes(), schema="warrant.audit/v9")
    with pytest.raises(AuditIntegrityError, match=r"warrant\.audit/v9"):
        AuditRecord.from_bytes(data)


@pytest.mark.claim("audit.tamper-evident")
@given(st.binary(max_size=512))
def test_parsing_random_bytes_only_ever_raises_an_integrity_error(data: bytes) -> None:
    with contextlib.suppress(AuditIntegrityError):
        AuditRecord.from_bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from([*sorted(AuditRecord.__dataclass_fields__), "schema"]), json_values
    )
)
def test_parsing_json_objects_of_record_shape_only_ever_raises_an_integrity_error(
    fields: dict[str, object],
) -> None:
    obj = json.loads(make_record(3).to_bytes())
    obj.update(fields)
    try:
        data = canonical_json(obj)
    except ValueError:
        return  # not encodable (lone surrogates): cannot be stored either
    with contextlib.suppress(AuditIntegrityError):
        assert AuditRecord.from_bytes(data).to_bytes() == data
