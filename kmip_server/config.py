"""Server settings: one TOML file in the data directory, plus environment for secrets.

The dataclasses below are the contract the rest of the server reads. :func:`load_config`
fills them from ``DATA_DIR/strongroom.toml``; relative paths in the file are relative to the
data directory. Secrets (the token PIN) are never in the file or on a command line: the file
names an environment variable or a file that holds them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

CONFIG_FILE_NAME = "strongroom.toml"


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    certificate: Path  # server certificate chain (PEM)
    private_key: Path  # server private key (PEM)
    client_ca: tuple[Path, ...]  # CA bundle(s) client certificates must chain to
    # Where the client identity comes from: "cn" (subject common name), "san-dns", "san-email",
    # "subject" (the RFC 4514 string), or "ou" (organizational unit).
    identity_from: str = "cn"


@dataclasses.dataclass(frozen=True)
class ListenerSettings:
    host: str = "127.0.0.1"
    port: int = 5696
    workers: int = 0  # 0: one worker process per CPU core
    max_message_size: int = 1024 * 1024  # bytes, whole TTLV message including its header
    idle_timeout: float = 300.0  # seconds a connection may sit without a complete request
    max_connections: int = 4096  # per worker
    handshake_timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class CustodySettings:
    module: Path  # the PKCS#11 library (.so)
    token_label: str
    master_key_label: str = "strongroom-master"
    pin_env: str | None = None  # name of an environment variable holding the user PIN
    pin_file: Path | None = None  # a file holding the user PIN (first line)
    softhsm2_conf: Path | None = None  # SOFTHSM2_CONF for the embedded SoftHSM2 token


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    url: str  # SQLAlchemy URL: sqlite:///... or postgresql+psycopg://...


@dataclasses.dataclass(frozen=True)
class PolicySettings:
    admin_identities: tuple[str, ...] = ("admin",)
    policy_file: Path | None = None


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    listener: ListenerSettings
    tls: TlsSettings
    custody: CustodySettings
    storage: StorageSettings
    policy: PolicySettings
    log_level: str = "INFO"
