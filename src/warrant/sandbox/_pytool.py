"""Running one Python function in the sandbox (Guard tools that ask for `sandbox=`).

The function travels BY CODE, not by import: its compiled code object
(`marshal`), its defaults, and the globals it names: modules (imported again
inside), JSON values, plain functions of its own module (sent by code the same
way) and classes or functions of other modules (imported by name). Importing
the tool's own module inside would re-run its top level, which typically opens
the trust domain; by code, nothing of the host process goes in but what the
function names. Anything else (closures, open files, clients, keys) is refused
with the name that could not be sent, before anything runs.

Arguments go in on stdin as JSON; the result comes back as JSON on the
command's original stdout (the function's own prints go to stderr). Inside, the
bootstrap first applies Landlock file rules (`FS_RULES_SOURCE`). The
interpreter is the base system's `python3` when it is the same version as ours
(marshal's format is per minor version; it needs no extra binds), else ours.
"""

from __future__ import annotations

import base64
import json
import marshal
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from ._egress import EgressHook
from ._errors import SandboxError
from ._landlock import FS_RULES_SOURCE
from ._profile import SandboxProfile
from ._result import SandboxResult
from ._runner import run_sandboxed

_JSON_SCALARS = (str, int, float, bool, type(None))
_MAX_FUNCTIONS = 64


class SandboxToolError(SandboxError):
    """A sandboxed Python tool raised, or its result could not come back."""

    code = "sandbox.tool-failed"

    def __init__(self, message: str, *, result: SandboxResult):
        super().__init__(message, detail=result.stderr.decode(errors="replace")[-2000:])
        #: The run, with its violations (the caller records them).
        self.result = result


def call_in_sandbox(fn: Callable[..., Any], kwargs: Mapping[str, Any], profile: SandboxProfile,
                    *, on_egress: EgressHook | None = None) -> tuple[Any, SandboxResult]:
    """Run `fn(**kwargs)` in a sandbox from `profile`; returns (result, the run).

    Raises `SandboxError` when the function cannot be sent or the sandbox cannot
    be built (nothing ran), `SandboxToolError` when it ran and failed or was
    stopped; the run's violations are in the error's `result` either way.
    """
    request = {"fn": function_spec(fn), "kwargs": dict(kwargs), "path": _site_dirs()}
    try:
        payload = json.dumps(request).encode()
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"arguments of `{fn.__name__}` are not JSON: {exc}") from exc
    python = _interpreter()
    binds = tuple(dict.fromkeys((*profile.binds, *request["path"])))
    boxed = SandboxProfile(name=profile.name, network=profile.network,
                           allowed_hosts=profile.allowed_hosts, binds=binds,
                           workspace=profile.workspace, tmp_bytes=profile.tmp_bytes,
                           env_allowlist=profile.env_allowlist, limits=profile.limits)
    result = run_sandboxed([python, "-I", "-S", "-c", BOOTSTRAP], boxed, stdin=payload,
                           on_egress=on_egress)
    try:
        reply = json.loads(result.stdout) if result.killed_by is None else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        why = result.violations[0].detail if result.violations else (
            result.stderr.decode(errors="replace").strip()[-300:] or f"exit {result.exit_code}")
        raise SandboxToolError(f"sandboxed tool `{fn.__name__}` did not complete: {why}",
                               result=result)
    if not reply.get("ok"):
        raise SandboxToolError(f"sandboxed tool `{fn.__name__}` raised {reply.get('error')}: "
                               f"{reply.get('message')}", result=result)
    return reply.get("result"), result


def function_spec(fn: Callable[..., Any]) -> dict[str, Any]:
    """What rebuilds `fn` inside the sandbox; raises `SandboxError` naming what cannot go.

    `fn` and the functions of its module it reaches are rebuilt in ONE namespace
    (like their module's), so helpers and recursion resolve as they did here.
    """
    entry = _plain(fn)
    functions: dict[str, dict[str, Any]] = {}
    env: dict[str, dict[str, Any]] = {}
    pending = [entry]
    while pending:
        current = pending.pop()
        if current.__name__ in functions:
            continue
        functions[current.__name__] = {
            "code": base64.b64encode(marshal.dumps(current.__code__)).decode(),
            "defaults": _json_value(current, "defaults", current.__defaults__),
            "kwdefaults": _json_value(current, "keyword defaults", current.__kwdefaults__)}
        for name in sorted(_names(current.__code__)):
            if name in env or name in functions or name not in current.__globals__:
                continue  # done, a builtin, an attribute name, or a local
            value = current.__globals__[name]
            inner = getattr(value, "__wrapped__", value)
            if isinstance(inner, types.FunctionType) and inner.__module__ == entry.__module__:
                pending.append(_plain(inner))
                if inner.__name__ != name:
                    env[name] = {"alias": inner.__name__}
                continue
            env[name] = _global_spec(current, name, value)
        if len(functions) > _MAX_FUNCTIONS:
            raise SandboxError(f"`{entry.__name__}` reaches more than {_MAX_FUNCTIONS} "
                               "functions of its module; too many to send")
    return {"module": entry.__module__, "entry": entry.__name__, "functions": functions,
            "globals": env}


def _plain(fn: Callable[..., Any]) -> types.FunctionType:
    fn = getattr(fn, "__wrapped__", fn)
    if not isinstance(fn, types.FunctionType):
        raise SandboxError(f"`{fn!r}` is not a plain Python function; it cannot be sandboxed")
    if fn.__closure__:
        raise SandboxError(f"sandboxed tool `{fn.__name__}` is a closure (it captures "
                           f"{', '.join(fn.__code__.co_freevars)}); define it at module level")
    return fn


def _global_spec(fn: types.FunctionType, name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, types.ModuleType):
        return {"import": value.__name__}
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType) and \
            getattr(value, "__module__", None) not in (None, fn.__module__, "__main__"):
        return {"from": value.__module__, "attr": value.__qualname__}
    return {"value": _json_value(fn, f"global `{name}`", value)}


def _json_value(fn: types.FunctionType, what: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise SandboxError(
            f"sandboxed tool `{fn.__name__}` uses {what} ({type(value).__name__}), which cannot "
            "be sent into the sandbox; pass it as an argument or import it inside the function"
        ) from None
    return value


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _interpreter() -> str:
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is not None and _version(system) == sys.version_info[:2]:
        return system
    return os.path.realpath(sys.executable)


_VERSIONS: dict[str, tuple[int, int] | None] = {}


def _version(python: str) -> tuple[int, int] | None:
    if python not in _VERSIONS:
        try:
            out = subprocess.run([python, "-I", "-S", "-c",  # noqa: S603 - fixed argv
                                  "import sys; print(*sys.version_info[:2])"],
                                 capture_output=True, timeout=10, check=True).stdout.split()
            _VERSIONS[python] = (int(out[0]), int(out[1]))
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            _VERSIONS[python] = None
    return _VERSIONS[python]


def _site_dirs() -> list[str]:
    """Our site-packages (third-party modules the tool may import), bound read-only."""
    return [p for p in dict.fromkeys(sys.path) if p.endswith("-packages") and os.path.isdir(p)
            and not p.startswith(("/usr/", "/lib"))]


#: Runs inside: Landlock file rules, then rebuild the function and call it.
BOOTSTRAP = FS_RULES_SOURCE + r'''
import base64, builtins, importlib, json, marshal, os, sys, types
_warrant_landlock_fs()
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr
request = json.loads(sys.stdin.read())
sys.path[len(sys.path):] = request["path"]

def build(spec):
    env = {"__builtins__": builtins, "__name__": spec["module"]}
    for name, f in spec["functions"].items():
        code = marshal.loads(base64.b64decode(f["code"]))
        fn = types.FunctionType(code, env, name,
                                tuple(f["defaults"]) if f["defaults"] else None)
        fn.__kwdefaults__ = f["kwdefaults"]
        env[name] = fn
    for name, g in spec["globals"].items():
        if "import" in g:
            env[name] = importlib.import_module(g["import"])
        elif "alias" in g:
            env[name] = env[g["alias"]]
        elif "from" in g:
            obj = importlib.import_module(g["from"])
            for part in g["attr"].split("."):
                obj = getattr(obj, part)
            env[name] = obj
        else:
            env[name] = g["value"]
    return env[spec["entry"]]

try:
    reply = {"ok": True, "result": build(request["fn"])(**request["kwargs"])}
    text = json.dumps(reply)
except BaseException as exc:
    text = json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)[:2000]})
out.write(text)
out.flush()
'''
