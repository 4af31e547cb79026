"""nnU-Net v2's stock trainer with the training length of the isles_pipeline benchmark rows.

Loaded by nnU-Net itself through `nnUNet_extTrainer` (nnunetv2 2.8 searches that folder for the class name
given with -tr), so it lives outside the isles_pipeline package, which never imports nnunetv2.

Only the length changes: number of epochs, training iterations per epoch and validation iterations per
epoch, read from the environment because nnUNetv2_train builds the trainer from its command line. They are
computed by `experiments.nnunet_row.budget_schedule` so that epochs x iterations x the
plans' 2d batch size matches the number of 2D training slices our own rows see per fold; this trainer
checks that product against ISLES_NNUNET_SLICES and refuses to train when it differs (e.g. the plans'
batch size changed after the schedule was computed). Everything else is nnU-Net's default: the 2d
configuration's network and batch size, its augmentation, Dice + CE loss with deep supervision, SGD with
poly learning-rate decay over the (shorter) run, its final validation and checkpoints.
"""
import os

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

ENVIRONMENT = ("ISLES_NNUNET_EPOCHS", "ISLES_NNUNET_ITERATIONS", "ISLES_NNUNET_VAL_ITERATIONS",
               "ISLES_NNUNET_SLICES")


class nnUNetTrainer_ISLESBudget(nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
        if missing:
            raise RuntimeError(f"nnUNetTrainer_ISLESBudget needs {', '.join(missing)} in the environment "
                               "(set by experiments.nnunet_row)")
        epochs, iterations, val_iterations, slices = (int(os.environ[name]) for name in ENVIRONMENT)
        batch_size = self.configuration_manager.batch_size
        if epochs * iterations * batch_size != slices:
            raise RuntimeError(f"nnUNetTrainer_ISLESBudget: {epochs} epochs x {iterations} iterations x batch "
                               f"{batch_size} (plans) != ISLES_NNUNET_SLICES={slices}")
        self.num_epochs = epochs
        self.num_iterations_per_epoch = iterations
        self.num_val_iterations_per_epoch = val_iterations
        self.print_to_log_file(f"ISLES budget: {epochs} epochs x {iterations} iterations x batch {batch_size} = "
                               f"{slices} training slices; {val_iterations} validation iterations per epoch")
