"""Fixture deployments for the assessment: one deliberately weak, one deliberately strong.

Both are real trust domains on disk (real keys, policies, audit log, response
engine), built the way an operator would, so every check reads real evidence.

WEAK: long TTLs (within limits), no signed config, an allow-everything policy and
no data-flow rules, two agents sharing one key, output redaction of secrets
only, injection detector off, a gateway config with an embedded API key, an
unsandboxed local server and no spotlighting, no governance file, no git, the
response engine never run.

STRONG: short TTLs, signed policies and gateway config with
`require_signed_config = true`, one key and one certificate per agent, the
default policy pack, full redaction, the classifier selected, sandboxed local
servers with spotlighting, every declaration in governance.toml, the home in a
git work tree, a witnessed checkpoint, the response engine run, and a plan
decision recorded.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from warrant import identity
from warrant.config import CONFIG_FILE, render_config
from warrant.enforce import TrustDomain
from warrant.governance import collect_evidence, load_governance, mark_done
from warrant.governance._evidence import Evidence
from warrant.governance._governance_file import DECLARATIONS, GOVERNANCE_FILE
from warrant.governance._plan import open_store
from warrant.response import ResponseEngine

WEAK_GATEWAY = """
spotlight = "off"
[servers.files]
command = ["python", "-m", "files_server"]
unsafe_no_sandbox = true
env = { FILES_API_KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c" }
"""

STRONG_GATEWAY = """
spotlight = "datamark"
[servers.time]
command = ["warrant", "sandbox", "run", "--profile", "none-network", "--",
           "python", "-m", "mcp_server_time"]
[servers.search]
url = "https://mcp.example/search"
[limits]
call_timeout_s = 20
"""


@dataclass(frozen=True)
class Deployment:
    home: Path
    gateway_config: Path
    governance_file: Path

    def evidence(self) -> Evidence:
        with TrustDomain.open(self.home) as domain:
            declared = load_governance(self.governance_file)
            return collect_evidence(domain, governance=declared,
                                    gateway_config=self.gateway_config)


def _rewrite_config(home: Path, **settings: object) -> None:
    with TrustDomain.open(home) as domain:
        config = domain.config.model_copy(update=settings)
    (home / CONFIG_FILE).write_text(render_config(config), encoding="utf-8")


def build_weak(root: Path) -> Deployment:
    home = root / "weak" / "home"
    with TrustDomain.init(home, "weak.example") as domain:
        shared = identity.generate_key()
        for name in ("billing", "support"):
            domain.register_agent(name, owner="it", purpose="x", public_key=shared.public_key())
    (home / "policies" / "flow.cedar").unlink()
    (home / "policies" / "open.cedar").write_text(
        '@id("open.allow-everything")\npermit (principal, action, resource);\n',
        encoding="utf-8")
    _rewrite_config(home, credential_ttl_seconds=3600, warrant_ttl_seconds=86400,
                    audit_durability="normal", redact_output="secrets",
                    flow_injection_detector="off")
    gateway = root / "weak" / "gateway.toml"
    gateway.write_text(WEAK_GATEWAY, encoding="utf-8")
    return Deployment(home, gateway, home / GOVERNANCE_FILE)


def _governance_toml() -> str:
    return "".join(f'[{key}]\nowner = "user:alice"\ndocument = "https://wiki.example/ai/{key}"\n'
                   f'reviewed = "2025-01-15"\n\n' for key in DECLARATIONS)


def build_strong(root: Path) -> Deployment:
    base = root / "strong"
    base.mkdir(parents=True)
    if shutil.which("git") is None:
        pytest.skip("git is needed to put the strong deployment under version control")
    subprocess.run(["git", "init", "-q", str(base)], check=True)
    home = base / "home"
    gateway = base / "gateway.toml"
    gateway.write_text(STRONG_GATEWAY, encoding="utf-8")
    with TrustDomain.init(home, "strong.example") as domain:
        domain.register_agent("billing", owner="team-billing", purpose="pays supplier invoices")
        domain.issue_certificate("billing")
        identity.sign_bundle(domain.keys.signing_key, home / "policies")
        identity.sign_bundle(domain.keys.signing_key, gateway)
        engine = ResponseEngine(domain)
        engine.start()
        engine.stop()
        store = open_store(domain)
        try:
            mark_done(domain, store, "requirements.regulations", by="alice",
                      note="GDPR and EU AI Act apply")
        finally:
            store.close()
        domain.checkpoint()
    _rewrite_config(home, credential_ttl_seconds=300, warrant_ttl_seconds=900,
                    audit_durability="full", redact_output="secrets-and-pii",
                    flow_injection_detector="classifier", require_signed_config=True)
    (home / GOVERNANCE_FILE).write_text(_governance_toml(), encoding="utf-8")
    return Deployment(home, gateway, home / GOVERNANCE_FILE)


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return build_weak(tmp_path_factory.mktemp("governance"))


@pytest.fixture(scope="module")
def strong(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return build_strong(tmp_path_factory.mktemp("governance"))


@pytest.fixture(scope="module")
def weak_evidence(weak: Deployment) -> Evidence:
    return weak.evidence()


@pytest.fixture(scope="module")
def strong_evidence(strong: Deployment) -> Evidence:
    return strong.evidence()


Builder = Callable[[Path], Deployment]
