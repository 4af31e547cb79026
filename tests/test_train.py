"""Training on a tiny preprocessed phantom: the loss goes down, files and checkpoint contract, exact resume
with --c, the no-DWI path, the CLI's bad-input lines. The tiny dataset fixtures are in conftest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import DATASET, Interrupted, interrupt_after_epoch, write_plans_variant

from isles_pipeline.cli.train import main as train_main
from isles_pipeline.files import atomic_write_json, read_json
from isles_pipeline.trainers import checkpoint as ckpt
from isles_pipeline.trainers.chain_trainer import ISLESChainTrainer
from isles_pipeline.trainers.run import run_training


def fold_folder(results: Path, trainer: str, plans: str = "ISLESTinyPlans", fold: int = 0) -> Path:
    return results / DATASET / f"{trainer}__{plans}__2d" / f"fold_{fold}"


def test_training_lowers_loss_and_writes_the_contract(tiny_roots):
    _, _, results = tiny_roots
    folder = run_training(18, 0, "ISLESChainTrainer", "ISLESTinyPlans", device="cpu", save_probabilities=True)
    assert folder == fold_folder(results, "ISLESChainTrainer")
    final = ckpt.load_checkpoint(folder / ckpt.FINAL)
    losses = final["logs"]["train_total"]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    for key in ("network_weights", "chain_kwargs", "trainer_name", "plans_name", "configuration", "fold", "epoch",
                "optimizer_state", "scheduler_state", "loss_state", "rng_states", "logs", "best_ema"):
        assert key in final, key
    assert final["epoch"] == 4 and final["configuration"] == "2d" and final["fold"] == 0
    assert final["plans_name"] == "ISLESTinyPlans" and final["trainer_name"] == "ISLESChainTrainer"
    from isles_pipeline.networks import IntegratedChain

    IntegratedChain(**final["chain_kwargs"]).load_state_dict(final["network_weights"])  # the predictor's path
    for name in (ckpt.FINAL, ckpt.BEST, "training_log.txt", "progress.png"):
        assert (folder / name).is_file(), name
    assert not (folder / ckpt.LATEST).exists(), "the final checkpoint supersedes the interim one"
    assert (folder.parent / "plans.json").is_file() and (folder.parent / "dataset.json").is_file()
    log = (folder / "training_log.txt").read_text()
    assert "generator loss on" in log and "epoch 3:" in log and "pseudo Dice" in log
    summary = json.loads((folder / "validation" / "summary.json").read_text())
    cases = [row["case"] for row in summary["metric_per_case"]]
    assert cases and "dice" in summary["mean"]
    import SimpleITK as sitk

    for case in cases:
        prediction = sitk.ReadImage(str(folder / "validation" / f"{case}.nii.gz"))
        reference = sitk.ReadImage(str(tiny_roots[0] / DATASET / "labelsTr" / f"{case}.nii.gz"))
        assert prediction.GetSize() == reference.GetSize()  # original geometry, not the 32 x 32 grid
        assert prediction.GetSpacing() == pytest.approx(reference.GetSpacing(), rel=1e-4)
        assert (folder / "validation" / f"{case}.npz").is_file()
    # --val redoes only the validation, from checkpoint_final
    (folder / "validation" / "summary.json").unlink()
    assert train_main(["18", "0", "-p", "ISLESTinyPlans", "-device", "cpu", "--val"]) == 0
    assert (folder / "validation" / "summary.json").is_file()


def test_resume_with_c_matches_an_uninterrupted_run(tiny_roots, monkeypatch, tmp_path):
    _, _, results = tiny_roots
    monkeypatch.setattr(ISLESChainTrainer, "save_every", 2)
    run_training(18, 0, "ISLESChainTrainer", "ISLESTinyPlans", device="cpu")
    uninterrupted = ckpt.load_checkpoint(fold_folder(results, "ISLESChainTrainer") / ckpt.FINAL)

    monkeypatch.setenv("ISLES_results", str(tmp_path / "killed"))
    original = interrupt_after_epoch(monkeypatch, ISLESChainTrainer, 2)
    with pytest.raises(Interrupted):
        run_training(18, 0, "ISLESChainTrainer", "ISLESTinyPlans", device="cpu")
    killed = fold_folder(tmp_path / "killed", "ISLESChainTrainer")
    assert not (killed / ckpt.FINAL).exists() and ckpt.load_checkpoint(killed / ckpt.LATEST)["epoch"] == 2
    monkeypatch.setattr(ISLESChainTrainer, "on_epoch_end", original)
    run_training(18, 0, "ISLESChainTrainer", "ISLESTinyPlans", device="cpu", continue_training=True)
    resumed = ckpt.load_checkpoint(killed / ckpt.FINAL)
    assert "resumed from checkpoint_latest.pth after epoch 2" in (killed / "training_log.txt").read_text()
    for part in ("network_weights", "loss_state"):
        for key, value in uninterrupted[part].items():
            assert torch.equal(value, resumed[part][key]), (part, key)
    for key in ("train_total", "val_loss", "pseudo_dice", "lr"):
        assert resumed["logs"][key] == uninterrupted["logs"][key], key


def test_continue_without_checkpoint_starts_fresh(tiny_roots, monkeypatch, capsys):
    _, preprocessed, results = tiny_roots
    write_plans_variant(preprocessed, "ISLESOneEpochPlans", num_epochs=1, iterations_per_epoch=2,
                        val_iterations_per_epoch=1)
    assert train_main(["18", "1", "-p", "ISLESOneEpochPlans", "-device", "cpu", "--c"]) == 0
    log = (fold_folder(results, "ISLESChainTrainer", "ISLESOneEpochPlans", 1) / "training_log.txt").read_text()
    assert "no checkpoint" in log and "starting a fresh training" in log


def test_nodwi_variant_ignores_the_phantoms_dwi(tiny_roots):
    folder = run_training(18, 1, "ISLESChainTrainer_noDWI", "ISLESTinyPlans", device="cpu")
    assert "the generator's DWI loss is OFF" in (folder / "training_log.txt").read_text()
    assert ckpt.load_checkpoint(folder / ckpt.FINAL)["uses_dwi"] is False


def test_without_dwi_the_generator_loss_is_off(tiny_roots, monkeypatch, tmp_path):
    raw, preprocessed, results = tiny_roots
    copy = tmp_path / "preprocessed_no_dwi"
    shutil.copytree(preprocessed, copy)
    for path in copy.rglob("*_dwi.npy"):
        path.unlink()
    monkeypatch.setenv("ISLES_preprocessed", str(copy))
    write_plans_variant(copy, "ISLESOneEpochPlans", num_epochs=2, iterations_per_epoch=3,
                        val_iterations_per_epoch=1)
    folder = run_training(18, 0, "ISLESChainTrainer", "ISLESOneEpochPlans", device="cpu")
    log = (folder / "training_log.txt").read_text()
    assert "no DWI in the training data" in log and "the generator's DWI loss is OFF" in log
    final = ckpt.load_checkpoint(folder / ckpt.FINAL)
    assert final["uses_dwi"] is False
    assert "train_generator_pixel" not in final["logs"] and "train_segmentor_ce" in final["logs"]
    assert all(torch.isfinite(torch.tensor(final["logs"]["train_total"])))


def test_bad_input_gives_one_clear_line(tiny_roots, monkeypatch, tmp_path, capsys):
    def error_of(argv) -> str:
        assert train_main(argv) != 0
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1, lines
        return lines[0]

    assert "out of range" in error_of(["18", "7", "-p", "ISLESTinyPlans", "-device", "cpu"])
    line = error_of(["18", "0", "-tr", "NoSuchTrainer", "-p", "ISLESTinyPlans"])
    assert "unknown trainer" in line and "ISLESChainTrainer_UNetCE" in line and "ISLESChainTrainer_5epochs" in line
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in error_of(["18", "0", "-p", "ISLESTinyPlans", "-device", "cuda"])
    assert "--val needs" in error_of(["18", "2", "-p", "ISLESTinyPlans", "-device", "cpu", "--val"])
    monkeypatch.setenv("ISLES_preprocessed", str(tmp_path / "empty"))
    assert "run isles_plan_and_preprocess -d 18 first" in error_of(["18", "0", "-device", "cpu"])


def test_streamed_batches_train_like_resident_ones(tiny_roots):
    _, _, results = tiny_roots
    folder = run_training(18, 0, "ISLESChainTrainer_streamed", "ISLESTinyPlans", device="cpu")
    log = (folder / "training_log.txt").read_text()
    assert "streamed from memory-mapped cases" in log and "generator loss on" in log
    losses = ckpt.load_checkpoint(folder / ckpt.FINAL)["logs"]["train_total"]
    assert len(losses) == 4 and losses[-1] < losses[0], losses


def test_streamed_loader_oversamples_foreground(tiny_pipeline):
    from isles_pipeline.trainers.streaming import MemmapSliceLoader

    data = tiny_pipeline[1] / DATASET / "ISLESSmallPlans_2d"
    loader = MemmapSliceLoader(data, ["train_003", "train_004", "train_005"], 5, 0.4, use_dwi=True)
    batch = next(loader)
    assert batch["inputs"].shape[0] == 5 and batch["inputs"].dtype.name == "float16" and "dwi" in batch
    for _ in range(5):
        seg = next(loader)["seg"]
        assert seg[-2:].reshape(2, -1).any(axis=1).all()  # the last round(5 * 0.4) slices have lesion


def test_missing_or_stale_preprocessed_cases_are_named(tiny_roots, monkeypatch, tmp_path, capsys):
    _, preprocessed, _ = tiny_roots
    copy = tmp_path / "preprocessed_broken"
    shutil.copytree(preprocessed, copy)
    monkeypatch.setenv("ISLES_preprocessed", str(copy))
    data = copy / DATASET / "ISLESSmallPlans_2d"
    (data / "train_003.json").unlink()
    assert train_main(["18", "0", "-p", "ISLESTinyPlans", "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "not preprocessed" in err and "train_003" in err and "run isles_plan_and_preprocess -d 18 first" in err
    shutil.copy(preprocessed / DATASET / "ISLESSmallPlans_2d" / "train_003.json", data)
    properties = read_json(data / "train_001.json")
    properties["preprocessing_hash"] = "something-else"
    atomic_write_json(data / "train_001.json", properties)
    assert train_main(["18", "2", "-p", "ISLESTinyPlans", "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "train_001" in err
