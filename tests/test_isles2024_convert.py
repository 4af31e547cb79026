"""ISLES 2024 layout -> raw format, on phantom-written subjects (64 x 64, 8 frames): the quirks handled or
refused with one line, nothing of a refused case written, the rest converted, the raw folder verifiable."""
from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.convert_isles2024 import main as convert_main
from isles_pipeline.cli.generate_phantom import main as phantom_main
from isles_pipeline.dataset_conversion.isles2024_convert import convert_isles2024
from isles_pipeline.files import read_json
from isles_pipeline.imageio.nifti_stream import SeriesError, copy_series, header_scaling
from isles_pipeline.phantom.isles2024_writer import write_isles2024_phantom
from isles_pipeline.preprocessing.integrity import verify_dataset_integrity


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Three phantom subjects, oblique, 2 slices outside the CTP coverage at each end; read-only."""
    folder = tmp_path_factory.mktemp("isles24") / "train"
    write_isles2024_phantom(folder, num_cases=3, seed=1, size=64, num_frames=8, oblique=True)
    return folder


@pytest.fixture
def editable(archive, tmp_path) -> Path:
    copy = tmp_path / "train"
    shutil.copytree(archive, copy)
    return copy


def _derived(root: Path, number: int, session: int, suffix: str) -> Path:
    sub = f"sub-stroke{number:04d}"
    folder = root / "derivatives" / sub / f"ses-0{session}"
    if suffix in ("cbf", "cbv", "mtt", "tmax"):
        folder = folder / "perfusion-maps"
    return folder / f"{sub}_ses-0{session}_space-ncct_{suffix}.nii.gz"


def test_conversion_handles_the_quirks_and_passes_the_integrity_check(archive, tmp_path):
    result = convert_isles2024(archive, output_root=tmp_path)
    assert result.failures == [] and result.converted == ["stroke_0001", "stroke_0002", "stroke_0003"]
    folder = result.dataset_folder
    assert folder.name == "Dataset024_ISLES2024"
    assert verify_dataset_integrity(folder) == []
    dataset = read_json(folder / "dataset.json")
    assert dataset["numTraining"] == 3 and dataset["channel_names"]["0"] == "CT"
    record = dataset["cases"]["stroke_0002"]
    truth = read_json(archive / "phantom_truth" / "sub-stroke0002" / "truth.json")
    assert record["ctp_coverage_z"] == truth["coverage_z"] and record["num_slices"] == truth["num_slices"]
    assert record["frame_interval_s"] == 1.0 and record["num_frames"] == 8 and record["has_dwi"]
    assert set(record["notes"]) == {"oblique", "partial_ctp_coverage", "scaled_mask"}
    assert record["clinical"]["ses-01/demographic_baseline"]["NIHSS at admission"] >= 0
    assert "mRS 3 months" in record["clinical"]["ses-02/outcome"]
    # the mask: uint16 0/65535 with scl_slope 1/65535 in the source, uint8 {0, 1} on the NCCT grid here
    source_mask = _derived(archive, 2, 2, "lesion-msk")
    assert header_scaling(source_mask)[0] == pytest.approx(1 / 65535)
    label = sitk.ReadImage(str(folder / "labelsTr" / "stroke_0002.nii.gz"))
    ncct = sitk.ReadImage(str(folder / "imagesTr" / "stroke_0002_0000.nii.gz"))
    assert label.GetPixelID() == sitk.sitkUInt8
    np.testing.assert_array_equal(sitk.GetArrayFromImage(label),
                                  np.round(sitk.GetArrayFromImage(sitk.ReadImage(str(source_mask)))))
    assert label.GetDirection() == ncct.GetDirection() and abs(ncct.GetDirection()[4]) < 0.999  # oblique kept
    # the series: the source's voxels, frame by frame
    copied = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "ctpTr" / "stroke_0002.nii.gz")))
    np.testing.assert_array_equal(copied, sitk.GetArrayFromImage(sitk.ReadImage(str(_derived(archive, 2, 1, "ctp")))))


def test_bad_cases_are_refused_with_one_line_and_the_rest_converted(editable, tmp_path, monkeypatch, capsys):
    # 1: an interpolated mask (values 0.5 after scaling)
    mask_path = _derived(editable, 1, 2, "lesion-msk")
    mask = sitk.ReadImage(str(mask_path))
    array = sitk.GetArrayFromImage(mask)
    array[0, 0, 0] = 0.5
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.CopyInformation(mask)
    sitk.WriteImage(image, str(mask_path))
    # 3: the CTP on another grid (the raw, not the registered, series)
    ctp_path = _derived(editable, 3, 1, "ctp")
    series = sitk.ReadImage(str(ctp_path))
    spacing = list(series.GetSpacing())
    spacing[2] *= 2
    series.SetSpacing(spacing)
    sitk.WriteImage(series, str(ctp_path))
    result = convert_isles2024(editable, output_root=tmp_path)
    assert result.converted == ["stroke_0002"]
    assert len(result.failures) == 2 and all("\n" not in line for line in result.failures)
    assert "sub-stroke0001" in result.failures[0] and "lesion-msk" in result.failures[0] and "0.5" in result.failures[0]
    assert "sub-stroke0003" in result.failures[1] and "differs from the NCCT" in result.failures[1]
    written = sorted(p.name for p in result.dataset_folder.rglob("*.nii.gz"))
    assert written and all(name.startswith("stroke_0002") for name in written)  # nothing of a refused case
    assert not list(result.dataset_folder.rglob(".*tmp*"))
    # the CLI: the failures listed, exit status 1
    monkeypatch.setenv("ISLES_raw", str(tmp_path / "cli_raw"))
    assert convert_main(["-i", str(editable), "-d", "25", "-n", "Again"]) == 1
    err = capsys.readouterr().err
    assert "2 case(s) failed" in err and "sub-stroke0003" in err


def test_missing_ncct_and_other_spellings(editable, tmp_path):
    convert_isles2024(editable, output_root=tmp_path)  # an earlier, complete conversion ...
    (editable / "raw_data" / "sub-stroke0002" / "ses-01" / "sub-stroke0002_ses-01_ncct.nii.gz").unlink()
    # the challenge release's spellings: rawdata/, sub-strokecase, ses-0001, a mask without space-ncct
    (editable / "raw_data").rename(editable / "rawdata")
    old = editable / "derivatives" / "sub-stroke0001" / "ses-02" / "sub-stroke0001_ses-02_space-ncct_lesion-msk.nii.gz"
    old.rename(old.with_name("sub-stroke0001_ses-02_lesion-msk.nii.gz"))
    for top in ("rawdata", "derivatives", "phenotype"):
        folder = editable / top / "sub-stroke0003"
        for path in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
            if path.is_file():
                path.rename(path.with_name(path.name.replace("sub-stroke0003", "sub-strokecase0003")
                                           .replace("ses-01", "ses-0001")))
        for session in folder.glob("ses-01"):
            session.rename(folder / "ses-0001")
        folder.rename(folder.with_name("sub-strokecase0003"))
    result = convert_isles2024(editable, output_root=tmp_path)
    assert result.converted == ["stroke_0001", "stroke_0003"]
    assert result.failures == [f"sub-stroke0002: no NCCT (raw_data/.../ses-01/*_ncct) in "
                               f"{editable / 'rawdata' / 'sub-stroke0002' / 'ses-01'}"]
    assert not list(result.dataset_folder.rglob("stroke_0002*"))  # ... leaves nothing of a case now refused
    dataset = read_json(result.dataset_folder / "dataset.json")
    assert dataset["cases"]["stroke_0003"]["clinical"]["ses-0001/demographic_baseline"]["Age"] > 0


def test_series_copy_needs_a_frame_interval_and_keeps_the_temporary_out(tmp_path):
    frames = np.zeros((6, 3, 4, 5), np.int16)
    frames[:, 1] = 7
    image = sitk.GetImageFromArray(frames, isVector=False)
    source = tmp_path / "series.nii"
    sitk.WriteImage(image, str(source))
    with open(source, "r+b") as handle:  # pixdim[4] = 0: no timing in the header
        handle.seek(92)
        handle.write(struct.pack("<f", 0.0))
    with pytest.raises(SeriesError, match="no frame interval"):
        copy_series(source, tmp_path / "out.nii.gz")
    scan = copy_series(source, tmp_path / "out.nii.gz", frame_interval_s=2.0)
    assert scan.coverage_z == (1, 2) and scan.num_frames == 6 and scan.frame_interval_s == 2.0
    copied = sitk.ReadImage(str(tmp_path / "out.nii.gz"))
    assert copied.GetSpacing()[3] == 2.0
    np.testing.assert_array_equal(sitk.GetArrayFromImage(copied), frames)
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(gzip.compress(source.read_bytes()[:-100]))
    with pytest.raises(SeriesError, match="truncated"):
        copy_series(truncated, tmp_path / "cut_out.nii.gz", frame_interval_s=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.nii.gz", "out.nii.gz", "series.nii"]


def test_phantom_cli_writes_the_isles2024_layout(tmp_path):
    assert phantom_main(["-o", str(tmp_path / "train"), "-n", "1", "-size", "32", "-layout", "isles2024",
                         "--oblique"]) == 0
    sub = tmp_path / "train" / "derivatives" / "sub-stroke0001"
    assert (sub / "ses-01" / "sub-stroke0001_ses-01_space-ncct_ctp.nii.gz").is_file()
    assert (sub / "ses-01" / "perfusion-maps" / "sub-stroke0001_ses-01_space-ncct_tmax.nii.gz").is_file()
    mask = sub / "ses-02" / "sub-stroke0001_ses-02_space-ncct_lesion-msk.nii.gz"
    assert header_scaling(mask)[0] == pytest.approx(1 / 65535)
    phenotype = tmp_path / "train" / "phenotype" / "sub-stroke0001" / "ses-02"
    assert (phenotype / "sub-stroke0001_ses-02_outcome.csv").is_file()
