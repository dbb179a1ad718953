"""S/MIME through the whole service: every message signed; listed certificates get it encrypted.

Checked with the real openssl, as a partner's mail client would.
"""

from __future__ import annotations

import email
import subprocess
from collections.abc import Callable
from email import policy
from pathlib import Path
from typing import Any

import pytest
from conftest import queue, running, stage_closed, wait_until
from test_smime import Pki, pki  # noqa: F401 - the test PKI fixture

from embargo_bot.app import open_app
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.packs import StageKind
from embargo_bot.lists.catalogue import load_lists
from embargo_bot.settings import Settings


def write_lists(directory: Path, certificates: Pki) -> None:
    (directory / "secure.yaml").write_text(
        "name: Police (encrypted)\n"
        "allowed_domains: [police.example]\n"
        "max_classification: OFFICIAL-SENSITIVE\n"
        "require_encryption: true\n"
        "recipients:\n"
        "  - email: comms@police.example\n"
        f"    smime_certificate: {certificates['comms.pem']}\n",
        encoding="utf-8",
    )
    (directory / "plain.yaml").write_text(
        "name: Police press\n"
        "allowed_domains: [police.example]\n"
        "max_classification: OFFICIAL-SENSITIVE\n"
        "recipients:\n"
        "  - email: press@police.example\n",
        encoding="utf-8",
    )


def openssl(*args: str | Path, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["/usr/bin/openssl", *map(str, args)], input=data, capture_output=True, check=False
    )


async def test_every_message_is_signed_and_listed_certificates_get_it_encrypted(
    pki: Pki,  # noqa: F811
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    lists_dir: Path,
) -> None:
    write_lists(lists_dir, pki)
    settings = make_settings(relay, smime_key=pki["ocu.key"], smime_cert=pki["ocu.pem"])
    with open_app(settings) as app:
        pack = queue(app, make_request(lists="secure,plain"))
        async with running(app):
            await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))

    notices: dict[str, Received] = {
        item.rcpt_tos[0]: item for item in relay.received if b"X-Embargo-Stage: notice" in item.data
    }
    plain, secure = notices["press@police.example"], notices["comms@police.example"]

    signed = email.message_from_bytes(plain.data, policy=policy.default)
    assert signed.get_content_type() == "multipart/signed"
    verified = openssl("smime", "-verify", "-CAfile", pki["ca.pem"], data=plain.data)
    assert verified.returncode == 0, verified.stderr
    assert b"Verification successful" in verified.stderr

    encrypted = email.message_from_bytes(secure.data, policy=policy.default)
    assert encrypted.get_content_type() == "application/pkcs7-mime"
    assert b"Kestrel-Harbour-7" not in secure.data and b"Quillwort" not in secure.data
    decrypted = openssl(
        "smime",
        "-decrypt",
        "-recip",
        pki["comms.pem"],
        "-inkey",
        pki["comms.key"],
        data=secure.data,
    )
    assert decrypted.returncode == 0, decrypted.stderr
    inner = openssl("smime", "-verify", "-CAfile", pki["ca.pem"], data=decrypted.stdout)
    assert inner.returncode == 0, inner.stderr
    # Both partners got the same signed pack, one of them sealed to their own key.
    assert inner.stdout == verified.stdout
    assert b"Kestrel-Harbour-7" in verified.stdout.replace(b"=\r\n", b"")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("  - email: comms@police.example\n", "has no smime_certificate"),
        ("  - email: comms@police.example\n    smime_certificate: {expired}\n", "expired"),
        ("  - email: comms@police.example\n    smime_certificate: {other}\n", "comms@police"),
        ("  - email: comms@police.example\n    smime_certificate: missing.pem\n", "missing"),
    ],
    ids=["missing", "expired", "someone else's", "unreadable"],
)
def test_lists_check_refuses_a_list_whose_certificates_will_not_do(
    pki: Pki,  # noqa: F811
    lists_dir: Path,
    entry: str,
    expected: str,
) -> None:
    (lists_dir / "secure.yaml").write_text(
        "name: Police (encrypted)\n"
        "allowed_domains: [police.example]\n"
        "max_classification: OFFICIAL-SENSITIVE\n"
        "require_encryption: true\n"
        "recipients:\n" + entry.format(expired=pki["expired.pem"], other=pki["other.pem"]),
        encoding="utf-8",
    )
    catalogue = load_lists(lists_dir)
    assert "secure" not in catalogue.lists
    [problem] = [p for p in catalogue.problems if p.path.name == "secure.yaml"]
    assert problem.line == 6
    assert expected in problem.message, problem.message
