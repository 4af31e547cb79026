"""Perfusion maps written as DICOM Parametric Maps read back to the same values at the same world positions."""
import numpy as np
import pydicom

from isles_pipeline.imageio.dicom_ctp import read_ctp_dicom
from isles_pipeline.imageio.dicom_maps import write_maps_dicom
from isles_pipeline.phantom.dicom_export import source_series, write_ctp_export


def test_maps_round_trip_through_parametric_maps(tmp_path):
    series, origin, spacing, direction, times = source_series()
    write_ctp_export(tmp_path / "export", series, origin, spacing, direction, times, "temporal_index", shuffle=True)
    ctp = read_ctp_dicom(tmp_path / "export")
    rng = np.random.default_rng(2)
    maps = {name: rng.random(series.shape[1:]).astype(np.float32) * scale
            for name, scale in (("cbf", 80.0), ("tmax", 15.0))}
    paths = write_maps_dicom(maps, ctp.files[0], ctp.grid, tmp_path / "maps")
    assert sorted(p.name for p in paths) == ["cbf.dcm", "tmax.dcm"]
    for path in paths:
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
        assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ctp.series_uids[0]
        values = ds.pixel_array
        name = path.stem
        for frame, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            world = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
            z = int(round(np.linalg.solve(np.array(ctp.grid.direction).reshape(3, 3), world - ctp.grid.origin)[2]
                          / ctp.grid.spacing[2]))
            np.testing.assert_allclose(world, ctp.grid.index_to_world((0, 0, z)), atol=1e-4)
            np.testing.assert_array_equal(values[frame], maps[name][z])
        unit = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0]
        assert unit.CodeValue == {"cbf": "mL/(100.g)/min", "tmax": "s"}[name]
