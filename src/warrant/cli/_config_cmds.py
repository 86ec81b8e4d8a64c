"""`warrant config sign|verify`: configuration bundles signed by the trust domain."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization

from warrant import identity

from ._common import emit, home_option, json_option, opened

_TARGETS = click.argument("targets", nargs=-1, required=True,
                          type=click.Path(exists=True, path_type=Path))


@click.group("config")
def config_group() -> None:
    """Sign and verify configuration (policy directories, gateway configs, playbooks)."""


@config_group.command("sign")
@_TARGETS
@home_option
@json_option
def config_sign(targets: tuple[Path, ...], home: Path | None, as_json: bool) -> None:
    """Sign each TARGET (a directory's files, or one file) with the domain key.

    With `require_signed_config = true` in the domain's config.toml, Warrant
    refuses to start on unsigned or modified policies and gateway configs.
    """
    with opened(home) as domain:
        written = []
        for target in targets:
            path = identity.sign_bundle(domain.keys.signing_key, target)
            domain.record_admin("config.sign", {"target": str(target), "manifest": path.name})
            written.append({"target": str(target), "manifest": str(path)})
    emit(written, as_json, lambda: click.echo(
        "\n".join(f"signed {w['target']} -> {w['manifest']}" for w in written)))


@config_group.command("verify")
@_TARGETS
@home_option
@json_option
def config_verify(targets: tuple[Path, ...], home: Path | None, as_json: bool) -> None:
    """Check each TARGET against its signature; exit 2 with the difference if it changed."""
    with opened(home) as domain:
        results: list[tuple[Path, list[str], object]] = []
        for target in targets:
            manifest = identity.verify_bundle(domain.public_key, target)
            results.append((target, sorted(manifest["files"]), manifest.get("signed_at")))
    emit([{"target": str(t), "files": files, "signed_at": at} for t, files, at in results],
         as_json, lambda: click.echo(
             "\n".join(f"ok {t} ({len(files)} file(s))" for t, files, _ in results)))


@config_group.command("public-key")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the PEM to FILE (else stdout).")
@home_option
def config_public_key(out: Path | None, home: Path | None) -> None:
    """Print the domain's public signing key (PEM), to verify its signatures elsewhere.

    \b
    Anyone can check a signed bundle or compliance report with it, without the
    domain: `warrant compliance verify DIR --public-key FILE`.
    """
    with opened(home) as domain:
        pem = domain.public_key.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    if out is None:
        click.echo(pem, nl=False)
    else:
        out.write_text(pem, encoding="ascii")
        click.echo(f"wrote {out}", err=True)
