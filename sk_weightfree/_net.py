"""The skorch net an estimator trains: its construction, callbacks, continuing-fit
update and device errors (the estimators' :class:`NetMixin`)."""

from contextlib import contextmanager

import torch
from skorch.callbacks import EarlyStopping

from ._training import CosineLR, EpochLog, EpochProgressBar, print_line

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
_FUSED_ADAM = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 4)


def _no_output(*args, **kwargs):
    """A picklable sink that drops skorch's messages (progress is the bar's job)."""


class NetMixin:
    """The estimator's skorch net (``net_``): built from the hyper-parameters, given the
    package's callbacks, updated for a continuing fit."""

    def _update_net(self):
        """Apply the parameters a continuing fit may change to the existing net."""
        net = self.net_
        net.set_params(lr=self.lr, batch_size=self.batch_size, max_epochs=self.max_epochs,
                       callbacks=self._callbacks(), **self._net_options())
        net.initialize_callbacks()  # set_params initialises them before it sets the list
        # skorch's set_params re-initialises a component for a "__" parameter, and has no
        # component to re-initialise for the iterator's: set as __init__ stores it
        net.iterator_train__shuffle = self.shuffle
        for group in net.optimizer_.param_groups:
            group["lr"] = self.lr
        self._update_search()
        self._fit_params = self._params_snapshot()

    def _make_net(self, module, device, shuffle_generator):
        if self.optimizer == "sgd":
            optimizer_params = {"momentum": self.momentum,
                                "nesterov": self.nesterovs_momentum and self.momentum > 0}
        else:
            optimizer_params = {"betas": (self.beta_1, self.beta_2)}
            if _FUSED_ADAM and device.type in ("cpu", "cuda"):
                optimizer_params["fused"] = True  # one kernel for the whole update
        return self._net_class(
            module=module,
            criterion=self._criterion(),
            criterion__reduction="none",
            optimizer=OPTIMIZERS[self.optimizer],
            **{f"optimizer__{k}": v for k, v in optimizer_params.items()},
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=self.shuffle,
            device=device,
            train_split=None,
            callbacks=self._callbacks(),
            predict_nonlinearity=self._predict_nonlinearity(),
            shuffle_generator=shuffle_generator,
            **self._net_options(),
        )

    def _net_options(self):
        """The net's parameters that follow the estimator's: the L2 penalty, the training
        forward pass (bf16 autocast, torch.compile) and skorch's messages."""
        return {"alpha": self.alpha,
                "autocast_dtype": torch.bfloat16 if self.precision == "bfloat16" else None,
                "use_torch_compile": self.torch_compile,
                # skorch's own messages (the stopping rule's, re-initialisations) with the log
                "verbose": int(self.verbose >= 2)}

    def _callbacks(self):
        log = self.verbose >= 2  # a line per epoch and the stopping rule's messages
        callbacks = [("epoch_log", EpochLog())] if log else []
        callbacks.append(
            ("stopping", EarlyStopping(
                monitor="valid_score" if self.early_stopping else "train_loss",
                lower_is_better=not self.early_stopping,
                patience=self.n_iter_no_change, threshold=self.tol, threshold_mode="abs",
                load_best=self.early_stopping, sink=print_line if log else _no_output,
            )))
        if self.lr_schedule == "cosine":
            callbacks.append(("lr_schedule", CosineLR()))
        callbacks += self._extra_callbacks()
        if self.verbose and not log:
            callbacks.append(("progress", EpochProgressBar(desc=type(self).__name__)))
        return callbacks

    @contextmanager
    def _device_errors(self):
        """Re-raise a device out-of-memory error as a ``MemoryError`` with advice."""
        try:
            yield
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not isinstance(exc, torch.OutOfMemoryError) and "out of memory" not in str(exc):
                raise  # MPS reports exhaustion as a plain RuntimeError
            raise MemoryError(
                f"{type(self).__name__} ran out of memory on device {self.device!r} ({exc}). "
                f"Try a smaller batch_size or hidden_layer_sizes, or device='cpu'."
            ) from None
