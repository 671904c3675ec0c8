"""The fitted form: each fit exports its network once as a
:class:`~sk_weightfree._inference.Chain` with its head, and the public arrays beside it;
prediction, ``to_module()``, ``io.dump`` and ``to_onnx`` read it (the estimators'
:class:`FittedFormMixin`)."""

import copy

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.utils.validation import validate_data

from ._training import ResidentData
from .nn._layers import remove_weighting

NON_FINITE_TRAINING = ("Training produced non-finite weights. The input may contain very "
                       "large values: scale it (e.g. StandardScaler) or lower lr.")


def _oriented(weight):
    """A layer's (out, in) weight as (in, out); convolution kernels stay as they are."""
    return weight.T if weight.ndim == 2 else weight


def _numpy(tensors):
    """Tensors as float64 arrays of their own."""
    return [t.detach().cpu().double().numpy().copy() for t in tensors]


class FittedFormMixin:
    """Export at the end of ``fit`` (``coefs_``, ``masks_``, the per-unit arrays, the
    history, and the chain), ``to_module()``, and the network's output ``z`` for
    prediction."""

    def _export_fitted_attributes(self):
        module = self.net_.module_
        module.eval()
        if not all(t.isfinite().all() for t in module.state_dict().values()
                   if t.is_floating_point()):
            raise ValueError(NON_FINITE_TRAINING)

        # linear layers in MLPClassifier's (n_in, n_out) orientation, convolutions in
        # torch's (out, in, kh, kw) layout
        coefs, intercepts, scales = FittedFormMixin._network_members(self)[0]
        self.masks_ = [_oriented(m.detach().cpu().numpy().astype(bool))
                       for _, m in module.connections()]
        units = module.unit_arrays()
        if "unit_signs" in units:
            self.unit_signs_ = _numpy(units["unit_signs"])
        self.paired_inputs_ = bool(getattr(module, "paired", False))
        self.coefs_, self.intercepts_, scales = self._fold_outputs(coefs, intercepts, scales)
        if scales is not None:
            self.unit_scales_ = scales
        self.n_connections_ = int(sum(m.sum() for m in self.masks_))
        self.density_ = self.n_connections_ / sum(m.size for m in self.masks_)
        self.n_layers_ = len(self.coefs_) + 1
        self.history_ = [
            {
                "epoch": row["epoch"],
                "train_loss": float(row["train_loss"]),
                **{key: float(row[key]) for key in ("valid_loss", "valid_score")
                   if key in row},
                "seconds": float(row["dur"]),
            }
            for row in self.net_.history if "train_loss" in row
        ]
        self.n_iter_ = len(self.history_)
        self.loss_curve_ = [row["train_loss"] for row in self.history_]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        if self.early_stopping:
            self.validation_scores_ = [row.get("valid_score") for row in self.history_]
            self.best_validation_score_ = max(
                (s for s in self.validation_scores_ if s is not None), default=None)
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_, default=None)
        self._chain = self._export_chain()

    def _network_members(self):
        """The networks whose outputs prediction combines, as exported from the torch
        module: ``(coefs, intercepts, unit_scales)`` each, before the head's target map
        (None: no per-unit scales). One for every estimator but weight-agnostic
        ensembles."""
        module = self.net_.module_
        units = module.unit_arrays()
        coefs = [_oriented(w) for w in _numpy(w for w, _ in module.connections())]
        scales = _numpy(units["unit_scales"]) if "unit_scales" in units else None
        return [(coefs, _numpy(units["intercepts"]), scales)]

    def _prediction_members(self):
        """The members in the form of the public arrays (the head's target map folded
        into the last layer): each reproduces its network's outputs by the user guide's
        formula."""
        return [self._fold_outputs(*member) for member in self._network_members()]

    def _export_chain(self):
        """The fitted network as one :class:`~sk_weightfree._inference.Chain` with its
        head: what CPU prediction, ``io.dump``, ``to_onnx`` and ``to_module()`` read.

        A multilayer network's from the module's exported arrays; a template's traced
        with ``torch.fx``. None for a template whose forward is not a chain of supported
        layers (a residual connection, a weight-agnostic template): such a network
        predicts with its torch module, through the same head, and
        ``io.dump``/``to_onnx`` say why they refuse it.
        """
        from ._inference import perceptron_chain
        from ._tracing import NotAChainError, chain_from_template, target_affine

        if self.module is not None:
            try:
                # building plain layers draws initial weights: leave the caller's rng
                with torch.random.fork_rng(devices=[]):
                    return chain_from_template(self)
            except NotAChainError:
                return None
        is_classifier = hasattr(self, "classes_")
        return perceptron_chain(
            self._network_members(), activation=self.activation,
            unit_signs=getattr(self, "unit_signs_", None), paired=self.paired_inputs_,
            target=target_affine(self), n_features_in=int(self.n_features_in_),
            out_activation=self.out_activation_,
            classes=np.asarray(self.classes_) if is_classifier else None,
            n_outputs=int(self.n_outputs_), estimator=type(self).__name__)

    def _fold_outputs(self, coefs, intercepts, unit_scales):
        """Heads whose outputs are mapped after the network fold the map into the last
        layer here, so that the exported arrays give the predictions directly."""
        return coefs, intercepts, unit_scales

    def to_module(self):
        """The fitted network as plain torch layers, in eval mode, whose output is what
        ``decision_function`` and ``predict`` are computed from.

        The module returns the network's output ``z``: for classifiers the logits in
        ``classes_`` order (``predict_proba`` is their softmax, or sigmoid for multilabel
        targets; a weight-agnostic ensemble's are the log of its mean probability), for
        regressors the predictions in ``y``'s units, shape (n_samples, n_outputs). It is
        built from the fitted chain (the layers of ``coefs_``, ``intercepts_`` and the
        per-unit arrays: ``nn.Linear``/``nn.Conv2d`` weights, a
        :class:`~sk_weightfree.nn.PairedInput` where inputs are paired, per-unit affine
        maps and activations), followed by the head; a template that is not a chain keeps
        its own plain layers before the head. It is on the training device, in the
        training dtype.

        Returns
        -------
        module : torch.nn.Module
        """
        from ._tracing import Head, chain_module, target_affine

        check_is_fitted(self)
        module = self.net_.module_
        dtype = next((t.dtype for t in module.state_dict().values()
                      if t.is_floating_point()), torch.float32)
        chain = getattr(self, "_chain", None)  # None too while a fit is under way
        if chain is not None:
            plain = chain_module(chain)
        else:  # remove_weighting: a copy made during a weighted fit
            plain = torch.nn.Sequential(remove_weighting(module.to_module()),
                                        Head(self.out_activation_, target_affine(self)))
        return plain.to(device=self._module_device(), dtype=dtype).eval()

    def _module_device(self):
        module = self.net_.module_
        tensor = next(module.parameters(), None)
        tensor = next(module.buffers(), None) if tensor is None else tensor
        return torch.device("cpu") if tensor is None else tensor.device

    def _prediction_module(self):
        """The module prediction runs where the numpy chain does not (another device, or a
        template that is not a chain), and the input dtype it takes.

        On the CPU a float64 copy, made once per fitted model: float64 makes a sample's
        output independent of the batch it is in (float32 GEMM kernels sum in a
        batch-size-dependent order).
        """
        module = self.net_.module_
        if self._module_device().type != "cpu":
            return module.eval(), None
        key = (id(module),) + tuple(t._version for t in module.parameters()) + tuple(
            t._version for t in module.buffers())
        cache = self.net_.__dict__.get("_predict_cache")  # not the estimator's: predict
        if cache is None or cache[0] != key:              # leaves its __dict__ unchanged
            cache = (key, copy.deepcopy(module).double().eval())
            self.net_.__dict__["_predict_cache"] = cache
        return cache[1], torch.float64

    def _forward_outputs(self, X):
        """The network's output ``z``, what the head turns into answers: logits for
        classifiers (an ensemble's: the log of its mean probability), predictions in
        ``y``'s units for regressors.

        In ``X``'s floating type: float32 stays float32, anything else is float64. On the
        CPU through the fitted chain (what ``io.load`` predicts with), else through the
        torch module and the same head rules.
        """
        from ._inference import compute_dtype

        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
        )
        if self._chain is not None and self._module_device().type == "cpu":
            outputs = self._chain_outputs(X)
        else:
            outputs = self._module_outputs(X)
        return outputs.astype(compute_dtype(X.dtype), copy=False)

    def _chain_outputs(self, X):
        """``z`` from the fitted chain (numpy, CPU)."""
        from ._inference import forward

        try:
            return forward(self._chain, X)
        except MemoryError as exc:
            raise MemoryError(
                f"{type(self).__name__} ran out of memory predicting {X.shape[0]} "
                f"rows on the cpu ({exc}). Predict fewer rows at a time."
            ) from None

    def _module_outputs(self, X):
        """``z`` from the torch module (another device, or a template that is not a
        chain), through the head rules: members combined, targets un-scaled."""
        from ._inference import combine_members
        from ._tracing import target_affine

        module, dtype = self._prediction_module()
        data = ResidentData(X, None, self._module_device(), dtype=dtype)
        rows = self._prediction_rows(X.shape[1])
        with torch.inference_mode(), self._device_errors():
            outputs = [
                module(data.rows(slice(start, start + rows))).double().cpu()
                for start in range(0, len(data), rows)
            ]
        outputs = torch.cat(outputs, dim=-2).numpy()
        if outputs.ndim == 3:
            outputs = combine_members(outputs, self.out_activation_)
        target = target_affine(self)
        return outputs if target is None else target(outputs)
