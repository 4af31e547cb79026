"""nnU-Net v2's stock trainer given a wall-clock budget instead of an epoch count.

Loaded by nnU-Net through `nnUNet_extTrainer` (see nnUNetTrainer_ISLESBudget.py for why it lives here). The
long phantom benchmark (`experiments.phantom_long_budget`) gives it the seconds our full chain took per fold,
so that nnU-Net with its own plan (its batch size and patch) is compared at the same time on the same machine.

What changes against the stock trainer, and only this:
- the length: epochs of ISLES_NNUNET_ITERATIONS training iterations (ISLES_NNUNET_VAL_ITERATIONS validation
  iterations) run until ISLES_NNUNET_SECONDS of training loop have passed. After every epoch the number of
  epochs that still fit is estimated from the mean epoch time so far, and nnU-Net's poly learning-rate
  schedule is stretched over that estimate, so the rate still decays towards 0 at the end of the budget;
- hence `run_training` is a loop over the stock hooks (on_epoch_start, train steps, validation steps,
  on_epoch_end, ...) that stops on time instead of after a fixed range of epochs.
Network, batch size, patch, augmentation, loss, optimizer, checkpoints and final validation are nnU-Net's.
"""
import math
import os
import time

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

ENVIRONMENT = ("ISLES_NNUNET_SECONDS", "ISLES_NNUNET_ITERATIONS", "ISLES_NNUNET_VAL_ITERATIONS")
PROVISIONAL_EPOCHS = 1000  # the first epoch's learning rate is the initial one either way


class nnUNetTrainer_ISLESWallClock(nnUNetTrainer):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device('cuda')):
        super().__init__(plans, configuration, fold, dataset_json, device)
        missing = [name for name in ENVIRONMENT if not os.environ.get(name)]
        if missing:
            raise RuntimeError(f"nnUNetTrainer_ISLESWallClock needs {', '.join(missing)} in the environment "
                               "(set by experiments.nnunet_row)")
        self.seconds_budget = float(os.environ["ISLES_NNUNET_SECONDS"])
        self.num_iterations_per_epoch = int(os.environ["ISLES_NNUNET_ITERATIONS"])
        self.num_val_iterations_per_epoch = int(os.environ["ISLES_NNUNET_VAL_ITERATIONS"])
        self.num_epochs = PROVISIONAL_EPOCHS
        self.print_to_log_file(f"ISLES wall clock: {self.seconds_budget:.0f} s of training loop, epochs of "
                               f"{self.num_iterations_per_epoch} iterations x batch "
                               f"{self.configuration_manager.batch_size}")

    def _epochs_that_fit(self, elapsed: float) -> int:
        done = self.current_epoch
        per_epoch = elapsed / max(done, 1)
        return done + max(0, math.floor((self.seconds_budget - elapsed) / per_epoch))

    def run_training(self):
        self.on_train_start()
        start = time.perf_counter()
        while self.current_epoch < self.num_epochs:
            self.on_epoch_start()
            self.on_train_epoch_start()
            outputs = [self.train_step(next(self.dataloader_train)) for _ in range(self.num_iterations_per_epoch)]
            self.on_train_epoch_end(outputs)
            with torch.no_grad():
                self.on_validation_epoch_start()
                outputs = [self.validation_step(next(self.dataloader_val))
                           for _ in range(self.num_val_iterations_per_epoch)]
                self.on_validation_epoch_end(outputs)
            self.on_epoch_end()  # increments current_epoch
            self.num_epochs = max(self.current_epoch, self._epochs_that_fit(time.perf_counter() - start))
            self.lr_scheduler.max_steps = self.num_epochs
        self.print_to_log_file(f"ISLES wall clock: {self.current_epoch} epochs x {self.num_iterations_per_epoch} "
                               f"iterations in {time.perf_counter() - start:.0f} s")
        self.on_train_end()
