"""A training phase as data: what trains, with which optimizer, for how long, when to stop."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import keras

from cifar.errors import ConfigError
from cifar.finetuning import FinetuningPolicy, get_policy

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine")


@dataclass
class Phase:
    """One phase of the schedule; each phase recompiles the model.

    Args:
        name: unique phase name (``frozen``, ``finetune``...), used in logs and history.
        trainable: policy name (``"frozen_base"``, ``"unfreeze_last(50)"``, ``"all"``) or a
            :class:`~cifar.finetuning.FinetuningPolicy` instance.
        optimizer: ``adam``, ``adamw``, ``sgd`` or ``rmsprop``.
        learning_rate: initial learning rate.
        epochs: maximum epochs (early stopping may end the phase sooner).
        max_images: cap the phase at about this many training images seen: with ``n``
            training images it runs at most ``ceil(max_images / n)`` epochs (at least
            ``min_epochs``), so a large folder gets fewer, longer epochs and the phase's cost
            stays bounded; 0 disables the cap. The Trainer resolves it once the data is
            loaded, and ``config.json`` records the resulting ``epochs``.
        min_epochs: fewest epochs ``max_images`` may leave.
        patience: early-stopping patience in epochs (0 disables early stopping).
        monitor: metric watched by early stopping (best weights are restored at the end).
        schedule: ``constant`` or ``cosine`` (cosine decay over the phase's steps).
        warmup_epochs: with ``cosine``, raise the learning rate linearly from 0 over this many
            epochs before the decay starts (large updates through freshly unfrozen layers
            would otherwise undo what the head learned); 0 disables it.
        label_smoothing: categorical cross-entropy label smoothing.
        weight_decay: decoupled weight decay (``adamw``/``sgd``); 0 disables it.
        train_bn: also train the BatchNormalization layers the policy unfreezes (they then
            normalise with batch statistics and update their moving averages); by default they
            stay frozen, as the Keras fine-tuning guide recommends.
    """

    name: str = "frozen"
    trainable: str | FinetuningPolicy = "frozen_base"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    epochs: int = 10
    max_images: int = 0
    min_epochs: int = 3
    patience: int = 3
    monitor: str = "val_loss"
    schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    train_bn: bool = False

    @property
    def policy(self) -> FinetuningPolicy:
        """The freeze/unfreeze policy object of this phase."""
        policy = get_policy(self.trainable)
        if self.train_bn and not policy.train_bn:
            policy = copy.copy(policy)  # never mutate a policy object the caller passed in
            policy.train_bn = True
        return policy

    def validate(self, key: str = "phase") -> None:
        """Raise ConfigError naming ``key`` when a value is out of range."""
        checks = [
            (bool(self.name), "name", "must not be empty"),
            (self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}"),
            (self.max_images >= 0, "max_images", "must be >= 0 (0: no cap)"),
            (self.min_epochs >= 1, "min_epochs", "must be >= 1"),
            (self.learning_rate > 0, "learning_rate", f"must be > 0, got {self.learning_rate}"),
            (self.patience >= 0, "patience", f"must be >= 0, got {self.patience}"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, "schedule", f"must be one of {', '.join(SCHEDULES)}"),
            (0 <= self.warmup_epochs < self.epochs, "warmup_epochs", "must be in [0, epochs)"),
            (
                not self.warmup_epochs or self.schedule == "cosine",
                "warmup_epochs",
                "needs schedule = 'cosine'",
            ),
            (0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
        ]
        for ok, field_name, message in checks:
            if not ok:
                raise ConfigError(f"invalid configuration: {key}.{field_name}: {message}")
        try:
            self.policy  # noqa: B018 - resolving the policy validates its name
        except ConfigError as exc:
            raise ConfigError(f"invalid configuration: {key}.trainable: {exc}") from None

    def capped_to(self, n_train: int) -> Phase:
        """This phase with ``epochs`` capped by ``max_images`` for ``n_train`` images."""
        if not self.max_images or n_train <= 0:
            return self
        cap = max(self.min_epochs, -(-self.max_images // n_train))
        epochs = min(self.epochs, cap)
        if epochs == self.epochs:
            return self
        # The warm-up keeps its share of the phase (and at least leaves one epoch to decay).
        warmup = min(round(self.warmup_epochs * epochs / self.epochs), epochs - 1)
        if self.warmup_epochs:
            warmup = max(warmup, 1)
        return dataclasses.replace(self, epochs=epochs, warmup_epochs=warmup)

    def make_early_stopping(self) -> keras.callbacks.Callback | None:
        """This phase's resumable early stopping on ``monitor`` (None when ``patience`` is 0)."""
        from callbacks.early_stopping import ResumableEarlyStopping

        if self.patience <= 0:
            return None
        return ResumableEarlyStopping(
            monitor=self.monitor, patience=self.patience, restore_best_weights=True
        )

    def make_optimizer(self, steps_per_epoch: int) -> keras.optimizers.Optimizer:
        """A fresh optimizer for this phase (a new one per phase, as recompiling implies)."""
        lr: float | keras.optimizers.schedules.LearningRateSchedule = self.learning_rate
        if self.schedule == "cosine" and self.warmup_epochs:
            warmup = steps_per_epoch * self.warmup_epochs
            lr = keras.optimizers.schedules.CosineDecay(
                0.0,
                decay_steps=max(1, steps_per_epoch * self.epochs - warmup),
                warmup_target=self.learning_rate,
                warmup_steps=warmup,
            )
        elif self.schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(
                self.learning_rate, decay_steps=max(1, steps_per_epoch * self.epochs)
            )
        if self.optimizer == "adam":
            return keras.optimizers.Adam(lr)
        if self.optimizer == "adamw":
            return keras.optimizers.AdamW(lr, weight_decay=self.weight_decay or 0.004)
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(lr, momentum=0.9, weight_decay=self.weight_decay or None)
        return keras.optimizers.RMSprop(lr)


def reference_phases() -> list[Phase]:
    """The reference schedule: frozen base at Adam 1e-3, then the last 50 layers at 1e-5."""
    return [
        Phase(name="frozen", trainable="frozen_base", learning_rate=1e-3, epochs=10, patience=3),
        Phase(
            name="finetune",
            trainable="unfreeze_last(50)",
            learning_rate=1e-5,
            epochs=10,
            patience=3,
        ),
    ]
