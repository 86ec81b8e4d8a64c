"""An acknowledged append survives the process being killed at any moment."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from warrant.audit import AuditLog
from warrant.store._audit import SqliteAuditBackend

from .conftest import ORIGIN

CHILD = """
import sys, threading
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from warrant.audit import AuditLog, AuditRecord
from warrant.store._audit import SqliteAuditBackend

key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[2]))
log = AuditLog(SqliteAuditBackend(sys.argv[1]), key, origin=sys.argv[3], durable=True)
lock = threading.Lock()

def worker(t):
    i = 0
    while True:
        seq = log.append(AuditRecord(kind="event", time="2025-01-01T00:00:00.000Z",
                                     decision_id=f"{t}-{i}"))
        with lock:
            sys.stdout.write(f"{seq}\\n")
            sys.stdout.flush()
        i += 1
        if i % 50 == 0 and t == 0:
            log.checkpoint()

for t in range(4):
    threading.Thread(target=worker, args=(t,), daemon=True).start()
threading.Event().wait()
"""

ACKS_BEFORE_KILL = 300
DEADLINE_S = 60.0


@pytest.mark.claim("audit.durable")
def test_every_acknowledged_seq_survives_sigkill(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), raw, ORIGIN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + DEADLINE_S
        while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert len(acked) >= ACKS_BEFORE_KILL, err.decode(errors="replace")[-2000:]

    log = AuditLog(SqliteAuditBackend(db_path), key, origin=ORIGIN)
    try:
        report = log.verify()
        assert report.checkpoints_checked >= 1
        assert max(acked) < report.size
        for seq in acked:
            log.get(seq)
    finally:
        log.close()
