"""The server's TLS context, from a certificate file and a key file. Framework-free."""

from __future__ import annotations

import ssl
from pathlib import Path


class TLSConfigError(ValueError):
    """The certificate or key cannot be used; ``str()`` is one line naming the file and why."""


def _readable(kind: str, path: str) -> None:
    try:
        with Path(path).open("rb"):
            pass
    except OSError as e:
        raise TLSConfigError(f"cannot read the TLS {kind} file {path}: {e.strerror}") from e



def server_context(certfile: str, keyfile: str = "") -> ssl.SSLContext:
    """A server-side context accepting TLS 1.2 and later, with ``certfile``'s chain.

    ``keyfile`` may be empty when the key is in ``certfile``. Raises
    TLSConfigError if a file is missing or unreadable, is not a certificate
    or key, the two do not match, or the key needs a passphrase (a server
    must never wait for one on its terminal).
    """
    if not certfile:
        raise TLSConfigError("a TLS keyfile is set but no certfile")
    _readable("certificate", certfile)
    if keyfile:
        _readable("key", keyfile)
    files = f"{certfile} and {keyfile}" if keyfile else certfile

    def no_passphrase() -> str:
        raise TLSConfigError(
            f"the TLS key in {keyfile or certfile} is encrypted; "
            "give the server an unencrypted key (readable by it only)"
        )

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile or None, password=no_passphrase)
    except ssl.SSLError as e:
        if e.reason == "KEY_VALUES_MISMATCH":
            why = "the key does not belong to the certificate"
        else:
            why = "expected a PEM certificate (chain) and its PEM private key"
        raise TLSConfigError(f"cannot use the TLS certificate and key in {files}: {why}") from e
    return context
