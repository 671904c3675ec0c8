"""The torch side of the prediction formula: a fitted torch network read into a
:class:`~sk_weightfree._inference.Chain`, and a chain written back as plain torch layers.

:func:`chain_from_estimator` gives the chain of any fitted estimator: multilayer networks
from their public arrays, networks fitted from a ``module`` template by tracing the plain
torch network with ``torch.fx``. :func:`chain_module` is the torch form of a chain (what
:func:`sk_weightfree.io.to_onnx` exports). Runs only where torch is: on the side that fits,
dumps or exports, never at :func:`sk_weightfree.io.load`.
"""

import operator
import weakref

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

from ._inference import (Activation, Affine, Chain, Conv2d, Linear, Paired, Pool2d, Reshape,
                         _prod, chain_from_attributes, forward)


# fitted net -> (the coefs_ list its chain was built from, the chain or None)
_PREDICTION_CHAINS = weakref.WeakKeyDictionary()


def prediction_chain(est):
    """The chain a fitted estimator predicts with on the CPU, or None when its network is
    not a chain of supported operations (torch predicts then).

    Built once per fitted network: again only when a fit, ``partial_fit`` or warm start
    has exported the network anew (a new ``coefs_`` list). Kept outside the estimator, so
    that predicting leaves its ``__dict__`` unchanged and its pickle does not grow.
    """
    cached = _PREDICTION_CHAINS.get(est.net_)
    if cached is None or cached[0] is not est.coefs_:
        try:
            chain = chain_from_estimator(est)
        except ValueError:  # a template that is not a chain, a weight-agnostic template
            chain = None
        cached = (est.coefs_, chain)
        _PREDICTION_CHAINS[est.net_] = cached
    return cached[1]


def chain_from_estimator(est):
    """The :class:`Chain` a fitted estimator predicts with.

    A multilayer network's from its public arrays
    (:func:`~sk_weightfree._inference.chain_from_attributes`); a network fitted from a
    ``module`` template's by tracing it (:func:`chain_from_template`), which raises
    ValueError naming the piece a chain cannot hold.
    """
    if getattr(est, "module", None) is not None:
        return chain_from_template(est)
    return chain_from_attributes(est)


def _refuse(est, piece, why):
    raise ValueError(
        f"This {type(est).__name__}'s network (module={_module_name(est.module)}) cannot be "
        f"written as a chain of supported layers: {piece} {why}. The compact file and the "
        f"ONNX export handle templates whose forward is a chain of Linear, Conv2d "
        f"(groups=1, zero padding), BatchNorm1d/2d, ReLU/Tanh/Sigmoid/Identity, "
        f"MaxPool2d/AvgPool2d (no padding, ceil_mode=False), Flatten/reshape and Dropout; "
        f"pickle the estimator instead."
    )


def _module_name(module):
    if hasattr(module, "func"):  # functools.partial
        module = module.func
    return getattr(module, "__name__", type(module).__name__)


def plain_template_module(est):
    """The fitted template network as plain torch layers, on the CPU in float64, eval mode:
    ``TemplateNetwork.to_module()`` (the reshape, then the body; {0,1} units as
    ``PairedInput -> Conv2d/Linear -> batch norm``). Refuses weight-agnostic networks."""
    from .nn import SharedWeightTemplate, TemplateNetwork

    module = est.net_.module_
    if isinstance(module, SharedWeightTemplate):
        raise ValueError(
            f"This {type(est).__name__} was fitted with a module template "
            f"(module={_module_name(est.module)}); weight-agnostic template networks "
            f"(SharedWeightUnit layers evaluated at a shared weight value, with bias nodes) "
            f"are not supported by the compact file or the ONNX export. Pickle the "
            f"estimator instead."
        )
    if not isinstance(module, TemplateNetwork):
        raise ValueError(f"This {type(est).__name__} has a {type(module).__name__} network, "
                         f"not a TemplateNetwork; it cannot be exported.")
    plain = module.to_module().to(device="cpu", dtype=torch.float64).eval()
    return plain


def chain_from_template(est):
    """The :class:`Chain` of a fitted estimator with a ``module`` template (dense, pruned,
    weight-free and random families).

    The plain torch network (:func:`plain_template_module`) is traced with
    ``torch.fx``; its graph must be a chain (each operation takes the previous one's
    output alone) of supported layers. Anything else raises ValueError naming the piece.
    The chain is checked against the torch network on a few random rows before it is
    returned.
    """
    plain = plain_template_module(est)
    ops = _trace_chain(est, plain)
    n_features = int(est.n_features_in_)
    is_classifier = hasattr(est, "classes_")
    default_out = "softmax" if is_classifier else "identity"
    out_activation = getattr(est, "out_activation_", default_out)
    chain = Chain(members=[_merge_affines(ops)], n_features_in=n_features,
                  out_activation=out_activation, estimator=type(est).__name__)
    # the chain must compute what torch computes (a guard against a misread layer)
    rows = np.random.default_rng(0).normal(size=(3, n_features))
    with torch.inference_mode():
        expected = plain(torch.as_tensor(rows)).double().numpy()
    got = forward(chain, rows)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-6, atol=1e-6):
        _refuse(est, "the traced network", "does not reproduce the torch network's outputs")
    n_last = chain.shapes()[-1][0]
    ops = chain.ops
    if is_classifier:
        if n_last != len(est.classes_):
            _refuse(est, "the output", f"has {n_last} values for {len(est.classes_)} classes")
    elif hasattr(est, "_target_scale"):  # regressors: outputs are mapped back to y's scale
        ops = _merge_affines(ops + [Affine(
            np.broadcast_to(np.asarray(est._target_scale, dtype=np.float64), (n_last,)),
            np.broadcast_to(np.asarray(est._target_mean, dtype=np.float64), (n_last,)))])
    return Chain(members=[ops], n_features_in=n_features, out_activation=out_activation,
                 classes=np.asarray(est.classes_) if is_classifier else None,
                 n_outputs=int(getattr(est, "n_outputs_", n_last)),
                 estimator=type(est).__name__)


def _merge_affines(ops):
    merged = []
    for op in ops:
        if isinstance(op, Affine) and merged and isinstance(merged[-1], Affine):
            merged[-1] = merged[-1].then(op)
        elif not (isinstance(op, Affine) and op.scale is None and op.offset is None):
            merged.append(op)
    return merged


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _trace_chain(est, plain):
    """The ops of ``plain``'s fx graph, which must be a chain of supported operations."""
    from .nn import PairedInput

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualified_name):
            return isinstance(m, PairedInput) or super().is_leaf_module(m, qualified_name)

    try:
        graph = Tracer().trace(plain)
    except Exception as exc:
        _refuse(est, "its forward", f"cannot be traced by torch.fx ({type(exc).__name__}: "
                                    f"{exc})")
    shape = (int(est.n_features_in_),)
    ops = []
    current = None
    sizes = {}  # nodes that hold sizes: the batch size "N", or a tuple of sizes

    body_prefix = f"{len(plain) - 1}."  # to_module(): [Unflatten,] then the template's body

    def where(node):
        if node.op == "call_module":
            name = node.target
            name = name[len(body_prefix):] if name.startswith(body_prefix) else name
            return f"{type(plain.get_submodule(node.target)).__name__} ({name})"
        if node.op == "call_method":
            return f"the tensor method .{node.target}()"
        if node.op == "call_function":
            return f"{getattr(node.target, '__module__', '') or ''}." \
                   f"{getattr(node.target, '__name__', node.target)}".lstrip(".")
        return f"{node.op} {node.target}"

    def nodes_in(value):
        if isinstance(value, fx.Node):
            return [value]
        if isinstance(value, (list, tuple)):
            return [n for v in value for n in nodes_in(v)]
        if isinstance(value, dict):
            return [n for v in value.values() for n in nodes_in(v)]
        return []

    def bind(node, names, defaults):
        """Positional and keyword arguments after the input, by name."""
        values = dict(defaults)
        values.update(zip(names, node.args[1:]))
        values.update(node.kwargs)
        return values

    def reshape_to(node, target):
        full = (None, *shape)
        if not (isinstance(target, tuple) and target and target[0] in ("N", -1)):
            _refuse(est, where(node), "reshapes across the batch axis (the first size must "
                                      "be the batch size or -1)")
        rest = list(target[1:])
        if any(not isinstance(s, int) for s in rest) or rest.count(-1) > 1:
            _refuse(est, where(node), f"reshapes to sizes {target} that are not plain "
                                      f"integers")
        total = _prod(full[1:])
        if -1 in rest:
            known = _prod(s for s in rest if s != -1)
            if known == 0 or total % known:
                _refuse(est, where(node), f"cannot reshape {shape} to {target}")
            rest[rest.index(-1)] = total // known
        if target[0] == -1 and _prod(rest) != total:
            _refuse(est, where(node), f"cannot reshape {shape} to {target} per sample")
        return Reshape(rest)

    def flatten(node, start, end):
        ndim = len(shape) + 1
        start, end = start % ndim, end % ndim
        if start < 1:
            _refuse(est, where(node), "flattens the batch axis (start_dim must be 1 or more)")
        full = (None, *shape)
        return Reshape(full[1:start] + (_prod(full[start:end + 1]),) + full[end + 1:])

    def convert_module(node, m):
        if isinstance(m, nn.Unflatten):
            ndim = len(shape) + 1
            dim = m.dim % ndim
            if dim < 1:
                _refuse(est, where(node), "unflattens the batch axis")
            return [reshape_to(node, ("N", *shape[:dim - 1], *m.unflattened_size,
                                      *shape[dim:]))]
        if isinstance(m, nn.Flatten):
            return [flatten(node, m.start_dim, m.end_dim)]
        if isinstance(m, PairedInput):
            if m.dim % (len(shape) + 1) != 1:
                _refuse(est, where(node), f"pairs axis {m.dim}; only axis 1 (features or "
                                          f"channels) is supported")
            return [Paired()]
        if type(m) in (nn.Linear, nn.Conv2d):
            weight = (m.weight_orig * m.weight_mask if hasattr(m, "weight_mask")
                      else m.weight).detach().double().numpy().copy()
            if isinstance(m, nn.Conv2d):
                if m.groups != 1 or m.padding_mode != "zeros":
                    _refuse(est, where(node), f"has groups={m.groups}, padding_mode="
                                              f"{m.padding_mode!r} (only groups=1 with zero "
                                              f"padding)")
                kh, kw = weight.shape[2:]
                dilation = _pair(m.dilation)
                if m.padding == "valid":
                    padding = ((0, 0), (0, 0))
                elif m.padding == "same":
                    padding = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                                    for d, k in zip(dilation, (kh, kw)))
                else:
                    padding = tuple((int(p), int(p)) for p in _pair(m.padding))
                op = Conv2d(weight, _pair(m.stride), padding, dilation)
            else:
                op = Linear(weight)
            bias = None if m.bias is None else m.bias.detach().double().numpy().copy()
            return [op, Affine(None, bias)]
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
            if m.training or m.running_mean is None or m.running_var is None:
                _refuse(est, where(node), "normalises with batch statistics (no running "
                                          "statistics)")
            from .nn._layers import batch_norm_affine

            scale, offset = batch_norm_affine(m)
            return [Affine(scale.numpy().copy(), offset.numpy().copy())]
        activations = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "logistic"}
        if type(m) in activations:
            return [Activation(activations[type(m)])]
        if type(m) in (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
                       nn.FeatureAlphaDropout):
            return []  # identity at inference (the network is in eval mode)
        if type(m) in (nn.MaxPool2d, nn.AvgPool2d):
            mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            options = dict(padding=m.padding, ceil_mode=m.ceil_mode,
                           dilation=getattr(m, "dilation", 1),
                           return_indices=getattr(m, "return_indices", False),
                           divisor_override=getattr(m, "divisor_override", None))
            return [pool(node, mode, m.kernel_size, m.stride, options)]
        _refuse(est, where(node), "is not a supported layer")

    def pool(node, mode, kernel, stride, options):
        kernel = _pair(kernel)
        stride = _pair(stride) if stride not in (None, (), []) else kernel
        if (any(_pair(options.get("padding", 0))) or options.get("ceil_mode")
                or _pair(options.get("dilation", 1)) != (1, 1)
                or options.get("return_indices") or options.get("divisor_override")):
            _refuse(est, where(node), f"uses options {options} (only padding=0, dilation=1, "
                                      f"ceil_mode=False are supported)")
        return Pool2d(mode, kernel, stride)

    relus = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh", F.tanh: "tanh",
             torch.sigmoid: "logistic", F.sigmoid: "logistic"}
    dropouts = (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
                F.feature_alpha_dropout)

    def convert_function(node):
        target = node.target
        if target in relus:
            return [Activation(relus[target])]
        if target in dropouts:
            if bind(node, ("p", "training"), {"training": True}).get("training"):
                _refuse(est, where(node), "drops units at inference (training=True)")
            return []
        if target is torch.flatten:
            options = bind(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return [flatten(node, options["start_dim"], options["end_dim"])]
        if target in (torch.reshape,):
            return [reshape_to(node, resolve(node.args[1]))]
        if target in (F.max_pool2d, F.avg_pool2d):
            mode = "max" if target is F.max_pool2d else "avg"
            names = (("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                      "return_indices") if mode == "max" else
                     ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                      "divisor_override"))
            options = bind(node, names, {})
            return [pool(node, mode, options.pop("kernel_size"), options.pop("stride", None),
                         options)]
        _refuse(est, where(node), "is not a supported operation")

    def resolve(value):
        if isinstance(value, fx.Node):
            if value not in sizes:
                _refuse(est, where(value), "is used as a size")
            return sizes[value]
        if isinstance(value, (list, tuple)):
            return tuple(resolve(v) for v in value)
        return value

    def convert_method(node):
        name = node.target
        if name in ("relu", "tanh", "sigmoid"):
            return [Activation({"sigmoid": "logistic"}.get(name, name))]
        if name in ("contiguous",):
            return []
        if name == "flatten":
            options = bind(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return [flatten(node, options["start_dim"], options["end_dim"])]
        if name in ("view", "reshape"):
            args = node.args[1:]
            target = resolve(args[0]) if len(args) == 1 and not isinstance(args[0], int) \
                else resolve(tuple(args))
            return [reshape_to(node, target)]
        _refuse(est, where(node), "is not a supported operation")

    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                _refuse(est, "its forward", "takes more than one input")
            current = node
            continue
        if node.op == "get_attr":
            _refuse(est, f"the attribute {node.target}", "is read as a tensor outside a "
                                                         "supported layer")
        # sizes: x.shape, x.size(), x.size(0), and items of those
        if node.op == "call_method" and node.target == "size" and node.args[0] is current:
            full = ("N", *shape)
            sizes[node] = full[node.args[1]] if len(node.args) > 1 else full
            continue
        if node.op == "call_function" and node.target is getattr and node.args[0] is current \
                and node.args[1] == "shape":
            sizes[node] = ("N", *shape)
            continue
        if node.op == "call_function" and node.target is operator.getitem \
                and node.args[0] in sizes:
            sizes[node] = sizes[node.args[0]][node.args[1]]
            continue
        if node.op == "output":
            if nodes_in(node.args) != [current]:
                _refuse(est, "its output", "is not the last operation's result alone")
            break
        inputs = [n for n in nodes_in((node.args, node.kwargs)) if n not in sizes]
        if inputs != [current] or node.args[:1] != (current,):
            _refuse(est, where(node), "does not take the previous operation's output alone "
                                      "(the network is not a chain: a residual connection, "
                                      "a concatenation or a second input)")
        if node.op == "call_module":
            new = convert_module(node, plain.get_submodule(node.target))
        elif node.op == "call_function":
            new = convert_function(node)
        else:
            new = convert_method(node)
        for op in new:
            try:
                shape = tuple(op.out_shape(shape))
            except ValueError as exc:
                _refuse(est, where(node), f"does not fit its input ({exc})")
            ops.append(op)
        current = node
    return ops


# ---------------------------------------------------------------------------- chain -> torch
class _Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(-1, *self.shape)


class _Paired(nn.Module):
    def forward(self, x):
        return torch.cat([x, -x], dim=1)


class _Affine(nn.Module):
    """``x * scale + offset`` along axis 1 (units or channels)."""

    def __init__(self, op, ndim):
        super().__init__()
        trailing = (1,) * (ndim - 1)
        for name in ("scale", "offset"):
            values = getattr(op, name)
            self.register_buffer(name, None if values is None else torch.as_tensor(
                values, dtype=torch.float64).reshape(-1, *trailing))

    def forward(self, x):
        if self.scale is not None:
            x = x * self.scale
        if self.offset is not None:
            x = x + self.offset
        return x


class _Members(nn.Module):
    """The members' outputs through the output function; an ensemble averages them.

    With ``labels``, a classifier's decision comes first: ``"argmax"``, the index of the
    predicted class (int64, shape (n_samples,)); ``"threshold"``, the multilabel indicator
    matrix (int64). The rule is ``predict``'s: a single network decides on its logits
    (argmax, or logit > 0), an ensemble on its mean probability (argmax, or > 0.5; its
    logit is the log of that mean), so that rounding in the output function never moves a
    label.
    """

    def __init__(self, members, head, labels=None):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.head = head
        self.labels = labels

    def forward(self, x):
        logits = [member(x) for member in self.members]
        outputs = [self.head(z) for z in logits]
        if len(outputs) > 1:
            output = torch.stack(outputs).mean(dim=0)
            scores, threshold = output, 0.5
        else:
            output = outputs[0]
            scores, threshold = logits[0], 0.0
        if self.labels is None:
            return output
        if self.labels == "argmax":
            return scores.argmax(dim=1), output
        return (scores > threshold).to(torch.int64), output


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid,
                "identity": nn.Identity}
_HEADS = {"softmax": lambda: nn.Softmax(dim=1), "logistic": nn.Sigmoid,
          "identity": nn.Identity}


def _torch_op(op, shape):
    if isinstance(op, Reshape):
        return _Reshape(op.shape)
    if isinstance(op, Paired):
        return _Paired()
    if isinstance(op, Linear):
        layer = nn.Linear(op.weight.shape[1], op.weight.shape[0], bias=False,
                          dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(op.weights))
        return layer
    if isinstance(op, Conv2d):
        out, n_in, kh, kw = op.weight.shape
        layer = nn.Conv2d(n_in, out, (kh, kw), stride=op.stride, dilation=op.dilation,
                          bias=False, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(op.weights))
        (top, bottom), (left, right) = op.padding
        if not (top or bottom or left or right):
            return layer
        return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), layer)
    if isinstance(op, Affine):
        return _Affine(op, len(shape))
    if isinstance(op, Activation):
        return _ACTIVATIONS[op.name]()
    if isinstance(op, Pool2d):
        pool = nn.MaxPool2d if op.mode == "max" else nn.AvgPool2d
        return pool(op.kernel, op.stride)
    raise TypeError(f"no torch layer for {type(op).__name__}")


def chain_module(chain, *, labels=False):
    """The chain as plain torch layers in float64, eval mode, followed by the output
    function: ``probabilities`` for classifiers (softmax, or logistic per column; an
    ensemble's mean), the prediction itself for regressors.

    Parameters
    ----------
    chain : Chain
    labels : bool, default=False
        For a classifier, return ``(decision, probabilities)``: the decision is the index
        of the predicted class in ``chain.classes`` (int64, shape (n_samples,)), or for
        multilabel the indicator matrix (int64, shape (n_samples, n_outputs)), by the rule
        of the estimators' ``predict``. Ignored for regressors.

    Returns
    -------
    module : torch.nn.Module
    """
    members = []
    for ops in chain.members:
        shapes = chain.shapes(ops)
        members.append(nn.Sequential(*(_torch_op(op, shape) for op, shape
                                       in zip(ops, shapes[1:]))))
    decision = None
    if labels and chain.is_classifier:
        decision = "threshold" if chain.multilabel else "argmax"
    return _Members(members, _HEADS[chain.out_activation](), decision).eval()
