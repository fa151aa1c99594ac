"""What to tell an operator when the broker connection fails, worded for the failure at hand
(refused, unknown host, TLS, login, protocol, timeout, a client id used twice). Pure text:
`treadmilld.mqtt.link` classifies aiomqtt's errors and hands over what it found.
"""

from __future__ import annotations

import socket
import ssl

from treadmilld.mqtt.config import MqttSettings

# What OpenSSL says when strict verification (VERIFY_X509_STRICT, on by default in Python
# 3.13's `ssl.create_default_context`) refuses a chain that lax verification accepts: a CA
# made with the usual `openssl req -x509` recipe, or a broker certificate signed without
# extensions. Matched lower-case against the error text.
_STRICT_X509_FAILURES = (
    "ca cert does not include key usage extension",
    "basic constraints of ca cert not marked critical",
    "missing authority key identifier",
    "missing subject key identifier",
    "key identifier marked critical",
    "path length given without key usage keycertsign",
    "key usage keycertsign invalid for non-ca cert",
    "empty subject alternative name extension",
)
STRICT_X509_HINT = (
    "TLS failed: the broker's CA or certificate lacks X.509 extensions that Python 3.13+ "
    "requires (strict verification); remake the CA and the broker's certificate with the "
    'recipe in docs/gym-broker.md, section "TLS certificates"'
)


def duplicate_client_id_hint(settings: MqttSettings) -> str:
    return (
        f"another client with the same client_id {settings.client_id!r} is connected to "
        f"{settings.host}:{settings.port}, and each connect makes the broker drop the other: "
        "set mqtt.instance (default: the host name, which cloned SD cards share) or "
        "mqtt.client_id to something unique per daemon; with use_username_as_clientid on the "
        "broker, give each daemon its own mqtt.username"
    )


def failure_hint(settings: MqttSettings, text: str, *, connect_refused: bool) -> str:
    """What to check, from the error's text; `connect_refused`: the broker answered the
    CONNECT with a refusal (a login or protocol problem, not the network)."""
    if connect_refused and "protocol" in text.lower():
        return 'the broker does not speak this MQTT version: set mqtt.protocol = "3.1.1"'
    if connect_refused:
        return (
            "the broker refused the login: check mqtt.username, the password "
            "(mqtt.password / mqtt.password_file) and the broker's password file"
        )
    if any(failure in text.lower() for failure in _STRICT_X509_FAILURES):
        return STRICT_X509_HINT
    if "CERTIFICATE" in text or "SSL" in text:
        return "TLS failed: check mqtt.tls.ca_file matches the broker's certificate and hostname"
    if "timed out" in text:
        checks = ["the port"]
        if settings.tls is None:
            checks.append("whether that listener wants TLS (set mqtt.tls)")
        if settings.protocol == "5":
            checks.append('whether the broker speaks MQTT v5 (else mqtt.protocol = "3.1.1")')
        return f"no MQTT answer from {settings.host}:{settings.port}: check " + ", ".join(checks)
    return f"check that a broker is running and reachable at {settings.host}:{settings.port}"


def connect_problem(
    settings: MqttSettings, cause: BaseException | None, text: str, *, otherwise: str
) -> str:
    """What to fix when connecting fails, from the socket error underneath (`cause`):
    refused (nothing listening), an unknown host name, a reset or a TLS handshake;
    `otherwise` (the `failure_hint`) for anything else."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(cause, ConnectionRefusedError):
        return (
            f"connection refused: no broker listens on {where}; start it "
            "(systemctl status mosquitto) or fix mqtt.host / mqtt.port"
        )
    if isinstance(cause, socket.gaierror):
        return f"the host name {settings.host!r} does not resolve; fix mqtt.host (or DNS)"
    if isinstance(cause, ConnectionResetError):
        mismatch = (
            "mqtt.tls is set: is this port the broker's TLS listener (usually 8883)?"
            if settings.tls is not None
            else "does this listener want TLS (set mqtt.tls) or another MQTT version?"
        )
        return f"{where} closed the connection while connecting; {mismatch}"
    if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"the TLS handshake with {where} failed ({cause}); check mqtt.tls and that this "
            "port is the broker's TLS listener"
        )
    if "timed out" in text:
        return (
            f"{otherwise}; or a firewall drops the packets (try: nc -vz {settings.host} "
            f"{settings.port})"
        )
    return otherwise
