"""S/MIME signing and encryption, checked with the real openssl command.

cryptography has no public API to verify a signature or open an envelope made
this way, and a receiving mail client is what matters anyway, so OpenSSL
(what many clients use underneath) is the judge here.
"""

from __future__ import annotations

import email
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from embargo_bot.domain.errors import ConfigError
from embargo_bot.security.smime import (
    CERT_SETTING,
    KEY_SETTING,
    Signer,
    encrypt_entity,
    load_recipient_certificate,
    load_signer,
    sign_entity,
)

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
SENDER = "ocu@example.org"
RECIPIENT = "comms@police.example"
# What the mailer puts in front of a stage's body: header lines of the outer message.
OUTER_HEADERS = (
    b"From: Operational Communications <ocu@example.org>\r\n"
    b"To: comms@police.example\r\n"
    b"Subject: Embargoed: annual report\r\n"
)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _name(common_name: str, email_attribute: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if email_attribute is not None:
        attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email_attribute))
    return x509.Name(attributes)


def _ca(
    name: str, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None, issuer_key: PrivateKey
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(issuer.subject if issuer else _name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf(
    key: PrivateKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    *,
    address: str | None,
    subject_email: str | None = None,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.EMAIL_PROTECTION,
    not_before: datetime = NOW - DAY,
    not_after: datetime = NOW + 365 * DAY,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(address or "legacy", subject_email))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if address is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(address)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    """A CA, its certificates and keys, written as files under ``directory``."""

    directory: Path
    certificates: dict[str, x509.Certificate]

    def __getitem__(self, file_name: str) -> Path:
        return self.directory / file_name


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca_key, issuing_key, ocu_key, comms_key, other_key = (_rsa() for _ in range(5))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca("Test Root CA", ca_key, None, ca_key)
    issuing = _ca("Test Issuing CA", issuing_key, ca, ca_key)
    certificates = {
        "ca.pem": ca,
        "ocu.pem": _leaf(ocu_key, ca, ca_key, address=SENDER),
        "ocu-issued.pem": _leaf(ocu_key, issuing, issuing_key, address=SENDER),
        "ocu-ec.pem": _leaf(ec_key, ca, ca_key, address=SENDER),
        "ocu-expired.pem": _leaf(
            ocu_key, ca, ca_key, address=SENDER, not_before=NOW - 30 * DAY, not_after=NOW - DAY
        ),
        "ocu-tls.pem": _leaf(
            ocu_key, ca, ca_key, address=SENDER, usage=ExtendedKeyUsageOID.SERVER_AUTH
        ),
        "comms.pem": _leaf(comms_key, ca, ca_key, address=RECIPIENT),
        "expired.pem": _leaf(
            comms_key, ca, ca_key, address=RECIPIENT, not_before=NOW - 30 * DAY, not_after=NOW - DAY
        ),
        "future.pem": _leaf(
            comms_key, ca, ca_key, address=RECIPIENT, not_before=NOW + DAY, not_after=NOW + 9 * DAY
        ),
        "other.pem": _leaf(other_key, ca, ca_key, address="press@police.example"),
        "ec.pem": _leaf(ec_key, ca, ca_key, address=RECIPIENT),
        "small.pem": _leaf(_rsa(1024), ca, ca_key, address=RECIPIENT),
        "legacy.pem": _leaf(
            other_key, ca, ca_key, address=None, subject_email="Desk@Police.Example"
        ),
    }
    directory = tmp_path_factory.mktemp("pki")
    for file_name, certificate in certificates.items():
        (directory / file_name).write_bytes(_pem([certificate]))
    (directory / "ocu-chain.pem").write_bytes(_pem([certificates["ocu-issued.pem"], issuing]))
    keys: dict[str, PrivateKey] = {
        "ocu.key": ocu_key,
        "ocu-ec.key": ec_key,
        "comms.key": comms_key,
        "other.key": other_key,
    }
    for file_name, key in keys.items():
        (directory / file_name).write_bytes(_key_pem(key))
    (directory / "ocu-locked.key").write_bytes(_key_pem(ocu_key, b"correct horse"))
    (directory / "not-pem.pem").write_bytes(
        certificates["comms.pem"].public_bytes(serialization.Encoding.DER)
    )
    return Pki(directory, certificates)


@pytest.fixture(scope="module")
def entity() -> bytes:
    """A stage body as compose.py makes one: text and HTML alternatives and a PDF."""
    message = EmailMessage(policy=policy.SMTP)
    # "From " at a line start and non-ASCII text: what transports like to rewrite.
    message.set_content(
        "From the OCU: embargoed until 00:01 on Thursday.\nDétails in the PDF.\n",
        cte="quoted-printable",
    )
    message.add_alternative(
        "<p>From the OCU: embargoed until 00:01 on Thursday.</p><p>Détails.</p>\n",
        subtype="html",
        cte="quoted-printable",
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="report.pdf")
    flat = bytes(message)
    assert flat.startswith(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed;")
    return flat


@pytest.fixture(scope="module")
def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.skip("the openssl command is not installed")
    return found


def _run(openssl: str, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([openssl, *map(str, args)], capture_output=True, check=False, timeout=30)


def _verify(openssl: str, pki: Pki, message: bytes, tmp_path: Path) -> tuple[int, bytes, bytes]:
    """openssl's exit status, stderr and the content it says was signed."""
    (tmp_path / "in.eml").write_bytes(message)
    out = tmp_path / "verified.out"
    out.unlink(missing_ok=True)
    result = _run(
        openssl, "smime", "-verify", "-in", tmp_path / "in.eml", "-CAfile", pki["ca.pem"],
        "-out", out,
    )  # fmt: skip
    return result.returncode, result.stderr, out.read_bytes() if out.exists() else b""


def _assert_7bit_crlf(data: bytes) -> None:
    assert data.isascii()
    assert data.count(b"\r") == data.count(b"\n") == data.count(b"\r\n")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998  # RFC 5322 2.1.1


@pytest.fixture(scope="module")
def signer(pki: Pki) -> Signer:
    return load_signer(pki["ocu.key"], pki["ocu.pem"])


# Signing


@pytest.mark.parametrize(
    ("key", "certificate"),
    [
        ("ocu.key", "ocu.pem"),
        ("ocu-ec.key", "ocu-ec.pem"),
        # Issued by an intermediate that only the signature carries: openssl is
        # given the root alone, so this fails unless the chain is sent.
        ("ocu.key", "ocu-chain.pem"),
    ],
)
def test_signed_entity_verifies_and_carries_the_entity_exactly(
    openssl: str, pki: Pki, entity: bytes, tmp_path: Path, key: str, certificate: str
) -> None:
    signed = sign_entity(entity, load_signer(pki[key], pki[certificate]))

    status, stderr, content = _verify(openssl, pki, OUTER_HEADERS + signed, tmp_path)

    assert status == 0, stderr
    assert b"Verification successful" in stderr
    # openssl writes the signed part as it found it, CRLF included (it would
    # strip CRs only with -text), so the comparison is byte for byte.
    assert content == entity


def test_signed_entity_is_multipart_signed_with_the_entity_as_first_part(
    signer: Signer, entity: bytes
) -> None:
    signed = sign_entity(entity, signer)

    message = email.message_from_bytes(signed, policy=policy.default)
    assert message.get_content_type() == "multipart/signed"
    assert message.get_param("protocol") == "application/pkcs7-signature"
    assert message.get_param("micalg") == "sha-256"
    boundary = message.get_boundary()
    assert boundary is not None
    delimiter = f"\r\n--{boundary}\r\n".encode()
    assert signed.split(delimiter)[1] == entity
    first, signature = message.iter_parts()
    assert first["Content-Type"].startswith("multipart/mixed")
    assert signature.get_content_type() == "application/pkcs7-signature"
    _assert_7bit_crlf(signed)


def test_a_changed_byte_in_the_signed_part_fails_verification(
    openssl: str, pki: Pki, signer: Signer, entity: bytes, tmp_path: Path
) -> None:
    signed = bytearray(OUTER_HEADERS + sign_entity(entity, signer))
    at = signed.index(entity) + len(entity) // 2
    while not chr(signed[at]).isalnum():
        at += 1
    signed[at] = ord("A") if signed[at] != ord("A") else ord("B")

    status, stderr, _ = _verify(openssl, pki, bytes(signed), tmp_path)

    # openssl still writes the content to -out when verification fails: only
    # the exit status and stderr tell.
    assert status != 0
    assert b"Verification failure" in stderr
    assert b"digest failure" in stderr


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (b"MIME-Version: 1.0\nContent-Type: text/plain\n\nLF only\n", "bare CR or LF"),
        (b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncaf\xc3\xa9\r\n", "7-bit"),
    ],
)
def test_an_entity_that_would_not_arrive_unchanged_is_refused(
    signer: Signer, pki: Pki, bad: bytes, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        sign_entity(bad, signer)
    with pytest.raises(ValueError, match=words):
        encrypt_entity(bad, pki.certificates["comms.pem"])


# Encryption


def test_encrypted_entity_decrypts_to_the_signed_entity_which_still_verifies(
    openssl: str, pki: Pki, signer: Signer, entity: bytes, tmp_path: Path
) -> None:
    signed = sign_entity(entity, signer)
    recipient = load_recipient_certificate(pki["comms.pem"], RECIPIENT, now=NOW)
    encrypted = encrypt_entity(signed, recipient)
    (tmp_path / "encrypted.eml").write_bytes(OUTER_HEADERS + encrypted)

    result = _run(
        openssl, "smime", "-decrypt", "-in", tmp_path / "encrypted.eml",
        "-recip", pki["comms.pem"], "-inkey", pki["comms.key"], "-out", tmp_path / "decrypted",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "decrypted").read_bytes() == signed
    status, stderr, content = _verify(openssl, pki, OUTER_HEADERS + signed, tmp_path)
    assert (status, content) == (0, entity), stderr


def test_encrypted_entity_is_aes_256_enveloped_data_in_7bit_crlf(
    openssl: str, pki: Pki, entity: bytes, tmp_path: Path
) -> None:
    encrypted = encrypt_entity(entity, pki.certificates["comms.pem"])
    (tmp_path / "encrypted.eml").write_bytes(OUTER_HEADERS + encrypted)

    printed = _run(openssl, "cms", "-cmsout", "-print", "-in", tmp_path / "encrypted.eml")

    assert printed.returncode == 0, printed.stderr
    assert b"aes-256-cbc" in printed.stdout
    message = email.message_from_bytes(encrypted, policy=policy.default)
    assert message.get_content_type() == "application/pkcs7-mime"
    assert message.get_param("smime-type") == "enveloped-data"
    assert message["Content-Transfer-Encoding"] == "base64"
    _assert_7bit_crlf(encrypted)


def test_another_recipient_cannot_decrypt(
    openssl: str, pki: Pki, entity: bytes, tmp_path: Path
) -> None:
    encrypted = encrypt_entity(entity, pki.certificates["comms.pem"])
    (tmp_path / "encrypted.eml").write_bytes(OUTER_HEADERS + encrypted)
    out = tmp_path / "decrypted"

    result = _run(
        openssl, "smime", "-decrypt", "-in", tmp_path / "encrypted.eml",
        "-recip", pki["other.pem"], "-inkey", pki["other.key"], "-out", out,
    )  # fmt: skip

    assert result.returncode != 0
    assert not out.exists() or b"From the OCU" not in out.read_bytes()


# Loading the signing key and certificate


def test_signer_loads_a_matching_key_and_certificate(pki: Pki) -> None:
    signer = load_signer(pki["ocu.key"], pki["ocu.pem"])

    assert signer.certificate == pki.certificates["ocu.pem"]
    assert signer.chain == ()
    assert isinstance(signer.key, rsa.RSAPrivateKey)


def test_signer_keeps_the_intermediates_that_follow_the_certificate(pki: Pki) -> None:
    signer = load_signer(pki["ocu.key"], pki["ocu-chain.pem"])

    assert signer.certificate == pki.certificates["ocu-issued.pem"]
    assert [c.subject for c in signer.chain] == [_name("Test Issuing CA")]


@pytest.mark.parametrize(
    ("key", "certificate", "setting", "words"),
    [
        ("missing.key", "ocu.pem", KEY_SETTING, "cannot be read"),
        ("ocu.key", "missing.pem", CERT_SETTING, "cannot be read"),
        ("not-pem.pem", "ocu.pem", KEY_SETTING, "not a PEM private key"),
        ("ocu.pem", "ocu.pem", KEY_SETTING, "not a PEM private key"),
        ("ocu.key", "not-pem.pem", CERT_SETTING, "not a PEM certificate"),
        # The key given as the certificate too: its text must not be echoed.
        ("ocu.key", "ocu.key", CERT_SETTING, "not a PEM certificate"),
        ("ocu-locked.key", "ocu.pem", KEY_SETTING, "encrypted"),
        ("comms.key", "ocu.pem", KEY_SETTING, "does not match"),
        ("ocu.key", "ocu-expired.pem", CERT_SETTING, "expired"),
        ("ocu.key", "ocu-tls.pem", CERT_SETTING, "not for email protection"),
    ],
)
def test_signer_problems_name_the_setting_and_never_the_key(
    pki: Pki, key: str, certificate: str, setting: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_signer(pki[key], pki[certificate])

    message = str(caught.value)
    assert message.startswith(f"{setting}={pki[key if setting == KEY_SETTING else certificate]}:")
    assert words in message
    # Neither the message nor the chained cause (which may reach a log) holds key text.
    told = message + repr(caught.value.__cause__)
    for key_file in ("ocu.key", "ocu-ec.key", "comms.key", "ocu-locked.key"):
        key_lines = pki[key_file].read_text().splitlines()
        assert not any(line in told for line in key_lines)


def test_signer_certificate_is_checked_at_the_time_given(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="not valid until"):
        load_signer(pki["ocu.key"], pki["ocu.pem"], now=NOW - 2 * DAY)


# Loading recipients' certificates


@pytest.mark.parametrize(
    ("file_name", "address"),
    [
        ("comms.pem", RECIPIENT),
        ("comms.pem", "Comms@Police.EXAMPLE"),
        # No subjectAltName: the subject's emailAddress is what older CAs used.
        ("legacy.pem", "desk@police.example"),
    ],
)
def test_recipient_certificate_matching_the_address_loads(
    pki: Pki, file_name: str, address: str
) -> None:
    certificate = load_recipient_certificate(pki[file_name], address, now=NOW)

    assert certificate == pki.certificates[file_name]


@pytest.mark.parametrize(
    ("file_name", "words"),
    [
        ("missing.pem", "cannot be read"),
        ("not-pem.pem", "is not a PEM certificate"),
        ("expired.pem", "expired on"),
        ("future.pem", "not valid until"),
        ("other.pem", "is for press@police.example, not comms@police.example"),
        ("ec.pem", "not RSA"),
        ("small.pem", "1024 bits"),
    ],
)
def test_recipient_certificate_problems_say_which_check_failed(
    pki: Pki, file_name: str, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        load_recipient_certificate(pki[file_name], RECIPIENT, now=NOW)


def test_recipient_certificate_needs_an_aware_time(pki: Pki) -> None:
    with pytest.raises(TypeError, match="timezone-aware"):
        load_recipient_certificate(pki["comms.pem"], RECIPIENT, now=NOW.replace(tzinfo=None))
