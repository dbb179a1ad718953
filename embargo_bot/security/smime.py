"""S/MIME signing and encryption of composed MIME entities (RFC 8551).

Pure functions over bytes and certificates; reading the key and certificate
files is the only I/O. A stage's body is signed once (``sign_entity``), then
encrypted once per recipient (``encrypt_entity``): an envelope is per
recipient, so encrypted stages cannot share one body the way plain ones do.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from embargo_bot.domain.errors import ConfigError

KEY_SETTING = "EMBARGO_BOT_SMIME_KEY"
CERT_SETTING = "EMBARGO_BOT_SMIME_CERT"
_MIN_RSA_BITS = 2048  # NIST SP 800-131A: shorter RSA keys are disallowed for new encryption
_SIGNATURE_TYPE = b"application/pkcs7-signature"
# cryptography copies OpenSSL's old "x-" types; RFC 8551 3.5.3 wants the ones without.
_LEGACY_SIGNATURE_TYPE = b"application/x-pkcs7-signature"


@dataclass(frozen=True)
class Signer:
    certificate: x509.Certificate
    key: pkcs7.PKCS7PrivateKeyTypes
    # Intermediate CAs from the certificate file, sent so that partners can
    # build the path to a root they trust.
    chain: tuple[x509.Certificate, ...] = ()


def load_signer(key_path: Path, cert_path: Path, *, now: datetime | None = None) -> Signer:
    """Read an unencrypted PEM private key and a PEM certificate (then any intermediates).

    ``now`` defaults to the clock; the certificate must be valid then.
    """
    key_pem = _read_setting(KEY_SETTING, key_path)
    cert_pem = _read_setting(CERT_SETTING, cert_path)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError as exc:  # cryptography's signal for a password-protected key
        raise _problem(KEY_SETTING, key_path, "the key is encrypted; give it unencrypted") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _problem(KEY_SETTING, key_path, "not a PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise _problem(KEY_SETTING, key_path, "S/MIME signing needs an RSA or EC key")
    try:
        certificate, *chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise _problem(CERT_SETTING, cert_path, "not a PEM certificate") from exc
    if not _same_public_key(key, certificate):
        raise _problem(KEY_SETTING, key_path, f"does not match the certificate in {CERT_SETTING}")
    try:
        _check_validity(certificate, now or datetime.now(UTC))
        _check_email_protection(certificate)
    except ValueError as exc:
        raise _problem(CERT_SETTING, cert_path, str(exc)) from exc
    return Signer(certificate=certificate, key=key, chain=tuple(chain))


def sign_entity(entity: bytes, signer: Signer) -> bytes:
    """A multipart/signed entity whose first part is ``entity`` byte for byte."""
    _check_entity(entity)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity)
    builder = builder.add_signer(signer.certificate, signer.key, hashes.SHA256())
    # After set_data and add_signer: both drop certificates added before them
    # (cryptography 50 rebuilds the builder without them).
    for intermediate in signer.chain:
        builder = builder.add_certificate(intermediate)
    out = builder.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])

    head_end = out.index(b"\r\n\r\n") + 4
    parsed = email.message_from_bytes(out[:head_end])
    boundary = parsed.get_boundary()
    if parsed.get_content_type() != "multipart/signed" or boundary is None:
        raise ValueError("cryptography did not produce a multipart/signed entity")
    if parsed.get_param("micalg") != "sha-256":
        raise ValueError("cryptography did not sign with SHA-256")
    opening = b"--" + boundary.encode() + b"\r\n"
    start = out.index(opening, head_end) + len(opening)
    end = start + len(entity)
    separator = b"\r\n" + opening
    # The digest covers the input; a part that differs from it would not verify.
    if out[start:end] != entity or not out.startswith(separator, end):
        raise ValueError("the signed part is not the entity given")
    rest = out[end + len(separator) :]  # the signature part and the closing delimiter
    sig_head_end = rest.index(b"\r\n\r\n")
    sig_head = rest[:sig_head_end].replace(_LEGACY_SIGNATURE_TYPE, _SIGNATURE_TYPE)
    head = (
        b"MIME-Version: 1.0\r\nContent-Type: multipart/signed;\r\n"
        b' protocol="' + _SIGNATURE_TYPE + b'"; micalg=sha-256;\r\n'
        b' boundary="' + boundary.encode() + b'"\r\n\r\n'
    )
    return head + out[head_end:end] + separator + sig_head + rest[sig_head_end:]


def encrypt_entity(entity: bytes, certificate: x509.Certificate) -> bytes:
    """An application/pkcs7-mime enveloped-data entity (AES-256-CBC) for one recipient."""
    _check_entity(entity)
    out = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(entity)
        .add_recipient(certificate)
        # Rather than the default AES-128: cryptography offers only AES-CBC, and
        # AES-256-CBC is the stronger one every S/MIME client decrypts.
        .set_content_encryption_algorithm(algorithms.AES256)
        # Binary: the entity is already canonical CRLF, so enclose it unchanged.
        .encrypt(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.Binary])
    )
    if b"\r" in out:
        raise ValueError("cryptography's enveloped-data output is not LF-only as expected")
    # cryptography writes LF line endings here (unlike for signatures); SMTP needs CRLF.
    return out.replace(b"\n", b"\r\n")


def load_recipient_certificate(path: Path, address: str, *, now: datetime) -> x509.Certificate:
    """A recipient's PEM certificate, checked to be usable to encrypt to ``address`` at ``now``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"certificate {path} cannot be read ({exc.strerror})") from exc
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ValueError(f"certificate {path} is not a PEM certificate") from exc
    _check_validity(certificate, now)
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("certificate has a public key of an unknown type") from exc
    # PKCS7EnvelopeBuilder only does RSA key transport; EC recipients would need
    # key agreement, which it lacks.
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("certificate's key is not RSA; only RSA recipients are supported")
    if key.key_size < _MIN_RSA_BITS:
        raise ValueError(f"certificate's RSA key has {key.key_size} bits; need {_MIN_RSA_BITS}")
    addresses = _email_addresses(certificate)
    if address.lower() not in {found.lower() for found in addresses}:
        found = ", ".join(addresses) or "no email address"
        raise ValueError(f"certificate is for {found}, not {address}")
    return certificate


def _check_entity(entity: bytes) -> None:
    # The signed part must arrive unchanged (RFC 8551 3.1): 7-bit, so no relay
    # re-encodes it, and CRLF-only, so the part sent is the bytes digested
    # (cryptography and the email package rewrite bare CRs and LFs differently).
    if not entity.isascii():
        raise ValueError("the entity is not 7-bit ASCII")
    if not entity.count(b"\r") == entity.count(b"\n") == entity.count(b"\r\n"):
        raise ValueError("the entity has a bare CR or LF; lines must end in CRLF")


def _check_validity(certificate: x509.Certificate, now: datetime) -> None:
    if now.tzinfo is None:
        raise TypeError("now must be timezone-aware")
    if now < certificate.not_valid_before_utc:
        raise ValueError(
            f"certificate is not valid until {certificate.not_valid_before_utc:%F %T} UTC"
        )
    if now > certificate.not_valid_after_utc:
        raise ValueError(f"certificate expired on {certificate.not_valid_after_utc:%F %T} UTC")


def _check_email_protection(certificate: x509.Certificate) -> None:
    # Mail clients refuse a signature whose certificate limits its use to
    # something else (RFC 8550 4.4.4); no extension at all means any use.
    try:
        usage = _extensions(certificate).get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.EMAIL_PROTECTION not in usage:
        raise ValueError("certificate is not for email protection (extended key usage)")


def _email_addresses(certificate: x509.Certificate) -> list[str]:
    # RFC 8550 3: the subjectAltName rfc822Name, and the legacy emailAddress
    # attribute in the subject that older CAs still use instead.
    try:
        names = _extensions(certificate).get_extension_for_class(x509.SubjectAlternativeName).value
        addresses = names.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        addresses = []
    legacy = certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    return [*addresses, *(a.value for a in legacy if isinstance(a.value, str))]


def _extensions(certificate: x509.Certificate) -> x509.Extensions:
    try:
        return certificate.extensions  # parsed on first use
    except (ValueError, x509.DuplicateExtension) as exc:
        raise ValueError("certificate has malformed or duplicate extensions") from exc


def _problem(setting: str, path: Path, what: str) -> ConfigError:
    # Only the setting, the path and what is wrong: never the file's content.
    return ConfigError(f"{setting}={path}: {what}")


def _read_setting(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _problem(setting, path, f"cannot be read ({exc.strerror})") from exc


def _same_public_key(key: pkcs7.PKCS7PrivateKeyTypes, certificate: x509.Certificate) -> bool:
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return key.public_key().public_bytes(der, spki) == certificate.public_key().public_bytes(
            der, spki
        )
    except (ValueError, UnsupportedAlgorithm):  # a certificate key type cryptography cannot load
        return False
