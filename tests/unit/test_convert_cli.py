"""`kmip convert`: every direction, whole test-case files, placeholders and useful errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from kmip_client.cli import main
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
