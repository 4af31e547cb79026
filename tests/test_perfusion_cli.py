"""isles_perfusion_maps: outputs on the series' grid, frame times, and bad input refused without writing."""
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from isles_pipeline.cli.perfusion_maps import main
from isles_pipeline.files import read_json
from isles_pipeline.imageio.nifti_io import read_image
from isles_pipeline.perfusion import MAP_NAMES
from isles_pipeline.phantom.physiology import Bolus, tissue_curves

BOLUS = Bolus(6.0, 3.0, 1.5, 400.0, 12.0, 0.12)


def synthetic_head(frames=40, arteries=True, flat=False, uniform=False, bolus=BOLUS):
    """(T, 2, 40, 40) HU: background, a skull ring, brain at 30 HU (CBF 50, CBV 4, delay 1 s), and a few
    arterial voxels carrying the AIF; `flat`: no bolus; `uniform`: every head voxel the same curve."""
    yy, xx = np.mgrid[:40, :40]
    radius = np.hypot(yy - 19.5, xx - 19.5)
    base = np.where(radius < 18, 1400.0, -23.0)
    base[radius < 16] = 30.0
    times = np.arange(frames, dtype=float)
    tissue = tissue_curves(bolus, [50.0], [4.0], [1.0], [0.0], times)[:, 0]
    series = np.repeat(np.repeat(base[None, None], frames, 0), 2, 1).astype(np.float32)
    if not flat:
        series[:, :, radius < 16] += (tissue if not uniform else bolus(times))[:, None, None]
        if arteries and not uniform:
            series[:, :, 19:21, 10:30] += (bolus(times) - tissue)[:, None, None, None]
    rng = np.random.default_rng(0)
    return series + rng.normal(0, 0.5, series.shape).astype(np.float32)


def write_series(path, series, interval=1.0):
    image = sitk.GetImageFromArray(series, isVector=False) if series.ndim == 4 else sitk.GetImageFromArray(series)
    image.SetSpacing((0.9, 0.9, 5.0, interval)[: image.GetDimension()])
    sitk.WriteImage(image, str(path))
    return path


def run_and_expect_failure(capsys, path, out_dir, problem, extra=()):
    code = main(["-i", str(path), "-o", str(out_dir), "-device", "cpu", *extra])
    error = capsys.readouterr().err.strip()
    assert code == 1
    assert len(error.splitlines()) == 1 and str(path) in error and problem in error, error
    assert not out_dir.exists()


def test_phantom_case_gives_maps_on_the_series_grid(small_phantom, tmp_path, capsys):
    series_path = next((small_phantom / "case_1").glob("*CT_4DPWI*/*.nii"))
    assert main(["-i", str(series_path), "-o", str(tmp_path / "out"), "-device", "cpu"]) == 0
    source = read_image(series_path)
    for name in MAP_NAMES:
        result = read_image(tmp_path / "out" / f"{name}.nii.gz")
        assert result.GetSize() == source.GetSize()[:3]
        np.testing.assert_allclose(result.GetSpacing(), source.GetSpacing()[:3])
        np.testing.assert_allclose(result.GetOrigin(), source.GetOrigin()[:3])
        np.testing.assert_allclose(np.array(result.GetDirection()).reshape(3, 3),
                                   np.array(source.GetDirection()).reshape(4, 4)[:3, :3])
        values = sitk.GetArrayFromImage(result)
        assert np.isfinite(values).all() and values.min() >= 0 and values.max() > 0
    record = read_json(tmp_path / "out" / "aif.json")
    assert record["method"] == "osvd" and len(record["aif_hu"]) == len(record["grid_s"])
    assert record["aif_peak_hu"] > 100 and len(record["aif_voxels_zyx"]) > 0
    assert (tmp_path / "out" / "qc.png").stat().st_size > 10_000


def test_frame_times_csv_handles_a_non_uniform_protocol(tmp_path, capsys):
    series = synthetic_head(frames=50)
    kept = np.r_[np.arange(0, 24), np.arange(24, 50, 2)]  # 1 s frames, then 2 s frames
    path = write_series(tmp_path / "ctp.nii.gz", series[kept], interval=1.0)
    (tmp_path / "times.csv").write_text("time_s\n" + "\n".join(str(float(t)) for t in kept) + "\n")
    assert main(["-i", str(path), "-o", str(tmp_path / "csv"), "-frame_times", str(tmp_path / "times.csv"),
                 "--no_qc"]) == 0
    uniform = write_series(tmp_path / "uniform.nii.gz", series)
    assert main(["-i", str(uniform), "-o", str(tmp_path / "uniform"), "--no_qc"]) == 0
    from_csv = sitk.GetArrayFromImage(read_image(tmp_path / "csv" / "cbf.nii.gz"))
    reference = sitk.GetArrayFromImage(read_image(tmp_path / "uniform" / "cbf.nii.gz"))
    brain = reference > 0
    assert brain.sum() > 1000
    np.testing.assert_allclose(np.median(from_csv[brain]), np.median(reference[brain]), rtol=0.05)


def test_synthetic_head_values(tmp_path):
    path = write_series(tmp_path / "ctp.nii.gz", synthetic_head())
    assert main(["-i", str(path), "-o", str(tmp_path / "out"), "--no_qc", "--no_vof_correction"]) == 0
    maps = {n: sitk.GetArrayFromImage(read_image(tmp_path / "out" / f"{n}.nii.gz")) for n in MAP_NAMES}
    brain = maps["cbv"] > 0
    # 0.5 HU noise already makes oSVD regularise: CBF ~20 % low, Tmax ~1.5 s late (Wu et al. 2003 report the
    # same kind of bias); CBV, an area ratio, is unaffected
    assert np.median(maps["cbf"][brain]) == pytest.approx(50, rel=0.25)
    assert np.median(maps["cbv"][brain]) == pytest.approx(4, rel=0.05)
    assert np.median(maps["tmax"][brain]) == pytest.approx(1.0, abs=2.0)
    assert np.median(maps["mtt"][brain]) == pytest.approx(4.8, rel=0.3)
    assert maps["cbf"][:, 19:21, 12:28].max() == 0  # the artery is a vessel: masked
    assert maps["cbf"][:, 0, :].max() == 0 and maps["cbf"][:, 19, 2].max() == 0  # background, skull


def _zero_interval(path):
    with open(path, "r+b") as handle:
        handle.seek(76 + 4 * 4)  # pixdim[4]
        handle.write(struct.pack("<f", 0.0))
    return path


@pytest.mark.parametrize("case, problem", [
    ("3d", "expected a 4D CTP series"),
    ("few_frames", "at least 10 are needed"),
    ("flat", "no contrast bolus"),
    ("no_artery", "no arterial voxel found"),
    ("nan", "NaN or infinite"),
    ("zero_interval", "frame interval"),
    ("bad_csv", "is not a number"),
    ("not_hu", "is the series in Hounsfield units"),
    ("milliseconds", "frame times implausible for CT perfusion"),
])
def test_bad_input_is_one_line_exit_1_nothing_written(tmp_path, capsys, case, problem):
    series = synthetic_head()
    path = tmp_path / "ctp.nii"
    extra = ()
    if case == "3d":
        write_series(path, series[0])
    elif case == "few_frames":
        write_series(path, series[:6])
    elif case == "flat":
        write_series(path, synthetic_head(flat=True))
    elif case == "no_artery":
        write_series(path, synthetic_head(uniform=True))
    elif case == "nan":
        series[20, 1, 20, 20] = np.nan
        write_series(path, series)
    elif case == "zero_interval":
        _zero_interval(write_series(path, series))
    elif case == "milliseconds":  # pixdim[4] = 1000 without a time unit: 1000 s frames (the grid ran out of memory)
        write_series(path, series, interval=1000.0)
    elif case == "not_hu":  # stored unsigned without its rescale intercept: every value 1024 too high
        write_series(path, series + 1024)
    elif case == "bad_csv":
        write_series(path, series)
        (tmp_path / "times.csv").write_text("0, 1, 2, x\n")
        extra = ("-frame_times", str(tmp_path / "times.csv"))
        path_named = tmp_path / "times.csv"
        code = main(["-i", str(path), "-o", str(tmp_path / "out"), *extra])
        error = capsys.readouterr().err.strip()
        assert code == 1 and len(error.splitlines()) == 1 and str(path_named) in error and problem in error
        assert not (tmp_path / "out").exists()
        return
    run_and_expect_failure(capsys, path, tmp_path / "out", problem, extra)


def test_an_output_path_that_is_a_file_is_one_line_before_any_work(tmp_path, capsys):
    path = write_series(tmp_path / "ctp.nii", synthetic_head())
    occupied = tmp_path / "out"
    occupied.write_text("a file the user keeps")
    assert main(["-i", str(path), "-o", str(occupied), "-device", "cpu"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(occupied) in error and "not a folder" in error
    assert occupied.read_text() == "a file the user keeps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctp.nii", "out"]  # no hidden staging folder left


def test_a_disk_full_while_writing_leaves_the_former_outputs_whole(tmp_path, capsys, monkeypatch):
    """A first run's outputs stay as they were when a second run fails part-way through its files: the set
    lands together or not at all (the failure injected where the last file, qc.png, is written)."""
    import errno

    from isles_pipeline.perfusion import io as perfusion_io

    path = write_series(tmp_path / "ctp.nii", synthetic_head())
    out = tmp_path / "out"
    assert main(["-i", str(path), "-o", str(out), "-device", "cpu"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "qc.png"))

    monkeypatch.setattr(perfusion_io, "write_qc_figure", disk_full)
    assert main(["-i", str(path), "-o", str(out), "-device", "cpu", "--no_denoise"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "No space left on device" in error
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctp.nii", "out"]


def test_smoothing_mm_0_keeps_the_bilateral_filter_alone(tmp_path, capsys):
    series = synthetic_head()
    series += np.random.default_rng(1).normal(0, 4.0, series.shape).astype(np.float32)  # noise that asks for 4 mm
    path = write_series(tmp_path / "ctp.nii", series)
    assert main(["-i", str(path), "-o", str(tmp_path / "default"), "-device", "cpu"]) == 0
    assert main(["-i", str(path), "-o", str(tmp_path / "bilateral"), "-device", "cpu", "-smoothing_mm", "0"]) == 0
    default, bilateral = (read_json(tmp_path / name / "summary.json")["maps"] for name in ("default", "bilateral"))
    assert default["smoothing_mm"] == pytest.approx(4.0) and bilateral["smoothing_mm"] == 0
    assert default["denoise"] and bilateral["denoise"]
    cbf = {name: sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name / "cbf.nii.gz")))
           for name in ("default", "bilateral")}
    brain = cbf["default"] > 0
    assert np.std(cbf["bilateral"][brain]) > 1.2 * np.std(cbf["default"][brain])  # less smoothing, more scatter
    capsys.readouterr()
    assert main(["-i", str(path), "-o", str(tmp_path / "bad"), "-smoothing_mm", "-1"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "-smoothing_mm" in error[0] and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("arrival_s, warned", [(1.5, True), (3.0, True), (6.0, False)])
def test_a_scan_started_late_is_warned_of(tmp_path, capsys, arrival_s, warned):
    """The bolus 1.5 or 3 s after the first frame leaves 1 pre-contrast frame (the timing rule keeps the window
    3 s before the tissue's rise); at 6 s, 4 frames."""
    series = synthetic_head(bolus=Bolus(arrival_s, 3.0, 1.5, 400.0, 12.0, 0.12))
    path = write_series(tmp_path / "ctp.nii", series)
    assert main(["-i", str(path), "-o", str(tmp_path / "out"), "-device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "pre-contrast frame" in line]
    summary = read_json(tmp_path / "out" / "summary.json")
    assert len(lines) == (1 if warned else 0) and all(str(path) in line for line in lines)
    assert any("pre-contrast frame" in w for w in summary["warnings"]) == warned
    assert (summary["maps"]["baseline_frames"] < 3) == warned
