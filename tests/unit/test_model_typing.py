"""mypy understands the model declarations (``dataclass_transform`` on ``structure`` and the
payload decorators): a wrong keyword, a wrong type or an assignment to a frozen field is an
error, a correct construction is not. Without it mypy saw only ``Struct.__init__`` and the
type gate went red on every constructor call."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = textwrap.dedent(
    """\
    from kmip_client.protocol.model.messages import ProtocolVersion
    from kmip_client.protocol.model.objects import KeyBlock, SymmetricKey
    from kmip_client.protocol.model.payloads.lifecycle import GetRequest, GetResponse

    ProtocolVersion(1, 4)
    ProtocolVersion(major=1, minor=4, extras=())
    GetRequest(unique_identifier="1")
    GetResponse(unique_identifier="1", managed_object=SymmetricKey(key_block=KeyBlock()))
    ProtocolVersion(major=1, minr=4)  # line 9
    GetResponse(unique_identifier=1)  # line 10
    ProtocolVersion(1, 4).major = 2  # line 11
    """
)


def test_mypy_checks_model_constructors(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports",
            "silent",
            "--no-error-summary",
            str(snippet),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    errors = {int(match[1]): match[2] for match in re.finditer(r"snippet\.py:(\d+): error: (.*)", result.stdout)}
    assert set(errors) == {9, 10, 11}, result.stdout + result.stderr
    assert '"minr"' in errors[9] and "[call-arg]" in errors[9]
    assert "[arg-type]" in errors[10]
    assert "read-only" in errors[11]
