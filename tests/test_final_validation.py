"""Final validation predicts a case exactly as the fold ensemble of isles_predict does: one function, one
autocast policy. bf16 autocast (the CUDA policy) is simulated on the CPU, so the test runs without a GPU."""
from __future__ import annotations

import numpy as np
from train_helpers import DATASET, write_plans_variant

from isles_pipeline.imageio.nifti_io import read_array
from isles_pipeline.inference.predictor import Predictor
from isles_pipeline.preprocessing.storage import load_preprocessed_case
from isles_pipeline.trainers.run import run_training


def test_final_validation_equals_the_one_fold_ensemble(tiny_roots):
    _, preprocessed, _ = tiny_roots
    write_plans_variant(preprocessed, "ISLESFinalValPlans", num_epochs=1, iterations_per_epoch=2,
                        val_iterations_per_epoch=1)
    # bf16 autocast (what "auto" gives on CUDA), asked for on the CPU
    folder = run_training(18, 0, "ISLESChainTrainer", "ISLESFinalValPlans", device="cpu", save_probabilities=True,
                          precision="bf16")
    probe = Predictor.from_model_folder(folder.parent, folds=[0], device="cpu")
    batch = int(probe.configuration["batch_size"])  # the trainer's batch: same chunks, same arithmetic
    predictor = Predictor.from_model_folder(folder.parent, folds=[0], device="cpu", batch_size=batch,
                                            acceleration={"precision": "bf16"})
    data_folder = preprocessed / DATASET / predictor.configuration["data_identifier"]
    cases = sorted(p.name[: -len(".npz")] for p in (folder / "validation").glob("*.npz"))
    assert cases
    for case in cases:
        stored = load_preprocessed_case(data_folder, case)
        expected = predictor.predict(stored["data"], stored["properties"])
        saved = np.load(folder / "validation" / f"{case}.npz")["probabilities"].astype(np.float32)
        np.testing.assert_allclose(saved[1], expected.probabilities, rtol=0, atol=3e-4)  # float16 rounding
        np.testing.assert_array_equal(read_array(folder / "validation" / f"{case}.nii.gz")[0] > 0, expected.mask)
    fp32 = Predictor.from_model_folder(folder.parent, folds=[0], device="cpu", batch_size=batch,
                                       acceleration={"precision": "fp32"}).predict(stored["data"],
                                                                                   stored["properties"])
    assert np.abs(fp32.probabilities - expected.probabilities).max() > 1e-5  # bf16 really was used
