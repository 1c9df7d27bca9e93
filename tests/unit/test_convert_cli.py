"""`kmip convert`: every direction, whole test-case files, placeholders and useful errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kmip_client.cli import main
from kmip_client.convert import hex_to_bytes
from kmip_client.protocol.ttlv import decode_item
from kmip_client.protocol.xml_codec import items_from_xml_document

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "oasis"
SKLC = VECTORS / "v1.4" / "mandatory" / "SKLC-M-1-14.xml"


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        status = main(list(argv))
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def test_xml_file_to_ttlv_concatenates_every_message(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    status, wire, _ = run(capsysbinary, "convert", "--from", "xml", "--to", "ttlv", "--now", "2026-01-01T00:00:00Z", str(SKLC))
    assert status == 0
    offset, count = 0, 0
    while offset < len(wire):
        _, offset = decode_item(wire, offset)
        count += 1
    assert count == len(items_from_xml_document(SKLC.read_bytes(), placeholders=True))


def test_round_trip_through_every_format_keeps_placeholders_and_values(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    status, json_doc, _ = run(capsysbinary, "convert", "--from", "xml", "--to", "json", str(SKLC))
    assert status == 0 and b"$UNIQUE_IDENTIFIER_0" in json_doc
    (tmp_path / "doc.json").write_bytes(json_doc)
    status, xml_doc, _ = run(capsysbinary, "convert", "--from", "json", "--to", "xml", str(tmp_path / "doc.json"))
    assert status == 0
    assert items_from_xml_document(xml_doc, placeholders=True) == items_from_xml_document(SKLC.read_bytes(), placeholders=True)
    assert xml_doc.startswith(b"<KMIP>")

    status, hex_doc, _ = run(capsysbinary, "convert", "--from", "xml", "--to", "hex", "--now", "0", str(SKLC))
    (tmp_path / "doc.hex").write_bytes(hex_doc)
    status, wire_doc, _ = run(capsysbinary, "convert", "--from", "hex", "--to", "ttlv", str(tmp_path / "doc.hex"))
    assert status == 0 and wire_doc.hex().encode() == b"".join(hex_doc.split())


def test_hex_input_tolerates_spacing_and_pipes(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    dump = b"42 00 78 | 01 | 00 00 00 10\n42 00 0D | 02 | 00 00 00 04 | 00 00 00 01 00 00 00 00\n"
    status, out, err = run(capsysbinary, "convert", "--from", "hex", "--to", "xml", stdin=dump)
    assert status == 0, err
    assert out.decode() == '<RequestMessage>\n  <BatchCount type="Integer" value="1"/>\n</RequestMessage>\n'


# The message of test_hex_input_tolerates_spacing_and_pipes, and what `xxd` and `xxd -p` make of it.
MESSAGE = bytes.fromhex("420078 01 00000010 42000d 02 00000004 00000001 00000000")
MESSAGE_XML = '<RequestMessage>\n  <BatchCount type="Integer" value="1"/>\n</RequestMessage>\n'
XXD = (
    b"00000000: 4200 7801 0000 0010 4200 0d02 0000 0004  B.x.....B.......\n"
    b"00000010: 0000 0001 0000 0000                      ........\n"
)


@pytest.mark.parametrize(
    "dump",
    [
        pytest.param(XXD, id="xxd"),
        pytest.param(XXD.replace(b"\n", b"\r\n"), id="xxd-crlf"),
        pytest.param(
            b"00000000: 42 00 78 01 00 00 00 10  B.x.....\n"  # xxd -g 1 -c 8
            b"00000008: 42 00 0d 02 00 00 00 04  B.......\n"
            b"00000010: 00 00 00 01 00 00 00 00  ........\n",
            id="xxd-g1-c8",
        ),
        pytest.param(b"4200780100000010\n42000d0200000004\n0000000100000000\n", id="xxd-p"),
        pytest.param(
            b"0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x10,\n  0x42, 0x00, 0x0d, 0x02, 0x00, 0x00,"
            b" 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00\n",
            id="xxd-i",
        ),
        pytest.param(b"0x420078010000001042000D0200000004 0X0000000100000000", id="0x-groups"),
        pytest.param(b"42:00:78:01:00:00:00:10\n\n\t42:00:0d:02:00:00:00:04 00000001 00000000\n", id="colons"),
    ],
)
def test_hex_input_reads_xxd_dumps_and_0x_prefixes(capsysbinary: pytest.CaptureFixture[bytes], dump: bytes) -> None:
    assert hex_to_bytes(dump) == MESSAGE
    status, out, err = run(capsysbinary, "convert", "--from", "hex", "--to", "xml", stdin=dump)
    assert status == 0, err
    assert out.decode() == MESSAGE_XML


def test_hex_input_from_a_real_xxd(tmp_path: Path) -> None:
    xxd = shutil.which("xxd")
    if xxd is None:
        pytest.fail("xxd is not installed: run scripts/setup (apt-get install xxd)")
    (tmp_path / "message.bin").write_bytes(MESSAGE * 3)
    for options in ([], ["-p"], ["-g", "1"], ["-c", "10"], ["-s", "8"]):
        dump = subprocess.run([xxd, *options, str(tmp_path / "message.bin")], capture_output=True, check=True).stdout
        assert hex_to_bytes(dump) == (MESSAGE * 3)[8 if "-s" in options else 0 :], options


@pytest.mark.parametrize(
    ("dump", "message"),
    [
        (b"42 00 78 01\n00 00 00 1\n", "odd number of hex digits (1) in '1' at line 2, column 10"),
        (
            b"4200780100000010 42000d020000000",
            "odd number of hex digits (15) in '42000d020000000' at line 1, column 18",
        ),
        (b"42 00 78 01\n00 0g 00 10\n", "not hex: 'g' at line 2, column 5"),
        (b"0x42 0x0q", "not hex: 'q' at line 1, column 9"),
        (b"0x42 0x 00", "not hex: '0x' without digits at line 1, column 6"),
        (b"\x42\x00\x78\x01", "not hex: '\\x00' at line 1, column 2"),  # binary TTLV given as hex
        (XXD.replace(b"0000 0010 42", b"0000 0010 4z"), "not hex: 'z' at line 1, column 32"),
        (XXD.replace(b"00000010:", b"00000020:"), "xxd offset 00000020 at line 2, where 00000010 follows"),
    ],
)
def test_bad_hex_names_the_line_and_column(
    capsysbinary: pytest.CaptureFixture[bytes], dump: bytes, message: str
) -> None:
    status, out, err = run(capsysbinary, "convert", "--from", "hex", "--to", "xml", stdin=dump)
    assert status == 1 and out == b""
    assert err.startswith("kmip convert: ") and message in err


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("--from", "hex", "--to", "xml"), b"42 00 78 01 00 00 00 ff", "declares 255 bytes but only 0 remain (at byte offset 4)"),
        (("--from", "hex", "--to", "xml"), b"42 00 7g", "not hex: 'g'"),
        (("--from", "ttlv", "--to", "xml"), b"", "no message"),
        (("--from", "xml", "--to", "json"), b"<RequestMessage><Foo/></RequestMessage>", "RequestMessage/Foo[0]: unknown tag 'Foo'"),
        (
            ("--from", "xml", "--to", "ttlv"),
            b'<RequestMessage><KeyMaterial type="ByteString" value="$KEY_MATERIAL_0"/></RequestMessage>',
            "RequestMessage/KeyMaterial: placeholders need values for a binary encoding: --bind KEY_MATERIAL_0=...",
        ),
    ],
)
def test_errors_name_the_offset_or_element_and_exit_non_zero(
    capsysbinary: pytest.CaptureFixture[bytes], argv: tuple[str, ...], stdin: bytes, message: str
) -> None:
    status, out, err = run(capsysbinary, "convert", *argv, stdin=stdin)
    assert status == 1 and out == b""
    assert err.startswith("kmip convert: ") and message in err


def test_bind_supplies_placeholder_values(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    doc = b'<RequestMessage><KeyMaterial type="ByteString" value="$KEY_MATERIAL_0"/><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/></RequestMessage>'
    status, out, _ = run(capsysbinary, "convert", "--from", "xml", "--to", "hex", "--bind", "KEY_MATERIAL_0=00ff", stdin=doc)
    assert status == 0
    wire = bytes.fromhex(out.decode())
    assert b"\x00\xff" in wire and b"$UNIQUE_IDENTIFIER_0" in wire


def test_missing_file_is_a_clean_error(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status, _, err = run(capsysbinary, "convert", "--from", "xml", "--to", "ttlv", "/nonexistent/file.xml")
    assert status == 1 and "No such file" in err


def test_console_script_is_installed() -> None:
    kmip = Path(sys.executable).parent / "kmip"
    done = subprocess.run([str(kmip), "convert", "--from", "xml", "--to", "json", str(SKLC)], capture_output=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith(b'{\n  "tag": "KMIP"')


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "PYTHONUNBUFFERED"])
def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path: Path, unbuffered: str) -> None:
    """``kmip convert ... | head -c 100`` on a document of some megabytes: head has its bytes and
    exits while kmip still writes; kmip ends with 141 (as a command killed by SIGPIPE), silently.
    (Unbuffered, the first write takes what the pipe held when head left, and only the next fails.)"""
    kmip = Path(sys.executable).parent / "kmip"
    wire = subprocess.run(
        [str(kmip), "convert", "--from", "xml", "--to", "hex", "--now", "0", str(SKLC)], capture_output=True, check=True
    ).stdout
    (tmp_path / "big.hex").write_bytes(wire * 200)
    command = (
        f'"{kmip}" convert --from hex --to xml "{tmp_path}/big.hex" 2>"{tmp_path}/stderr" | head -c 100 >/dev/null;'
        f' echo "${{PIPESTATUS[0]}}"'
    )
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert (tmp_path / "stderr").read_text() == ""  # no traceback, no "BrokenPipeError", no "Broken pipe"
    assert done.stdout == "141\n"
