"""Overlay pictures (paper Fig. 4 style): slices with lesion are chosen, a PNG is written atomically."""
import numpy as np

from isles_pipeline.evaluation.overlay import pick_slices, save_overlay


def test_pick_slices_prefers_lesion_slices_and_falls_back_to_even_spacing():
    prediction = np.zeros((10, 8, 8), bool)
    truth = np.zeros_like(prediction)
    prediction[7, 2:4, 2:4] = True
    truth[2, 1:6, 1:6] = True
    assert pick_slices(prediction, truth, num_slices=4) == [2, 7]
    prediction[:] = True  # a prediction everywhere must not push the lesion's slice out
    assert 2 in pick_slices(prediction, truth, num_slices=2)
    assert pick_slices(np.zeros((10, 8, 8), bool), num_slices=4) == [0, 3, 6, 9]


def test_save_overlay_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    input_map = rng.normal(size=(3, 32, 32))
    pseudo_dwi = rng.normal(size=(3, 32, 32))
    prediction = np.zeros((3, 32, 32), bool)
    truth = np.zeros_like(prediction)
    prediction[1, 10:20, 10:20] = True
    truth[1, 12:22, 12:22] = True
    path = tmp_path / "pictures" / "case.png"
    shown = save_overlay(path, input_map, prediction, pseudo_dwi, truth, input_name="Tmax", title="case")
    assert shown == [1]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["case.png"]  # no temporary left behind
    save_overlay(tmp_path / "no_dwi.png", input_map, prediction)  # no pseudo-DWI, no truth: still a picture
    assert (tmp_path / "no_dwi.png").stat().st_size > 0
