"""AMI over TLS: the client endpoint string verifies the peer with service_identity."""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor, ssl
from twisted.internet.endpoints import clientFromString
from twisted.trial.unittest import TestCase

from acqs.ami.errors import AMIConnectionLost
from acqs.ami.protocol import AMIFactory
from acqs.simulator import Simulator


def _name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def authority(common):
    """A self-signed CA: its key and certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def serverCertificate(caKey, caCert, hostname):
    """PEM of a key and a certificate for C{hostname}, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(hostname)).issuer_name(caCert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(caKey, hashes.SHA256()))
    return _pem(key) + cert.public_bytes(serialization.Encoding.PEM)


class TLSTests(TestCase):
    def setUp(self):
        caKey, self.caCert = authority("acqs test CA")
        server = ssl.PrivateCertificate.loadPEM(serverCertificate(caKey, self.caCert, "localhost"))
        self.sim = Simulator(reactor)
        self.addCleanup(self.sim.stop)
        port = reactor.listenSSL(0, self.sim.factory, server.options(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def roots(self, cert):
        """A trustRoots directory holding C{cert}."""
        path = self.mktemp()
        os.mkdir(path)
        with open(os.path.join(path, "ca.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def login(self, host, roots):
        endpoint = clientFromString(
            reactor, f"tls:host={host}:port={self.port}:trustRoots={roots}:timeout=5")
        return AMIFactory("sender", "sendersecret", reactor, timeout=5).login(endpoint)

    async def test_verified(self):
        """A certificate of a trusted CA for the host name logs in over TLS."""
        protocol = await self.login("localhost", self.roots(self.caCert))
        self.assertEqual(protocol.amiVersion, "11.0.0")
        await protocol.logoff()

    async def test_wrongHost(self):
        """A certificate for another name is refused before any secret is sent."""
        with self.assertRaises(AMIConnectionLost) as caught:
            await self.login("127.0.0.1", self.roots(self.caCert))
        self.assertIn("Mismatch", str(caught.exception))
        self.assertEqual([m for _, m in self.sim.actions if m["Action"] == "Login"], [])

    async def test_untrustedAuthority(self):
        """A certificate from a CA that is not trusted is refused."""
        _, otherCA = authority("some other CA")
        with self.assertRaises(AMIConnectionLost) as caught:
            await self.login("localhost", self.roots(otherCA))
        self.assertIn("certificate verify failed", str(caught.exception))
        self.assertEqual([m for _, m in self.sim.actions if m["Action"] == "Login"], [])
