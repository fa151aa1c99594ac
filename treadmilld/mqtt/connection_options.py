"""What a broker connection is opened with, apart from the client library: the TLS context
built from `mqtt.tls`, and the socket options.

`treadmilld.mqtt.link` hands these to aiomqtt for the daemon's connection and for
`treadmilld diagnose`'s round trip, so both connect alike.
"""

from __future__ import annotations

import socket
import ssl

from treadmilld.mqtt.config import MqttSettings

# Commands and replies are tiny: without TCP_NODELAY, Nagle's algorithm (RFC 896) holds a small
# write until the peer's delayed ACK (RFC 1122 section 4.2.3.2; about 40 ms on Linux) arrives,
# which an emergency stop should not pay on every round trip.
LOW_LATENCY_SOCKET_OPTIONS = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The client's TLS context (None without `mqtt.tls`): the system's or the configured CA,
    TLS 1.2 at least, and the client certificate when one is configured.

    Raises `MqttCredentialError`, `ssl.SSLError` or `OSError` for unreadable or unusable
    files; the message names the file."""
    if settings.tls is None:
        return None
    ca_file, cert_file, key_file = settings.tls.resolved()
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context
