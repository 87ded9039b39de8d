"""The TLS workloads' certificate, made when first needed, and the contexts
that use it: the standard library's default contexts, held to TLS 1.3, so
every loop negotiates the same protocol and cipher suite."""

from __future__ import annotations

import functools
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

# The address the servers listen on, which the certificate names.
HOST = "127.0.0.1"


def missing() -> str | None:
    """Why no certificate can be made here, or None."""
    return None if shutil.which("openssl") else "openssl is not installed (apt-get install openssl)"


@functools.cache
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context): a fresh self-signed ECDSA P-256
    certificate for HOST, and a client that trusts it and checks the name."""
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "1", "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert, key)
        client = ssl.create_default_context(cafile=str(cert))
    for context in (server, client):
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    return server, client
