"""The predict loop itself, with stand-ins for preprocessing and the network: the next case is prepared while
the current one is inferred, and a failing case is reported while the others are written."""
import threading
import time

import numpy as np

from isles_pipeline.errors import CaseError
from isles_pipeline.imageio.case_images import Geometry
from isles_pipeline.inference.case_inputs import InputCase, PreparedCase
from isles_pipeline.inference.predict import predict_cases
from isles_pipeline.inference.predictor import CasePrediction
from isles_pipeline.preprocessing.case_preprocessor import PreprocessedCase

GRID = Geometry((8, 8, 2), (0.9, 0.9, 5.0), (0.0, 0.0, 0.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))


class SlowPredictor:
    configuration = {}

    def __init__(self):
        self.calls = []

    def predict(self, data, properties):
        start = time.perf_counter()
        time.sleep(0.3)
        self.calls.append((properties["case"], start, time.perf_counter()))
        return CasePrediction(np.ones(GRID.shape_zyx, bool), np.ones(GRID.shape_zyx, np.float32), None,
                              (5.0, 0.9, 0.9))


def test_next_case_is_prepared_during_inference_and_failures_are_isolated(tmp_path):
    prepared_at = {}

    def prepare(case, configuration):
        prepared_at[case.name] = (time.perf_counter(), threading.current_thread().name)
        if case.name == "bad":
            raise CaseError("bad", "CT_MTT unreadable (x.nii)")
        properties = {"case": case.name, "original_geometry": GRID.to_json()}
        return PreparedCase(case.name, PreprocessedCase(np.zeros((2, 1, 8, 8)), None, None, None, properties),
                            None, 7)

    cases = [InputCase(name, "raw", tmp_path) for name in ("a", "bad", "c")]
    predictor = SlowPredictor()
    report = predict_cases(predictor, cases, tmp_path / "out", prepare=prepare)
    assert report.failures == {"bad": "bad: CT_MTT unreadable (x.nii)"}
    assert sorted(report.written) == ["a", "c"]
    assert (tmp_path / "out" / "a.nii.gz").is_file() and (tmp_path / "out" / "c.nii.gz").is_file()
    assert report.written["a"]["core_volume_ml"] == round(128 * 0.9 * 0.9 * 5.0 / 1000, 4)
    first_inference_end = predictor.calls[0][2]
    assert prepared_at["bad"][0] < first_inference_end  # prepared in the background while "a" ran
    assert all(thread.startswith("isles_prepare") for _, thread in prepared_at.values())
