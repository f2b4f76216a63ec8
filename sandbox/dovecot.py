"""A real POP3 server for login tests and the sandbox: Dovecot 2.3 (Debian 12 packages) with OAuth2.

The server runs as a child process (``dovecot -F -c <conf>``) on 127.0.0.1 with POP3 over implicit TLS,
SASL XOAUTH2/OAUTHBEARER against ``oauth2`` passdbs, in one of two ways:

- **local validation** (the default): tokens are checked with ``introspection_mode = local`` - nothing is
  fetched over the network. Mail comes from one throwaway Maildir with messages of known size, so a test
  can assert the exact ``STAT`` answer. Dovecot only checks what the JWT itself proves: signature (key
  looked up by ``kid``), ``typ`` = ``JWT``, ``exp``/``nbf``/``iat``, issuer, audience and the username
  claim. It does not look at ``roles``; the fake token endpoint's claims decide that part.
- **introspection** (:class:`Introspection`, as the sandbox runs it): one Maildir per mailbox, and one
  passdb per mailbox (``username_filter``) that POSTs the token to that mailbox's introspection URL
  (``introspection_mode = post``) - so the login name reaches the emulator, which answers whether the
  token may open it, as Office 365 decides. A login name with no mailbox meets a last passdb that refuses
  every token.

Everything lives under one short directory in /tmp (unix socket paths are limited to 108 bytes) that
``stop()`` removes. Use :func:`unavailable_reason` to skip tests on machines without Dovecot 2.3.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Self

DOVECOT_BINARY = Path("/usr/sbin/dovecot")
SUPPORTED_MAJOR_MINOR = "2.3"
HOST = "127.0.0.1"
DEFAULT_AUDIENCE = "https://outlook.office365.com"


class DovecotError(RuntimeError):
    """Dovecot did not start, or stopped with an error; the message quotes the relevant log lines."""


def unavailable_reason() -> str | None:
    """Why the Dovecot tests cannot run here, or None when they can."""
    if not DOVECOT_BINARY.exists():
        return (
            f"{DOVECOT_BINARY} not found: install Debian 12's Dovecot 2.3 with "
            "`apt-get install -y --no-install-recommends dovecot-core dovecot-pop3d`"
        )
    try:
        version = subprocess.run(
            [str(DOVECOT_BINARY), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"{DOVECOT_BINARY} --version failed: {error}"
    if not version.startswith(SUPPORTED_MAJOR_MINOR + "."):
        return (
            f"Dovecot {version} found; these tests target {SUPPORTED_MAJOR_MINOR} (Debian 12) configuration"
        )
    return None


def sample_messages(count: int = 3) -> list[bytes]:
    """``count`` small RFC 5322 messages with CRLF line ends (so ``STAT`` octets equal their byte length)."""
    return [
        (
            f"From: sender{index}@example.test\r\n"
            f"To: edi@example.test\r\n"
            f"Subject: Test {index}\r\n"
            f"Message-ID: <test-{index}@example.test>\r\n"
            "\r\n"
            f"Body of message {index}.\r\n" + "x" * (10 * index) + "\r\n"
        ).encode("ascii")
        for index in range(1, count + 1)
    ]


def dated_message(index: int, *received: datetime) -> bytes:
    """A small message with one ``Received:`` header per moment, in the order given (a mail server adds
    the newest on top) and no ``Date:``: its age comes from the Received headers alone."""
    hops = "".join(
        f"Received: from relay{hop}.example.test by mx.example.test; {format_datetime(moment)}\r\n"
        for hop, moment in enumerate(received)
    )
    return (
        f"{hops}From: sender{index}@example.test\r\nTo: edi@example.test\r\nSubject: Order {index}\r\n"
        f"Message-ID: <dated-{index}@example.test>\r\n\r\nBody of order {index}.\r\n"
    ).encode("ascii")


def key_path(keys_dir: Path, kid: str, *, alg: str = "RS256", azp: str = "default") -> Path:
    """Where Dovecot's ``fs:posix`` key dict looks for a key: ``<keys>/<azp>/<alg>/<kid>``.

    ``%`` and ``/`` in a name are stored as ``%25`` and ``%2f``.
    """
    return keys_dir / _escape(azp) / _escape(alg) / _escape(kid)


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2f")


@dataclass(frozen=True)
class Introspection:
    """Ask ``url_for(mailbox)`` (an HTTPS URL, Basic credentials in it allowed) about each login;
    ``ca_file`` is the CA bundle that endpoint's certificate chains to."""

    url_for: Callable[[str], str]
    ca_file: Path


class DovecotServer:
    """One Dovecot instance; use as a context manager or call :meth:`start` / :meth:`stop`.

    Local validation: ``issuer`` and ``audience`` are what the oauth2 passdb demands of a token;
    ``username_attribute`` names the claim that must equal the SASL user; ``messages`` fill the one Maildir.
    Keys are added with :meth:`add_key` (before or after start; Dovecot caches keys per ``kid``, so
    replacing a key needs a new ``kid``). With ``introspection``, ``mailboxes`` maps each mailbox address to
    its messages and the emulator behind the URL decides. ``port`` 0 picks a free port.
    """

    def __init__(
        self,
        *,
        cert_pem: Path,
        key_pem: Path,
        issuer: str = "",
        audience: str | None = DEFAULT_AUDIENCE,
        messages: Sequence[bytes] | None = None,
        username_attribute: str = "upn",
        startup_timeout: float = 10.0,
        introspection: Introspection | None = None,
        mailboxes: Mapping[str, Sequence[bytes]] | None = None,
        port: int = 0,
    ) -> None:
        if introspection is not None and not mailboxes:
            raise ValueError("introspection needs at least one mailbox")
        self.cert_pem = cert_pem
        self.key_pem = key_pem
        self.issuer = issuer
        self.audience = audience
        self.messages = list(sample_messages() if messages is None else messages)
        self.username_attribute = username_attribute
        self.startup_timeout = startup_timeout
        self.introspection = introspection
        self.mailboxes = {address.lower(): list(mail) for address, mail in (mailboxes or {}).items()}
        self.requested_port = port
        self.root = Path(tempfile.mkdtemp(prefix="dv", dir="/tmp"))
        self.root.chmod(0o755)
        self.keys_dir = self.root / "keys"
        self.log_file = self.root / "dovecot.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._terminated = False
        self._log_offset = 0

    @property
    def host(self) -> str:
        return HOST

    @property
    def pid(self) -> int | None:
        """The Dovecot master process's id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def message_count(self) -> int:
        return len(self.messages)

    @property
    def octets(self) -> int:
        return sum(len(message) for message in self.messages)

    def add_key(self, kid: str, public_key_pem: bytes, *, alg: str = "RS256", azp: str = "default") -> Path:
        """Install ``public_key_pem`` (PEM public key) for tokens with header ``kid``; returns the file.

        Dovecot looks under the token's ``azp`` claim when it has one (Entra's tokens do: the client id),
        and under ``default`` otherwise - install the key for each ``azp`` the tests' tokens carry.
        """
        path = key_path(self.keys_dir, kid, alg=alg, azp=azp)
        path.parent.mkdir(parents=True, exist_ok=True)
        for directory in (self.keys_dir, *path.relative_to(self.keys_dir).parents):
            (self.keys_dir / directory).chmod(0o755)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(public_key_pem)
        temporary.chmod(0o644)
        temporary.replace(path)
        return path

    def log(self) -> str:
        """The whole server log so far (reasons for refused logins are only here)."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_contains(self, text: str, timeout: float = 10.0) -> bool:
        """Whether ``text`` shows in the log within ``timeout`` seconds: Dovecot writes a session's last
        lines (``Disconnected: ... del=0/3``) after the client has gone, so a test waits for them."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def start(self) -> None:
        """Write the configuration, start Dovecot and wait until it answers with a TLS greeting.

        Raises DovecotError (quoting the log's ``Fatal:`` lines, or the whole log) when it does not become
        ready within ``startup_timeout`` seconds. A port taken meanwhile is retried with another port.
        """
        reason = unavailable_reason()
        if reason is not None:
            raise DovecotError(reason)
        self._prepare_tree()
        for _attempt in range(3):
            self.port = self.requested_port or _free_port()
            self._write_config()
            self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            self._process = subprocess.Popen(
                [str(DOVECOT_BINARY), "-F", "-c", str(self.root / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                self._wait_ready()
            except _PortTaken:
                self.stop(remove=False)
                if self.requested_port:
                    raise DovecotError(f"port {self.requested_port} on {HOST} is taken") from None
                continue
            return
        raise DovecotError("could not find a free port for Dovecot after 3 attempts")

    def terminate(self) -> None:
        """Send SIGTERM (this PID only) without waiting; Dovecot needs about a second to exit.

        Call :meth:`stop` later to wait for it and remove the directory.
        """
        process = self._process
        if process is not None and process.poll() is None and not self._terminated:
            process.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, *, remove: bool = True) -> None:
        """SIGTERM the server (this PID only), wait for it, and remove its directory unless told not to."""
        self.terminate()
        process, self._process = self._process, None
        self._terminated = False
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stderr is not None:
                process.stderr.close()
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_tree(self) -> None:
        uid, gid = self._mail_owner()
        home = self.root / "home"
        if self.introspection is None:
            _deliver(home / "Maildir", self.messages)
        else:
            for address, mail in self.mailboxes.items():
                _deliver(home / address / "Maildir", mail)
        (self.root / "state").mkdir(exist_ok=True)
        self.keys_dir.mkdir(exist_ok=True)
        self.keys_dir.chmod(0o755)
        for path in (home, *home.rglob("*")):
            os.chown(path, uid, gid)

    def _mail_owner(self) -> tuple[int, int]:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            return nobody.pw_uid, nobody.pw_gid
        return os.getuid(), os.getgid()

    def _write_config(self) -> None:
        root = self.root
        uid, gid = self._mail_owner()
        if os.geteuid() == 0:
            internal_user, internal_group, login_user, chroot = "dovecot", "dovecot", "dovenull", ""
        else:
            me = pwd.getpwuid(os.getuid()).pw_name
            internal_user, internal_group, login_user = me, _group_name(os.getgid()), me
            chroot = "  chroot =\n"
        passdbs, home = self._write_passdbs(), f"{root}/home"
        if self.introspection is not None:
            home += "/%Lu"
        (root / "dovecot.conf").write_text(
            f"base_dir = {root}/run\n"
            f"state_dir = {root}/state\n"
            f"instance_name = {root.name}\n"
            "protocols = pop3\n"
            f"listen = {HOST}\n"
            f"log_path = {self.log_file}\n"
            f"info_log_path = {self.log_file}\n"
            f"debug_log_path = {self.log_file}\n"
            "auth_verbose = yes\n"
            "auth_failure_delay = 0\n"
            "stats_writer_socket_path =\n"
            "ssl = required\n"
            f"ssl_cert = <{self.cert_pem}\n"
            f"ssl_key = <{self.key_pem}\n"
            "disable_plaintext_auth = yes\n"
            "auth_mechanisms = xoauth2 oauthbearer\n"
            "mail_location = maildir:~/Maildir\n"
            "first_valid_uid = 1\n"
            f"default_internal_user = {internal_user}\n"
            f"default_internal_group = {internal_group}\n"
            f"default_login_user = {login_user}\n"
            f"{passdbs}"
            "userdb {\n"
            f"  driver = static\n  args = uid={uid} gid={gid} home={home}\n"
            "}\n"
            "service pop3-login {\n" + chroot + "  inet_listener pop3 {\n    port = 0\n  }\n"
            f"  inet_listener pop3s {{\n    port = {self.port}\n    ssl = yes\n  }}\n"
            "}\n"
            "service anvil {\n" + chroot + "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n"
            "}\n"
        )

    def _write_passdbs(self) -> str:
        """Write the oauth2 settings files and return the ``passdb`` sections that use them."""
        root, introspection = self.root, self.introspection
        if introspection is None:
            audience = f"audience = {self.audience}\n" if self.audience else ""
            (root / "dovecot-oauth2.conf.ext").write_text(
                "introspection_mode = local\n"
                f"local_validation_key_dict = fs:posix:prefix={self.keys_dir}/\n"
                f"issuers = {self.issuer}\n"
                f"username_attribute = {self.username_attribute}\n" + audience
            )
            return _oauth2_passdb(root / "dovecot-oauth2.conf.ext")
        # The auth process runs as Dovecot's own user: give it a copy of the CA it can read.
        ca_file = root / "introspection-ca.pem"
        shutil.copyfile(introspection.ca_file, ca_file)
        ca_file.chmod(0o644)
        sections = []
        for index, address in enumerate(self.mailboxes):
            settings = root / f"dovecot-oauth2-{index}.conf.ext"
            settings.write_text(
                "introspection_mode = post\n"
                f"introspection_url = {introspection.url_for(address)}\n"
                f"tls_ca_cert_file = {ca_file}\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            settings.chmod(0o600)
            sections.append(_oauth2_passdb(settings, username_filter=address))
        # Any other login name: a passdb that refuses every token (a random password nobody knows).
        refuse = secrets.token_hex(16)
        sections.append(
            "passdb {\n  driver = static\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = password={refuse}\n}}\n"
        )
        return "".join(sections)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            problem = self._log_problem()
            if problem is not None:
                if "Address already in use" in problem:
                    raise _PortTaken(problem)
                raise DovecotError(f"Dovecot failed to start: {problem}")
            process = self._process
            if process is not None and process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                if "Address already in use" in stderr:
                    raise _PortTaken(stderr)
                raise DovecotError(f"Dovecot exited with {process.returncode}: {stderr.strip()} {self.log()}")
            if _greets(self.port):
                return
            if time.monotonic() > deadline:
                raise DovecotError(f"Dovecot not ready after {self.startup_timeout} s; log:\n{self.log()}")
            time.sleep(0.05)

    def _log_problem(self) -> str | None:
        text = self.log()[self._log_offset :]
        lines = [line for line in text.splitlines() if re.search(r"\bFatal:", line)]
        return "\n".join(lines) if lines else None


class _PortTaken(DovecotError):
    pass


def _oauth2_passdb(settings: Path, *, username_filter: str | None = None) -> str:
    only = (
        f"  username_filter = {username_filter}\n  result_failure = return-fail\n" if username_filter else ""
    )
    return (
        f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n{only}  args = {settings}\n}}\n"
    )


def _deliver(maildir: Path, messages: Sequence[bytes]) -> None:
    """A Maildir holding ``messages`` as already seen mail (``cur/``), sizes in the file names."""
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for index, message in enumerate(messages, start=1):
        (maildir / "cur" / f"{1700000000 + index}.M{index}P1.test,S={len(message)}:2,S").write_bytes(message)


def _group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _greets(port: int) -> bool:
    """Whether the server on ``port`` completes a TLS handshake and sends its ``+OK`` greeting.

    The probe does not verify the certificate: it only asks whether this fixture's own server is up.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((HOST, port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            return tls.recv(64).startswith(b"+OK")
    except OSError:
        return False
