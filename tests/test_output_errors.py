"""An output place the system refuses ends a command with one line naming it, exit 1, before any work."""
from __future__ import annotations

from isles_pipeline.cli import generate_phantom


def test_generate_phantom_into_a_file_is_one_line(tmp_path, capsys):
    occupied = tmp_path / "phantom"
    occupied.write_text("not a folder")
    assert generate_phantom.main(["-o", str(occupied), "-n", "1", "--size", "64"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"ERROR {occupied}: "), error
    assert occupied.read_text() == "not a folder"
