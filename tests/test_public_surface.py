"""The public surface of the core packages is pinned: a change here is a deliberate API change."""

from __future__ import annotations

import importlib

import pytest

SURFACES = {
    "warrant.audit": {
        "AuditBackend", "AuditLog", "AuditRecord", "Checkpoint", "ConsistencyProof",
        "EMPTY_ROOT", "Entry", "InclusionProof", "SCHEMA", "VerifyReport", "key_id",
        "leaf_hash", "node_hash", "root_from_leaf_hashes", "sign_checkpoint", "utc_now",
        "verify_checkpoint",
    },
    "warrant.policy": {
        "CompiledPolicy", "PolicyFinding", "PolicyRequest", "PolicyResult", "PolicyTestCase",
        "PolicyTestResult", "check_policies", "default_pack_sources", "default_pack_tests",
        "default_schema_text", "load_policy_set", "load_policy_tests", "run_policy_tests",
    },
    "warrant.warrants": {
        "Constraint", "Equals", "InRange", "MAX_DEPTH", "Matches", "OneOf", "Prefix",
        "Hop", "ToolGrant", "WARRANT_VERSION", "Warrant", "WarrantLayer", "attenuate_warrant",
        "describe_warrant", "mint_warrant", "parse_tool_spec", "validate_regex",
        "verify_warrant",
    },
    "warrant.gateway": {
        "BUILTIN_TOOLS", "MAX_INPUT_BYTES", "Catalogue", "HookAnswer", "answer_hook", "Gateway",
        "GatewayConfig", "HttpServer", "Limits", "StdioServer",
        "ToolDefinition", "exposed_name", "load_gateway_config", "parse_gateway_config",
        "run_gateway", "run_hook", "split_exposed_name", "guard_langchain_tool",
        "guard_openai_tool", "WarrantHttpAuth", "request_headers",
    },
    "warrant.identity": {
        "CLOCK_SKEW_SECONDS", "DEFAULT_TTL_SECONDS", "ENVELOPE_TYPE", "MAX_ENVELOPE_TTL_SECONDS",
        "MAX_TTL_SECONDS", "PASSPHRASE_ENV", "SealClaims", "open_envelope", "seal_envelope",
        "PROOF_WINDOW_SECONDS", "RISK_TIERS", "Credential", "DomainKeys", "IssuedCredential",
        "MemoryReplayGuard", "ProofClaims", "ReplayGuard", "agent_id_for", "is_person",
        "certificate_pem",
        "create_domain_keys", "generate_key", "issue_agent_certificate", "issue_credential",
        "jwk_thumbprint", "load_certificate", "load_domain_keys", "load_public_key_file",
        "make_proof", "manifest_path", "new_agent", "sign_bundle", "verify_bundle",
        "public_from_raw", "raw_private", "raw_public",
        "read_private_key", "token_digest", "verify_agent_certificate", "verify_credential",
        "verify_proof", "write_private_key",
    },
    "warrant.enforce": {
        "MEMORY_DB", "SCHEMA_FILE", "STATE_DB", "ApprovalRequired", "GuardedMemory", "CallContext",
        "CallRequest", "Denied", "Envelope", "Guard", "InboundMessage", "body_digest",
        "receive_message", "message_source", "egress_recorder", "current_session",
        "record_run", "sandboxed_tool",
        "GuardSession", "Pipeline", "SessionLedgers", "Stage", "TraceDataFlow", "TrustDomain",
        "current_traceparent", "default_stages", "instrument", "redact_arguments",
        "session_ledgers",
    },
    "warrant.flow": {
        "AFTER_INJECTION", "AFTER_REFUSAL", "CARRIES_PAYLOAD", "DATAMARK", "DEFAULT_LIMIT_CHARS",
        "DESTINATIONS",
        "DESTINATION_FROM_TEXT", "DESTINATION_INVENTED", "DESTINATION_UNVERIFIED",
        "FLOW_LABELS", "INJECTED", "INJECTED_ITEM", "INJECTED_RECORD", "LEDGER_INCOMPLETE",
        "SECRET",
        "TARGET_UNVERIFIED", "UNTRUSTED", "Atom",
        "Confidentiality", "FlowTrace", "Integrity", "Ledger", "Provenance", "SpanFinder",
        "SpotlightMode", "atoms", "normalise", "spotlight",
    },
    "warrant.memory": {
        "Authorizer", "Ed25519Signer", "HashLog", "LoggedHash", "MAX_CONTENT_BYTES",
        "MemoryDenied", "MemoryGuard", "MemoryGuardError", "MemoryIntegrityError", "MemoryItem",
        "MemoryNotFound", "MemoryQuarantined", "MemoryRefused", "NAMESPACE_KINDS", "Provenance",
        "RecordEvent", "Scanner", "SecretHit", "Signer", "SqliteMemoryStore", "Trust",
        "TtlPolicy", "VersionInfo", "check_key", "check_namespace", "find_secrets",
    },
    "warrant.governance": {
        "EVIDENCE_KINDS", "STATEMENT", "Assessment", "BomFormat", "ComplianceError", "Control",
        "ControlResult", "McpServerSpec", "ModelDeclaration", "Phase", "PlanStore", "Regime",
        "RequirementMapping", "Status", "Tier", "assess", "build_bom", "build_report",
        "catalogue", "collect_evidence", "declared_models", "load_governance",
        "load_model_declarations", "load_regime", "load_regimes", "mark_done", "next_actions",
        "phases", "plan_status", "regime_ids", "render_bom", "undo", "verify_report",
        "write_report",
    },
    "warrant.redteam": {
        "BENCHMARK_VERSION", "MODES", "MODE_LABELS", "ORDERS", "RISK_TABLE", "SUITE_NAMES",
        "Mode", "Order", "PlannedCall", "RedteamError", "Report", "Row", "RunResult", "Step",
        "agentdojo_available", "load_suite", "replay", "risk_of", "run_agentdojo", "summarise",
    },
    "warrant.sandbox": {
        "BUILTIN_PROFILES", "DEFAULT_PROFILE", "SandboxError", "SandboxLimits", "SandboxProfile",
        "SandboxProfileError", "SandboxRefused", "SandboxResult", "SandboxUnavailable",
        "SandboxViolation", "SandboxedCommand", "get_profile", "load_profiles",
        "parse_profiles", "program_binds", "run_sandboxed", "sandboxed_command",
        "EgressHook", "EgressRecord", "SandboxToolError", "call_in_sandbox", "landlock_status",
        "RunningSandbox", "kill_sandboxes", "register_sandbox", "running_sandboxes",
        "unregister_sandbox",
    },
    "warrant.a2a": {
        "ENVELOPE_EXTENSION", "GuardedExecutor", "GuardedRequestHandler", "SealingInterceptor",
        "delegating", "envelope_extension", "inbound_message", "ledger_source", "seal_message",
        "sealed_body",
    },
    "warrant.scanners": {"MAX_DESCRIPTION_CHARS", "DlpReport", "Finding", "InjectionDetector",
                         "InjectionVerdict", "SensitiveFinding", "Severity", "detect_injection",
                         "redact_sensitive", "risk_class_from_annotations", "scan_sensitive",
                         "scan_tool_definition", "inspect_sensitive", "finding_fingerprint"},
    "warrant.store": {"TOTAL", "Approval", "ApprovalStore", "Incident", "SqliteAuditBackend",
                      "SqliteIncidents", "SqlitePins", "SqliteStore", "StateStore", "ToolPin"},
}


@pytest.mark.parametrize("module_name", sorted(SURFACES))
def test_each_package_exports_exactly_its_documented_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert exported == SURFACES[module_name]
    assert all(hasattr(module, name) for name in exported)
