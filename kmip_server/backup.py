"""Backup and restore of a data directory: ``strongroom backup`` and ``strongroom restore``.

An archive is a gzip-compressed tar written atomically with mode 0600. Its first member,
``MANIFEST.json``, names the format version, the date, what is in the archive and what is not,
and the size, SHA-256 and mode of every other member; ``restore`` refuses an archive whose
members do not match it exactly. The members are files of the data directory under their
relative names:

- ``strongroom.toml``, every file in ``pki/`` and ``clients/``, and the files the
  configuration names inside the data directory (a policy file, say);
- the SQLite database, copied with SQLite's online backup API inside one read transaction: a
  consistent snapshot while the server goes on writing (readers never block writers in WAL
  mode), never a copy of the database file beside its write-ahead log. A PostgreSQL store is
  not copied (``pg_dump`` is the tool for it): the archive says so and holds the rest;
- the SoftHSM2 token (``hsm/tokens``, ``hsm/softhsm2.conf``), read while holding the data
  directory's token-opening lock (the lock the server's workers take to log in, which rewrites
  the token files) and, file by file, the shared lock SoftHSM2's own readers take, so that no
  file is read half-rewritten;
- the PIN files (``hsm/user.pin``, ``hsm/so.pin``) only when asked (``include_pins``): with
  them, whoever holds the archive can use the token and so every key.

The database is copied before the token, so the token copy holds every master key the
database copy's values are wrapped under. ``restore`` writes into a new (or empty) directory:
it extracts into a private directory beside it, checks every member, sets the modes (0700
directories, 0600 for keys, PINs, token files and the database) and then renames it into
place, so a failed restore leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from kmip_client.progress import ProgressPrinter

from . import __version__
from .config import CONFIG_FILE_NAME, ServerConfig, load_config
from .custody.opening import TOKEN_LOCK
from .storage.sqlite import backup_reading

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "BackupError",
    "BackupResult",
    "RestoreResult",
    "create_backup",
    "restore_backup",
]

FORMAT_NAME = "strongroom-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "MANIFEST.json"
PAGES_PER_STEP = 256  # SQLite pages copied per backup step (1 MiB at the default page size)
TOKEN_LOCK_TIMEOUT = 30.0  # seconds to wait for a worker that is opening the token
_MANIFEST_MAX = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_COPIED_DIRS = ("pki", "clients")

#: ``progress(pages_copied, pages_total)`` during the database copy.
Progress = Callable[[int, int], None]


class BackupError(Exception):
    """An archive that cannot be written or restored; the message says why (never a secret)."""


@dataclasses.dataclass
class _Member:
    name: str  # POSIX path relative to the data directory
    mode: int
    mtime: float
    secret: bool
    data: bytes | None = None  # small files are read into memory...
    path: Path | None = None  # ...the database copy stays a file
    size: int = 0
    sha256: str = ""

    def finish(self) -> _Member:
        digest = hashlib.sha256()
        if self.data is not None:
            digest.update(self.data)
            self.size = len(self.data)
        else:
            assert self.path is not None
            with open(self.path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            self.size = self.path.stat().st_size
        self.sha256 = digest.hexdigest()
        return self

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "mode": f"{self.mode:04o}",
            "secret": self.secret,
        }


@dataclasses.dataclass
class BackupResult:
    path: Path
    members: list[str]
    database: str | None  # the member holding the SQLite database, if any
    database_pages: int
    pins_included: bool
    pins_not_included: list[str]
    notes: list[str]  # what is not in the archive, and how to back it up


@dataclasses.dataclass
class RestoreResult:
    data_dir: Path
    members: list[str]
    created: str
    source: str
    pins_to_restore: list[str]  # PIN files the operator has to put back before serving
    pin_env: str | None  # the environment variable that supplies the user PIN, if configured so
    notes: list[str]


# ---- backup


def _relative(path: Path, data_dir: Path) -> str | None:
    """``path`` relative to the data directory (POSIX), or None when it lies outside."""
    try:
        return Path(os.path.realpath(path)).relative_to(data_dir).as_posix()
    except ValueError:
        return None


def _regular_files(directory: Path) -> Iterator[Path]:
    """The regular files below ``directory``, sorted; temporary and lock files (dot files) left out."""
    if not directory.is_dir():
        return
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if not name.startswith(".") and stat.S_ISREG(os.lstat(path).st_mode):
                yield path


def _read_member(path: Path, name: str, *, secret: bool, shared_lock: bool = False) -> _Member:
    with open(path, "rb") as handle:
        if shared_lock:
            # SoftHSM2 takes a write lock (fcntl) on a token file while it rewrites it, and its
            # readers a read lock: so do we.
            fcntl.lockf(handle.fileno(), fcntl.LOCK_SH)
        info = os.fstat(handle.fileno())
        data = handle.read()
    return _Member(name, stat.S_IMODE(info.st_mode), info.st_mtime, secret, data=data)


@contextlib.contextmanager
def _token_lock(data_dir: Path) -> Iterator[None]:
    """Hold the lock the server's workers take to open the token (``custody.opening.TOKEN_LOCK``)."""
    fd = os.open(data_dir / TOKEN_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + TOKEN_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BackupError(
                        f"{data_dir / TOKEN_LOCK} stayed locked for {TOKEN_LOCK_TIMEOUT:.0f} s (a server process "
                        "opening the token?); the token was not copied: try again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _copy_sqlite(database: Path, copy: Path, progress: Progress | None) -> int:
    """A consistent copy of a live SQLite database; returns its number of pages."""
    uri = f"file:{urllib.parse.quote(str(database))}?mode=rw"
    try:
        source = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the SQLite database {database}: {exc}") from None
    pages = 0

    def step(_status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total
        if progress is not None:
            progress(total - remaining, total)

    # The backup lock first: while it is held the server's Destroys leave the log to be cut
    # after the backup instead of waiting on this snapshot (storage.sqlite.LogEraser).
    try:
        with backup_reading(str(database)):
            # One read transaction for the whole copy: every step reads the same snapshot, so the
            # server's commits meanwhile neither restart the copy nor tear it (WAL: they never wait).
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()
            target = sqlite3.connect(copy)
            try:
                source.backup(target, pages=PAGES_PER_STEP, progress=step, sleep=0.05)
                target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file; serve turns WAL on
                check = target.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    raise BackupError(f"the copy of {database} fails SQLite's check: {check}")
            finally:
                target.close()
            source.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the SQLite database {database}: {exc}") from None
    finally:
        source.close()
    return pages


def _database_members(
    config: ServerConfig, staging: Path, progress: Progress | None, notes: list[str]
) -> tuple[list[_Member], dict[str, Any]]:
    from sqlalchemy.engine import make_url

    url = make_url(config.storage.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() != "sqlite":
        notes.append(
            f"the database ({shown}) is not in this archive: back it up with pg_dump at the same time, e.g. "
            "pg_dump --format=custom --file=strongroom.dump DATABASE (its values are wrapped under the "
            "master key in this archive's token; restore it with pg_restore)"
        )
        return [], {"kind": url.get_backend_name(), "url": shown, "included": False}
    database = Path(url.database or "")
    name = _relative(database, config.data_dir)
    if name is None:
        notes.append(
            f"the SQLite database {database} is outside the data directory and not in this archive: "
            f"back it up with sqlite3 {database} '.backup FILE'"
        )
        return [], {"kind": "sqlite", "path": str(database), "included": False}
    if not database.is_file():
        raise BackupError(f"the SQLite database {database} does not exist (storage.url)")
    copy = staging / "database"
    started = time.time()
    pages = _copy_sqlite(database, copy, progress)
    member = _Member(name, 0o600, started, True, path=copy)
    return [member], {"kind": "sqlite", "member": name, "included": True, "pages": pages}


def _gather(
    config: ServerConfig, include_pins: bool, staging: Path, progress: Progress | None
) -> tuple[list[_Member], dict[str, Any]]:
    data_dir = config.data_dir
    custody = config.custody
    notes: list[str] = []
    members, database = _database_members(config, staging, progress, notes)
    taken = {member.name for member in members}

    def add(path: Path, *, secret: bool = False, shared_lock: bool = False) -> None:
        name = _relative(path, data_dir)
        if name is None or name in taken or not path.is_file():
            return
        taken.add(name)
        members.append(_read_member(path, name, secret=secret, shared_lock=shared_lock))

    pins: list[str] = []
    pin_paths = [custody.pin_file] if custody.pin_file is not None else []
    token: dict[str, Any] = {"included": False}
    if custody.softhsm2_conf is not None:
        token_dir = custody.softhsm2_conf.parent
        pin_paths.append(token_dir / "so.pin")
        token_name = _relative(token_dir, data_dir)
        if token_name is None:
            notes.append(f"the SoftHSM2 token in {token_dir} is outside the data directory and not in this archive")
        else:
            with _token_lock(data_dir):
                for path in _regular_files(token_dir / "tokens"):
                    add(path, secret=True, shared_lock=True)
            add(custody.softhsm2_conf)
            token = {"included": True, "directory": token_name, "conf": _relative(custody.softhsm2_conf, data_dir)}
    else:
        notes.append(
            f"the master key is in the HSM behind {custody.module}: not in this archive (back it up the HSM's way)"
        )
    for path in pin_paths:
        name = _relative(path, data_dir)
        if name is None or not path.is_file():
            continue
        if include_pins:
            add(path, secret=True)
        else:
            pins.append(name)

    add(data_dir / CONFIG_FILE_NAME)
    for directory in _COPIED_DIRS:
        for path in _regular_files(data_dir / directory):
            add(path, secret=path.suffix == ".key" or path.name.endswith(".key.bak"))
    named = (config.tls.certificate, config.tls.private_key, *config.tls.client_ca, config.policy.policy_file)
    for file in named:
        if file is not None:
            add(file, secret=file == config.tls.private_key)

    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "strongroom": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "source": str(data_dir),
        "database": database,
        "token": token,
        "pins_included": include_pins,
        "pins_not_included": pins,
        "user_pin_env": custody.pin_env,
        "notes": notes,
        "members": [member.finish().record() for member in members],
    }
    return members, manifest


def _tar_info(name: str, size: int, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""  # no account names of the source machine
    return info


def _write_archive(fd: int, manifest: dict[str, Any], members: list[_Member]) -> None:
    with os.fdopen(fd, "wb", closefd=False) as raw:
        # No file name or date in the gzip header: the manifest says when.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed:
            with tarfile.open(fileobj=compressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                text = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
                tar.addfile(_tar_info(MANIFEST_NAME, len(text), 0o600, time.time()), io.BytesIO(text))
                for member in members:
                    info = _tar_info(member.name, member.size, member.mode, member.mtime)
                    if member.data is not None:
                        tar.addfile(info, io.BytesIO(member.data))
                    else:
                        assert member.path is not None
                        with open(member.path, "rb") as handle:
                            tar.addfile(info, handle)
        raw.flush()
    os.fsync(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_backup(
    data_dir: Path, out: Path, *, include_pins: bool = False, overwrite: bool = False, progress: Progress | None = None
) -> BackupResult:
    """Write a backup archive of ``data_dir`` to ``out`` (see the module docstring).

    Safe while the server runs. Raises :class:`BackupError` (or ``ConfigError``) with a message
    for the operator; ``out`` then does not exist (or is unchanged).
    """
    config = load_config(data_dir)
    out = Path(os.path.abspath(Path(out).expanduser()))
    if _relative(out, config.data_dir) is not None:
        raise BackupError(f"{out} is inside the data directory {config.data_dir}: write the archive elsewhere")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    if out.exists() and not overwrite:
        raise BackupError(f"{out} already exists (--force replaces it)")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=out.parent))
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        members, manifest = _gather(config, include_pins, staging, progress)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)
            _write_archive(fd, manifest, members)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temporary, out)
        else:
            try:
                os.link(temporary, out)  # fails if the file appeared meanwhile, where rename would clobber it
            except FileExistsError:
                raise BackupError(f"{out} already exists (--force replaces it)") from None
            os.unlink(temporary)
        _fsync_directory(out.parent)
    finally:
        temporary.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    database = manifest["database"]
    return BackupResult(
        path=out,
        members=[record["name"] for record in manifest["members"]],
        database=database.get("member"),
        database_pages=database.get("pages", 0),
        pins_included=include_pins,
        pins_not_included=manifest["pins_not_included"],
        notes=manifest["notes"],
    )


# ---- restore


def _corrupt(archive: Path, problem: str) -> BackupError:
    return BackupError(f"{archive}: {problem}; nothing was restored")


def _member_name(name: object) -> str | None:
    """A member name that stays inside the data directory, or None."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    return None if name == MANIFEST_NAME else str(path)


def _read_manifest(archive: Path, tar: tarfile.TarFile) -> dict[str, Any]:
    first = tar.next()
    if first is None or first.name != MANIFEST_NAME or not first.isreg() or first.size > _MANIFEST_MAX:
        raise _corrupt(archive, f"not a Strongroom backup archive (its first member is not {MANIFEST_NAME})")
    handle = tar.extractfile(first)
    assert handle is not None
    try:
        manifest = json.loads(handle.read())
    except (ValueError, UnicodeDecodeError):
        raise _corrupt(archive, f"{MANIFEST_NAME} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise _corrupt(archive, "not a Strongroom backup archive")
    version = manifest.get("version")
    if version != FORMAT_VERSION:
        raise BackupError(
            f"{archive} is a backup archive of format version {version!r}; this Strongroom reads version "
            f"{FORMAT_VERSION} (use the Strongroom that wrote it)"
        )
    records = manifest.get("members")
    if not isinstance(records, list):
        raise _corrupt(archive, f"{MANIFEST_NAME} lists no members")
    for record in records:
        valid = (
            isinstance(record, dict)
            and _member_name(record.get("name")) == record.get("name")
            and isinstance(record.get("size"), int)
            and isinstance(record.get("sha256"), str)
            and isinstance(record.get("mode"), str)
        )
        if not valid:
            raise _corrupt(archive, f"{MANIFEST_NAME} has an unusable member entry")
    return manifest


def _table(manifest: dict[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key)
    return value if isinstance(value, dict) else {}


def _private_dirs(root: Path, relative: PurePosixPath) -> None:
    current = root
    for part in relative.parts:
        current = current / part
        if not current.is_dir():
            current.mkdir(mode=0o700)
            os.chmod(current, 0o700)


def _extract(
    archive: Path, source: IO[bytes], target: Path, record: dict[str, Any], written: Callable[[int], None]
) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
            written(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if size != record["size"] or digest.hexdigest() != record["sha256"]:
        raise _corrupt(archive, f"{record['name']} does not match its checksum in {MANIFEST_NAME} (corrupt archive)")


def _restored_mode(record: dict[str, Any], token_dir: str | None, database: str | None) -> int:
    name: str = record["name"]
    secret = (
        record.get("secret") is True
        or name.endswith((".key", ".pin", ".key.bak"))
        or name == database
        or (token_dir is not None and name.startswith(token_dir + "/"))
    )
    if secret:
        return 0o600
    try:
        return int(record["mode"], 8) & 0o644
    except ValueError:
        return 0o600


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise BackupError(f"{target} exists and is not a directory: restore writes only into a new data directory")
    if target.is_dir() and any(target.iterdir()):
        raise BackupError(
            f"{target} exists and is not empty: restore never writes into an existing data directory "
            "(choose a new directory)"
        )


def _extract_all(
    archive: Path, tar: tarfile.TarFile, staging: Path, records: dict[str, dict[str, Any]], progress: Progress | None
) -> None:
    seen: set[str] = set()
    total = sum(int(record["size"]) for record in records.values())
    done = 0

    def written(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(done, total), total)

    while (info := tar.next()) is not None:  # after the manifest (iterating would start again)
        record = records.get(info.name)
        if record is None or info.name in seen:
            raise _corrupt(archive, f"member {info.name!r} is not in {MANIFEST_NAME} (or is there twice)")
        if not info.isreg():
            raise _corrupt(archive, f"member {info.name!r} is not a regular file")
        seen.add(info.name)
        relative = PurePosixPath(info.name)
        _private_dirs(staging, relative.parent)
        source = tar.extractfile(info)
        assert source is not None
        _extract(archive, source, staging / relative, record, written)
    missing = sorted(set(records) - seen)
    if missing:
        raise _corrupt(archive, f"{', '.join(missing)} listed in {MANIFEST_NAME} but missing (truncated archive?)")


def restore_backup(archive: Path, data_dir: Path, progress: Progress | None = None) -> RestoreResult:
    """Restore ``archive`` into ``data_dir``, which must not exist or be empty.

    Every member is checked against the manifest before the directory appears. Raises
    :class:`BackupError` with a message for the operator; nothing is left behind then.
    """
    from .custody.softhsm import refresh_softhsm_conf

    archive = Path(archive).expanduser()
    target = Path(os.path.abspath(Path(data_dir).expanduser()))
    _check_target(target)
    if not archive.is_file():
        raise BackupError(f"no backup archive {archive}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".restoring", dir=target.parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                manifest = _read_manifest(archive, tar)
                records = {record["name"]: record for record in manifest["members"]}
                _extract_all(archive, tar, staging, records, progress)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise _corrupt(
                archive, f"cannot be read ({str(exc) or type(exc).__name__}): corrupt or not a backup archive"
            ) from None
        token, database = _table(manifest, "token"), _table(manifest, "database")
        token_dir = token.get("directory") if token.get("included") else None
        for name, record in records.items():
            os.chmod(staging / name, _restored_mode(record, token_dir, database.get("member")))
        _check_target(target)  # again: it may have appeared meanwhile
        if target.is_dir():
            target.rmdir()
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.chmod(target, 0o700)
    conf = token.get("conf")
    if isinstance(conf, str) and conf in records:
        refresh_softhsm_conf(target / conf, warn=False)  # name the restored token, not the source's
    pins = [name for name in manifest.get("pins_not_included", []) if isinstance(name, str)]
    notes = [note for note in manifest.get("notes", []) if isinstance(note, str)]
    pin_env = manifest.get("user_pin_env")
    return RestoreResult(
        data_dir=target,
        members=sorted(records),
        created=str(manifest.get("created", "?")),
        source=str(manifest.get("source", "?")),
        pins_to_restore=pins,
        pin_env=pin_env if isinstance(pin_env, str) else None,
        notes=notes,
    )


# ---- the commands' output


def _groups(names: list[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        top = name.split("/", 1)[0] + ("/" if "/" in name else "")
        counts[top] = counts.get(top, 0) + 1
    return ", ".join(f"{top} ({count} files)" if top.endswith("/") else top for top, count in counts.items())


def backup_command(data_dir: Path, out: Path, *, include_pins: bool, overwrite: bool, progress: bool) -> int:
    """``strongroom backup``: write the archive and say what is (and is not) in it."""
    printer = ProgressPrinter(sys.stderr, "database: {done}/{total} pages copied") if progress else None
    try:
        result = create_backup(data_dir, out, include_pins=include_pins, overwrite=overwrite, progress=printer)
    finally:
        if printer is not None:
            printer.finish()
    print(f"strongroom: wrote {result.path} (mode 0600): {len(result.members)} files")
    print(f"  contents   {_groups(result.members)}")
    if result.database is not None:
        print(f"  database   {result.database}: {result.database_pages} pages, an online snapshot (SQLite backup API)")
    if result.pins_included:
        print("  PINs       included: whoever holds this archive can use the token and every key; guard it")
    elif result.pins_not_included:
        print(
            f"  PINs       not included ({', '.join(result.pins_not_included)}): keep them elsewhere; "
            "a restore needs them (--include-pins puts them in the archive)"
        )
    for note in result.notes:
        print(f"  note       {note}")
    return 0


def restore_command(archive: Path, data_dir: Path, *, progress: bool = False) -> int:
    """``strongroom restore``: restore, then say what the operator still has to supply."""
    printer = ProgressPrinter(sys.stderr, "restore: {done}/{total} bytes written") if progress else None
    try:
        result = restore_backup(archive, data_dir, printer)
    finally:
        if printer is not None:
            printer.finish()
    print(
        f"strongroom: restored {len(result.members)} files (checksums verified) into {result.data_dir} "
        f"from a backup of {result.source} made {result.created}"
    )
    steps: list[str] = []
    for name in result.pins_to_restore:
        what = "the security officer PIN" if name.endswith("so.pin") else "the user PIN"
        steps.append(f"put back {result.data_dir / name} ({what} of the backed-up token; mode 0600)")
    if result.pin_env is not None:
        steps.append(f"set the environment variable {result.pin_env} to the token's user PIN (custody.pin_env)")
    steps += [f"note: {note}" for note in result.notes]
    if steps:
        print("Before serving it:")
        for step in steps:
            print(f"  {step}")
    print("Start the server:")
    print(f"  strongroom serve --data-dir {result.data_dir}")
    return 0
