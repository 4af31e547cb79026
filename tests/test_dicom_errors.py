"""A bad DICOM export is refused with one line naming the folder and the problem, exit 1, nothing written."""
import shutil

import numpy as np
import pydicom
import pytest

from isles_pipeline.cli.dicom_to_nifti import main
from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.phantom.dicom_export import slice_dataset, source_series, write_clutter, write_ctp_export


def export(folder, style="temporal_index", **options):
    series, origin, spacing, direction, times = source_series()
    return write_ctp_export(folder, series, origin, spacing, direction, times, style, **options)


def edit(path, **tags):
    ds = pydicom.dcmread(path)
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.save_as(path)


def missing_slice(folder):
    export(folder)[17].unlink()


def missing_slice_times_only(folder):
    export(folder, "times_only")[30].unlink()


def missing_slice_series_per_time_point(folder):
    export(folder, "series_per_time_point")[9].unlink()


def duplicated_instance(folder):
    files = export(folder, shuffle=True)
    shutil.copy(files[5], files[5].with_name("COPY_OF_IT"))


def duplicated_instance_times_only(folder):
    files = export(folder, "times_only")
    shutil.copy(files[5], folder / "again.dcm")


def different_size(folder):
    files = export(folder)
    original = pydicom.dcmread(files[6])
    small = slice_dataset(np.zeros((16, 40)), original.ImagePositionPatient, np.eye(3), (0.8, 0.9, 5.0))
    for name in ("SeriesInstanceUID", "FrameOfReferenceUID", "TemporalPositionIndex", "AcquisitionTime",
                 "ImageOrientationPatient", "PixelSpacing"):
        setattr(small, name, original.get(name))
    small.save_as(files[6], enforce_file_format=True)


def different_spacing(folder):
    edit(export(folder)[6], PixelSpacing=[0.9, 0.7])


def two_equal_series(folder):
    export(folder / "a", series_number=5)
    export(folder / "b", series_number=6)


def two_studies(folder):
    export(folder / "a", study_uid="1.2.826.0.1.3680043.8.498.101")
    export(folder / "b", study_uid="1.2.826.0.1.3680043.8.498.102")


def not_ct(folder):
    for path in export(folder):
        edit(path, Modality="MR")


def no_4d(folder):
    write_clutter(folder)


def no_times(folder):
    for path in export(folder, "times_only"):
        ds = pydicom.dcmread(path)
        del ds.AcquisitionTime, ds.ContentTime
        ds.save_as(path)


def uneven_slices(folder):
    for path in export(folder):
        if path.name.endswith("_002.dcm"):
            path.unlink()


CASES = {
    missing_slice: "a time point is missing a slice: time point",
    missing_slice_times_only: "a time point is missing a slice",
    missing_slice_series_per_time_point: "a time point is missing slice(s)",
    duplicated_instance: "duplicated instances",
    duplicated_instance_times_only: "duplicated instances",
    different_size: "slices of different sizes",
    different_spacing: "slices of different pixel spacing",
    two_equal_series: "two equally large 4D series",
    two_studies: "4D series of 2 studies: give the folder of one study",
    not_ct: "not CT",
    no_4d: "no 4D series",
    no_times: "no way to tell the time points apart",
    uneven_slices: "uneven slice spacing",
}


@pytest.mark.parametrize("make, problem", list(CASES.items()), ids=[f.__name__ for f in CASES])
def test_bad_export_gives_one_line_and_writes_nothing(tmp_path, capsys, make, problem):
    folder = tmp_path / "export"
    folder.mkdir()
    make(folder)
    with pytest.raises(CaseError) as raised:
        read_ctp_dicom(folder)
    assert str(raised.value).startswith(f"{folder}: ") and problem in str(raised.value), str(raised.value)
    out = tmp_path / "out"
    assert main(["-i", str(folder), "-o", str(out)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(folder) in error[0] and problem in error[0], error
    assert not out.exists()


def test_a_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["-i", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 1
    assert "not a folder" in capsys.readouterr().err
