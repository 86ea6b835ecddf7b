"""Throw-away TLS material (a trustme CA and a server certificate) for serving the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import trustme

from vbo_async._exceptions import ConfigError

__all__ = ["make_tls_material"]


def make_tls_material(
    directory: str | os.PathLike[str], *, hosts: Iterable[str] = ()
) -> tuple[Path, Path, Path]:
    """Write a new CA and a server certificate for ``127.0.0.1``, ``localhost`` and `hosts`
    (names or IP addresses, e.g. the address the simulator listens on).

    Returns ``(cert_path, key_path, ca_path)``: the certificate chain and private key for the
    server (e.g. uvicorn's ``ssl_certfile``/``ssl_keyfile``) and the CA certificate clients
    verify against (``ssl.create_default_context(cafile=ca_path)``).

    A bare str is refused (`ConfigError`), not iterated: ``hosts="vbohost"`` named ``v``,
    ``b``, ``o``, ... (and ``"vbo01.lab"`` failed on its ``.``); one host is ``hosts=("vbohost",)``.
    """
    if isinstance(hosts, str | bytes) or not isinstance(hosts, Iterable):
        raise ConfigError(
            f"hosts must be a collection of names or IP addresses (a tuple or list), got {hosts!r}"
        )
    names = tuple(dict.fromkeys(("127.0.0.1", "localhost", *hosts)))
    if not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"hosts must be names or IP addresses, got {hosts!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="vbo-async simulator")
    try:
        server = authority.issue_cert(*names)
    except ValueError as exc:  # idna's errors are ValueErrors
        raise ConfigError(f"hosts must be names or IP addresses: {exc}") from None
    cert_path = folder / "simulator-cert.pem"
    key_path = folder / "simulator-key.pem"
    ca_path = folder / "simulator-ca.pem"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    key_path.write_bytes(server.private_key_pem.bytes())
    ca_path.write_bytes(authority.cert_pem.bytes())
    return cert_path, key_path, ca_path
