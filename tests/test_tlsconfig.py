"""``tls_server_config``: every exporter-toolkit key, with real handshakes against the real app on
loopback; a value Python's ``ssl`` cannot honour stops start-up with one line naming it."""

from __future__ import annotations

import ipaddress
import ssl
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from exporter.cli import EXIT_CONFIG_ERROR, main
from exporter.tlsconfig import CIPHER_SUITES, TLS13_CIPHER_SUITES
from tests.tls_support import (
    Authority,
    Issued,
    client_context,
    exchange,
    get,
    serving,
    tls_yaml,
    write_web_config,
)

if TYPE_CHECKING:
    from pathlib import Path

OK = "HTTP/1.1 200 OK"
REFUSED = "refused"
# IANA code points of Go's cipher suite names (RFC 4492, 5289, 7905): OpenSSL must map each name
# in CIPHER_SUITES to the same suite, or a config would silently select another one.
IANA_IDS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": 0xC009,
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": 0xC00A,
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": 0xC013,
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": 0xC014,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 0xC02B,
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": 0xC02C,
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 0xC02F,
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": 0xC030,
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA8,
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA9,
}


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


@pytest.fixture
def server(ca: Authority) -> Issued:
    return ca.issue("server")


async def outcome(port: int, context: ssl.SSLContext) -> str:
    """The status line of GET /healthz, or ``REFUSED`` when the TLS exchange is turned down."""
    try:
        _, _, status = await exchange(port, context)
    except (ssl.SSLError, ConnectionError):
        return REFUSED
    return status or REFUSED


def block(key: str, text: str) -> str:
    """``key: |`` and ``text`` indented under it, for inline PEM in the YAML."""
    lines = "".join(f"    {line}\n" for line in text.splitlines())
    return f"  {key}: |\n{lines}"


@pytest.mark.integration
async def test_cert_and_key_files(tmp_path: Path, ca: Authority, server: Issued) -> None:
    web_config = write_web_config(tmp_path, tls_yaml(server))
    async with serving(web_config) as port:
        version, _, status = await exchange(port, client_context(ca.cert))
    assert (version, status) == ("TLSv1.3", OK)


@pytest.mark.integration
async def test_inline_cert_key_and_client_ca(tmp_path: Path, ca: Authority) -> None:
    """``cert``, ``key`` and ``client_ca`` as PEM text in the file, as newer toolkits take them."""
    server = ca.issue("server")
    client = ca.issue("client", client=True)
    text = (
        "tls_server_config:\n"
        + block("cert", server.cert.read_text(encoding="utf-8"))
        + block("key", server.key.read_text(encoding="utf-8"))
        + block("client_ca", ca.cert.read_text(encoding="utf-8"))
        + "  client_auth_type: RequireAndVerifyClientCert\n"
    )
    server.key.unlink()  # nothing may read it from disk
    web_config = write_web_config(tmp_path, text)
    async with serving(web_config) as port:
        assert await outcome(port, client_context(ca.cert, client)) == OK
        assert await outcome(port, client_context(ca.cert)) == REFUSED


@pytest.mark.integration
@pytest.mark.parametrize(
    ("auth", "no_certificate", "from_the_ca", "from_another_ca"),
    [
        ("NoClientCert", OK, OK, OK),
        ("RequestClientCert", OK, OK, OK),  # Go asks but takes anything: who gets in is the same
        ("VerifyClientCertIfGiven", OK, OK, REFUSED),
        ("RequireAndVerifyClientCert", REFUSED, OK, REFUSED),
    ],
)
async def test_client_auth_types(
    tmp_path: Path,
    ca: Authority,
    server: Issued,
    auth: str,
    no_certificate: str,
    from_the_ca: str,
    from_another_ca: str,
) -> None:
    (tmp_path / "other").mkdir()
    stranger = Authority(tmp_path / "other", "other-ca").issue("stranger", client=True)
    client = ca.issue("client", client=True)
    ca_line = "" if auth == "NoClientCert" else f"  client_ca_file: {ca.cert}\n"
    web_config = write_web_config(
        tmp_path, tls_yaml(server, f"  client_auth_type: {auth}\n{ca_line}")
    )
    async with serving(web_config) as port:
        assert await outcome(port, client_context(ca.cert)) == no_certificate
        assert await outcome(port, client_context(ca.cert, client)) == from_the_ca
        assert await outcome(port, client_context(ca.cert, stranger)) == from_another_ca


@pytest.mark.integration
async def test_system_cas_do_not_vouch_for_clients(
    tmp_path: Path, ca: Authority, server: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only client_ca_file's CA: a certificate from a CA the system trusts (here, through
    SSL_CERT_FILE) must not get in."""
    (tmp_path / "system").mkdir()
    public = Authority(tmp_path / "system", "public-ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(public.cert))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "system"))
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert}\n"
    web_config = write_web_config(tmp_path, tls_yaml(server, extra))
    async with serving(web_config) as port:
        stranger = public.issue("stranger", client=True)
        assert await outcome(port, client_context(ca.cert, stranger)) == REFUSED


@pytest.mark.integration
async def test_client_allowed_sans(tmp_path: Path, ca: Authority, server: Issued) -> None:
    """Any one SAN of the verified certificate must be listed: DNS, IP (Go's spelling), URI."""
    extra = (
        "  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {ca.cert}\n"
        "  client_allowed_sans: [prometheus.example, '2001:db8::1', 'spiffe://cluster/prom']\n"
    )
    web_config = write_web_config(tmp_path, tls_yaml(server, extra))
    clients = {
        "dns": ca.issue("dns", [x509.DNSName("prometheus.example")], client=True),
        "ip": ca.issue("ip", [x509.IPAddress(ipaddress.ip_address("2001:db8::1"))], client=True),
        "uri": ca.issue(
            "uri", [x509.UniformResourceIdentifier("spiffe://cluster/prom")], client=True
        ),
        "other": ca.issue("other", [x509.DNSName("grafana.example")], client=True),
    }
    async with serving(web_config) as port:
        for name in ("dns", "ip", "uri"):
            assert await outcome(port, client_context(ca.cert, clients[name])) == OK, name
        status, _, body = await get(
            f"https://127.0.0.1:{port}/metrics", client_context(ca.cert, clients["other"])
        )
    assert status == 403
    assert "client certificate not allowed" in body


@pytest.mark.integration
@pytest.mark.parametrize(
    ("versions", "client_maximum", "expected"),
    [
        ("  min_version: TLS13\n", ssl.TLSVersion.TLSv1_2, None),
        ("  min_version: TLS13\n", None, "TLSv1.3"),
        ("  max_version: TLS12\n", None, "TLSv1.2"),
        ("  min_version: TLS12\n  max_version: TLS13\n", None, "TLSv1.3"),
    ],
)
async def test_min_and_max_version(
    tmp_path: Path,
    ca: Authority,
    server: Issued,
    versions: str,
    client_maximum: ssl.TLSVersion | None,
    expected: str | None,
) -> None:
    web_config = write_web_config(tmp_path, tls_yaml(server, versions))
    async with serving(web_config) as port:
        context = client_context(ca.cert, maximum=client_maximum)
        if expected is None:
            assert await outcome(port, context) == REFUSED
        else:
            version, _, status = await exchange(port, context)
            assert (version, status) == (expected, OK)


def test_cipher_suite_names_map_to_the_same_suites() -> None:
    assert set(CIPHER_SUITES) == set(IANA_IDS)
    for go_name, openssl_name in CIPHER_SUITES.items():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers(openssl_name)
        (suite,) = (c for c in context.get_ciphers() if c["protocol"] != "TLSv1.3")
        assert suite["id"] & 0xFFFF == IANA_IDS[go_name], go_name


@pytest.mark.integration
async def test_cipher_suites(tmp_path: Path, ca: Authority, server: Issued) -> None:
    """TLS 1.2 uses only the listed suites; a TLS 1.3 name is accepted and ignored, as in Go."""
    extra = (
        "  max_version: TLS12\n"
        "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384]\n"
    )
    web_config = write_web_config(tmp_path, tls_yaml(server, extra))
    async with serving(web_config) as port:
        _, cipher, status = await exchange(port, client_context(ca.cert))
        only_other = client_context(ca.cert, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")
        assert await outcome(port, only_other) == REFUSED
    assert (cipher, status) == ("ECDHE-ECDSA-AES128-GCM-SHA256", OK)
    assert "TLS_AES_256_GCM_SHA384" in TLS13_CIPHER_SUITES


@pytest.mark.integration
@pytest.mark.parametrize(
    ("prefer_server", "expected"),
    [("true", "ECDHE-ECDSA-AES128-GCM-SHA256"), ("false", "ECDHE-ECDSA-AES256-GCM-SHA384")],
)
async def test_prefer_server_cipher_suites(
    tmp_path: Path, ca: Authority, server: Issued, prefer_server: str, expected: str
) -> None:
    """The server lists AES-128 first, the client AES-256: whose order wins is the setting."""
    extra = (
        "  max_version: TLS12\n"
        "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"
        f"  prefer_server_cipher_suites: {prefer_server}\n"
    )
    web_config = write_web_config(tmp_path, tls_yaml(server, extra))
    client = client_context(
        ca.cert, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"
    )
    async with serving(web_config) as port:
        _, cipher, status = await exchange(port, client)
    assert (cipher, status) == (expected, OK)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("setting", "p256", "p384"),
    [("", OK, OK), ("  curve_preferences: [CurveP384]\n", REFUSED, OK)],
)
async def test_curve_preferences(
    tmp_path: Path, ca: Authority, server: Issued, setting: str, p256: str, p384: str
) -> None:
    """One curve: key exchange uses it or fails. TLS 1.3, where groups are about key exchange
    only (in TLS 1.2 they also limit which ECDSA certificates a client accepts)."""
    web_config = write_web_config(tmp_path, tls_yaml(server, setting))
    async with serving(web_config) as port:
        assert await outcome(port, client_context(ca.cert, curve="prime256v1")) == p256
        assert await outcome(port, client_context(ca.cert, curve="secp384r1")) == p384


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("  min_version: TLS10\n", "min_version = 'TLS10': Python's ssl deprecates TLS 1.0"),
        ("  max_version: TLS11\n", "max_version = 'TLS11': Python's ssl deprecates"),
        ("  min_version: SSL3\n", "min_version = 'SSL3': expected TLS12 or TLS13"),
        ("  min_version: TLS13\n  max_version: TLS12\n", "max_version = 'TLS12': below min"),
        (
            "  client_auth_type: RequireAnyClientCert\n",
            "client_auth_type = 'RequireAnyClientCert': Python's ssl verifies every client",
        ),
        ("  client_auth_type: RequireClientCert\n", "use RequireAndVerifyClientCert"),
        ("  client_auth_type: Sometimes\n", "client_auth_type = 'Sometimes': expected one of"),
        (
            "  client_auth_type: VerifyClientCertIfGiven\n",
            "client_ca_file = None: required with VerifyClientCertIfGiven (the system's CAs",
        ),
        ("  client_ca_file: ca.crt\n", "without a client auth policy"),
        (
            (
                "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: test-ca.crt\n"
                "  client_allowed_sans: [a]\n"
            ),
            "client_allowed_sans = ['a']: needs client_auth_type RequireAndVerifyClientCert",
        ),
        (
            "  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n",
            "cipher_suites = 'TLS_RSA_WITH_AES_128_CBC_SHA': expected one of",
        ),
        (
            "  curve_preferences: [X25519, CurveP256]\n",
            (
                "curve_preferences = ['X25519', 'CurveP256']: Python's ssl can restrict key "
                "exchange to one curve only"
            ),
        ),
        ("  curve_preferences: [P-256]\n", "curve_preferences = 'P-256': expected one of"),
        ("  prefer_server_cipher_suites: maybe\n", "expected true or false"),
        ("  cert: inline\n", "tls_server_config.cert = '(inline)': give cert or cert_file"),
        ("  http2: true\n", "tls_server_config.http2 = '(hidden)': unknown key"),
    ],
)
def test_values_python_cannot_honour_exit_2(
    tmp_path: Path,
    server: Issued,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    expected: str,
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(tls_yaml(server, extra), encoding="utf-8")
    assert main(["--web-config-file", str(path)]) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("cryptoliq-exporter: config error: tls_server_config.")
    assert expected in err


def test_an_inline_key_is_never_echoed(
    tmp_path: Path, server: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "web.yml"
    secret = "NOT-A-KEY-BUT-SECRET"  # noqa: S105 - a stand-in that must not be echoed
    path.write_text(
        f"tls_server_config:\n  cert_file: {server.cert}\n  key: {secret}\n", encoding="utf-8"
    )
    assert main(["--web-config-file", str(path)]) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "cannot load it with its key" in err
    assert secret not in err
