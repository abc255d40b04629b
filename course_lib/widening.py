"""Function-preserving widening of a trained codec (Net2Net; Chen, Goodfellow & Shlens 2016).

A codec of N = 64 channels may be too narrow for high rates, yet its weights
hold many hours of training. :func:`widen_codec` builds the same codec with
more channels (N, M latents, K hyper channels) and copies every weight into
the "old" channels, so that the wider codec computes the same function (up to
float32 round-off):

* every new channel's **consumers** get zero input weights (a new channel
  cannot change an old one), its **producer** small random output weights and
  a zero bias (so that gradients reach the new channels from the first step);
* GDN / IGDN: beta 1 and gamma = ``gamma_init`` on the diagonal for new
  channels, zero cross terms (a new channel's energy is not in an old
  channel's norm), written in the reparameterised space GDN stores;
* new latents y (and new hyper-latents z) are exactly zero: their producer's
  kernel columns and bias are zero; the factorized prior gives new channels a
  narrow density at 0, the hyper-decoder mean 0 and the smallest scale, and
  the rate gains 1 (log gain 0), so they cost about 0 bits until training
  gives them something to carry;
* :class:`course_lib.transforms.SubPixelConv2D` convolves to 4 x filters and
  then applies depth-to-space: output channel s * filters + c belongs to
  sub-pixel s, so old channel s * N + c moves to s * N' + c.

Every weight is found by its path (``codec.weights``, ``v.path``) and each
one has its own rule; a weight without one raises (nothing is copied by luck).
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops

from .blocks import ResidualBlock
from .codec import LearnedCodec
from .gdn import GDN, NonNegativeParameter
from .hyperprior import SCALE_BOUND, HyperpriorCodec
from .transforms import SubPixelConv2D

__all__ = ["NEW_CHANNEL_PRIOR_SCALE", "widen_codec", "copy_into_wider"]

#: Width (logistic scale, in latent units) of the factorized prior's density for new channels:
#: P(0) = 1 - 2 sigmoid(-0.5 / 0.03), about 1e-7 bits per (zero) latent.
NEW_CHANNEL_PRIOR_SCALE = 0.03


def widen_codec(source, channels=None, latent_channels=None, hyper_channels=None, *,
                precision=None, seed: int = 0, new_weight_scale: float = 0.1):
    """A wider copy of a built codec that computes the same function (Net2Net widening).

    ``source``: a built :class:`course_lib.codec.LearnedCodec` or
    :class:`course_lib.hyperprior.HyperpriorCodec`. ``channels`` (N),
    ``latent_channels`` (M), ``hyper_channels`` (K, hyperprior only): the new
    widths, each at least the source's (None keeps it). Residual stages,
    blocks per stage, rate points, quantization, tile and seed are the
    source's; ``precision`` defaults to the source's. New channels' producing
    weights are drawn from N(0, (``new_weight_scale`` x the RMS of the
    source's kernel)^2) with ``seed``. When the source has entropy tables,
    the new codec's are made (:meth:`update_tables`). Raises ``ValueError``
    for another kind of model, an unbuilt one or a narrower width.
    Used by the command line (``train --widen-from``).
    """
    kind = _kind(source)
    if not source.built:
        raise ValueError("widen_codec needs a built codec (call codec.build() or load it)")
    if kind == "factorized" and hyper_channels is not None:
        raise ValueError("hyper_channels is for a HyperpriorCodec; this is a factorized LearnedCodec")
    options = dict(channels=_at_least(channels, source.channels, "channels"),
                   latent_channels=_at_least(latent_channels, source.latent_channels, "latent_channels"),
                   num_rates=source.num_rates, train_quantization=source.train_quantization, tile=source.tile,
                   seed=source.seed, residual_stages=source.residual_stages,
                   precision=precision or source.precision, blocks_per_stage=source.blocks_per_stage)
    if kind == "hyperprior":
        target = HyperpriorCodec(hyper_channels=_at_least(hyper_channels, source.hyper_channels, "hyper_channels"),
                                 **options)
    else:
        target = LearnedCodec(**options)
    target.build()
    copy_into_wider(source, target, seed=seed, new_weight_scale=new_weight_scale)
    if source.tables is not None:
        target.update_tables()
    return target


def copy_into_wider(source, target, seed: int = 0, new_weight_scale: float = 0.1) -> None:
    """Fill the built, at least as wide ``target`` codec with ``source``'s weights so that it computes
    the same function (the rules of :func:`widen_codec`, which calls it). Both codecs must be of the same
    kind with the same residual layout and rate points. Raises ``ValueError`` for anything else,
    including a weight without a rule. Used by the command line (``train --widen-from``)."""
    kind = _kind(source)
    if _kind(target) != kind or not target.built:
        raise ValueError(f"cannot widen a {kind} codec into a {_kind(target)} codec (or an unbuilt one)")
    for attribute in ("num_rates", "residual_stages", "blocks_per_stage"):
        if getattr(source, attribute) != getattr(target, attribute):
            raise ValueError(f"{attribute} differ: {getattr(source, attribute)} (source) vs "
                             f"{getattr(target, attribute)} (target); widening keeps them")
    sizes = {"rgb": (3, 3), "feature": (source.channels, target.channels),
             "latent": (source.latent_channels, target.latent_channels)}
    if kind == "hyperprior":
        sizes["hyper"] = (source.hyper_channels, target.hyper_channels)
        sizes["hyper_wide"] = (source.hyper_decoder.stack[2].filters, target.hyper_decoder.stack[2].filters)
    for space, (old, new) in sizes.items():
        _at_least(new, old, space)
    rules = _rules(target, kind)
    old_weights, new_weights = _by_path(source), _by_path(target)
    if set(old_weights) != set(new_weights):
        raise ValueError(f"the codecs' weights differ: {sorted(set(old_weights) ^ set(new_weights))}")
    unexpected = sorted(set(new_weights) - set(rules))
    if unexpected:
        raise ValueError(f"no widening rule for the weights {unexpected}")
    rng = np.random.default_rng(seed)
    for path, rule in rules.items():
        old = ops.convert_to_numpy(old_weights[path]).astype(np.float32)
        value = rule(old, sizes, rng, new_weight_scale)
        if value.shape != tuple(new_weights[path].shape):
            raise ValueError(f"{path}: widening made shape {value.shape}, the target has {new_weights[path].shape}")
        new_weights[path].assign(value.astype(np.float32))


# --------------------------------------------------------------------------- checks
def _kind(codec) -> str:
    if type(codec) is HyperpriorCodec:
        return "hyperprior"
    if type(codec) is LearnedCodec:
        return "factorized"
    raise ValueError(f"can widen a LearnedCodec or a HyperpriorCodec, not a {type(codec).__name__}")


def _at_least(wanted, current: int, name: str) -> int:
    value = current if wanted is None else wanted
    if isinstance(value, bool) or int(value) != value or int(value) < current:
        raise ValueError(f"{name} must be a whole number >= the source's {current}, got {wanted!r}")
    return int(value)


def _by_path(codec) -> dict:
    """Weights by their path without the model's own name (which Keras numbers per instance)."""
    found = {}
    for variable in codec.weights:
        path = variable.path.split("/", 1)[1]
        if path in found:
            raise ValueError(f"two weights have the path {path!r}")
        found[path] = variable
    return found


# --------------------------------------------------------------------------- channel maps
def _positions(space, sizes) -> tuple[np.ndarray, int]:
    """(new index of each old channel, new size) of an axis; ``space`` is a name of ``sizes``,
    ("subpixel", name) for a sub-pixel convolution's 4 groups, or ("halves", name) for means | scales."""
    if isinstance(space, str):
        old, new = sizes[space]
        return np.arange(old), new
    layout, name = space
    old, new = sizes[name]
    groups = {"subpixel": 4, "halves": 2}[layout]
    return np.concatenate([g * new + np.arange(old) for g in range(groups)]), groups * new


def _kernel(in_space, out_space, zero_new_outputs=False):
    """Rule for a (kh, kw, in, out) kernel: old block copied, new inputs -> old outputs zero,
    new outputs random (or zero for a latent producer)."""

    def rule(old, sizes, rng, scale):
        rows, n_in = _positions(in_space, sizes)
        cols, n_out = _positions(out_space, sizes)
        if old.shape != old.shape[:2] + (rows.size, cols.size):
            raise ValueError(f"kernel of shape {old.shape} where ({rows.size}, {cols.size}) channels were expected")
        rms = float(np.sqrt(np.mean(np.square(old)))) or 1.0
        value = rng.normal(0.0, scale * rms, old.shape[:2] + (n_in, n_out))
        if zero_new_outputs:
            value[...] = 0.0
        value[:, :, :, cols] = 0.0  # old outputs see nothing but old inputs
        value[np.ix_(np.arange(old.shape[0]), np.arange(old.shape[1]), rows, cols)] = old
        return value

    return rule


def _bias(out_space, new_value=0.0):
    def rule(old, sizes, rng, scale):
        cols, n_out = _positions(out_space, sizes)
        if old.shape != (cols.size,):
            raise ValueError(f"bias of shape {old.shape} where {cols.size} channels were expected")
        value = np.full(n_out, new_value, np.float64)
        value[cols] = old
        return value

    return rule


def _means_and_scales_bias(old, sizes, rng, scale):
    """h_s's last bias: new means 0, new scales softplus^-1(SCALE_BOUND) (the coder's smallest scale)."""
    value = _bias(("halves", "latent"))(old, sizes, rng, scale)
    old_m, new_m = sizes["latent"]
    value[new_m + old_m:] = np.log(np.expm1(SCALE_BOUND))
    value[old_m:new_m] = 0.0
    return value


def _gdn(space, layer: GDN):
    beta_param, gamma_param = NonNegativeParameter(layer.beta_min), NonNegativeParameter(0.0)

    def beta(old, sizes, rng, scale):
        old_c, new_c = sizes[space]
        if old.shape != (old_c,):
            raise ValueError(f"GDN beta of shape {old.shape} where {old_c} channels were expected")
        return np.concatenate([old, beta_param.to_variable(np.ones(new_c - old_c))])

    def gamma(old, sizes, rng, scale):
        old_c, new_c = sizes[space]
        if old.shape != (old_c, old_c):
            raise ValueError(f"GDN gamma of shape {old.shape} where ({old_c}, {old_c}) was expected")
        effective = np.zeros((new_c, new_c))
        effective[np.arange(old_c, new_c), np.arange(old_c, new_c)] = layer.gamma_init
        value = gamma_param.to_variable(effective)  # stored variable of "0" is sqrt(pedestal): gamma exactly 0
        value[:old_c, :old_c] = old
        return value

    return beta, gamma


def _gains(old, sizes, rng, scale):
    old_m, new_m = sizes["latent"]
    if old.shape[1:] != (old_m,):
        raise ValueError(f"gains of shape {old.shape} where (rates, {old_m}) was expected")
    return np.concatenate([old, np.zeros((old.shape[0], new_m - old_m))], axis=1)  # log gain 0: gain 1


def _prior(space, name: str, filters):
    """New channels of a FactorizedPrior: factors 0 and biases 0 make c(y) = sigmoid(slope * y), a
    logistic of scale NEW_CHANNEL_PRIOR_SCALE centred on 0 (the matrices' softplus share the slope)."""
    kind, index = name.rsplit("_", 1)
    depth = len(filters) + 1
    entry = (1.0 / NEW_CHANNEL_PRIOR_SCALE / np.prod(filters)) ** (1.0 / depth)  # every path multiplies to 1/s

    def rule(old, sizes, rng, scale):
        old_c, new_c = sizes[space]
        if old.shape[0] != old_c or kind not in ("matrix", "bias", "factor") or not 0 <= int(index) < depth:
            raise ValueError(f"prior weight {name} of shape {old.shape}: no rule for it")
        fill = np.log(np.expm1(entry)) if kind == "matrix" else 0.0
        if kind == "bias" and int(index) == depth - 1:
            # FactorizedPrior picks the tail to compute a bin's mass in by sign(c(y - 1/2) + c(y + 1/2)):
            # at an exact median of 0 that sign is 0 and the mass of y = 0 would be 0. A logit offset
            # of 0.01 moves the median by 0.01 * s, nothing, and keeps the sign defined.
            fill = 0.01
        return np.concatenate([old, np.full((new_c - old_c,) + old.shape[1:], fill)], axis=0)

    return rule


# --------------------------------------------------------------------------- the rules of each codec
def _rules(codec, kind: str) -> dict:
    """path (without the model's name) -> rule(old value, sizes, rng, scale) -> new value."""
    rules = {"log_gain": _gains, "log_inverse_gain": _gains}
    last = len(codec.encoder.stack) - 1
    space = _stack_rules(rules, "encoder", codec.encoder.stack, "rgb",
                         lambda i, layer: "latent" if i == last else "feature", zero_last=True)
    if space != "latent":
        raise ValueError(f"the encoder ends in {space} channels, not the latents")
    last = len(codec.decoder.stack) - 1
    _stack_rules(rules, "decoder", codec.decoder.stack, "latent",
                 lambda i, layer: ("subpixel", "rgb" if i == last else "feature"))
    prior_space = "latent"
    if kind == "hyperprior":
        prior_space = "hyper"
        _stack_rules(rules, "hyper_encoder", codec.hyper_encoder.stack, "latent", lambda i, layer: "hyper",
                     zero_last=True)
        outputs = [("subpixel", "hyper"), None, ("subpixel", "hyper_wide"), None, ("halves", "latent")]
        _stack_rules(rules, "hyper_decoder", codec.hyper_decoder.stack, "hyper", lambda i, layer: outputs[i],
                     zero_last=True)
        rules["hyper_decoder/parameters/bias"] = _means_and_scales_bias
    for variable in codec.prior.weights:
        name = variable.path.rsplit("/", 1)[1]
        rules[f"prior/{name}"] = _prior(prior_space, name, codec.prior.filters)
    return rules


def _stack_rules(rules: dict, prefix: str, stack, space, output_space, zero_last=False):
    """Add the rules of a LayerStack's layers; returns the channel space of its output.

    ``output_space(i, layer)``: the space a convolution at position i writes to. With ``zero_last`` the
    last layer's new outputs are zero (new latents, new hyper-latents, new means and scales)."""
    for i, layer in enumerate(stack):
        where = f"{prefix}/{layer.name}"
        zero = zero_last and i == len(stack) - 1
        if isinstance(layer, SubPixelConv2D):
            out = output_space(i, layer)
            rules[f"{where}/conv/kernel"] = _kernel(space, out, zero)
            rules[f"{where}/conv/bias"] = _bias(out)
            space = out[1]
        elif isinstance(layer, layers.Conv2D):
            out = output_space(i, layer)
            rules[f"{where}/kernel"] = _kernel(space, out, zero)
            rules[f"{where}/bias"] = _bias(out)
            space = out if isinstance(out, str) else out[1]
        elif isinstance(layer, GDN):
            rules[f"{where}/beta"], rules[f"{where}/gamma"] = _gdn(space, layer)
        elif isinstance(layer, ResidualBlock):
            if layer.projection is not None or space != "feature":
                raise ValueError(f"{where}: a residual block with a projection cannot be widened here")
            rules[f"{where}/conv1/kernel"] = _kernel(space, "feature")
            rules[f"{where}/conv1/bias"] = _bias("feature")
            rules[f"{where}/conv2/kernel"] = _kernel("feature", space)
            rules[f"{where}/conv2/bias"] = _bias(space)
        elif isinstance(layer, layers.Activation):
            pass  # no weights
        else:
            raise ValueError(f"{where}: no widening rule for a {type(layer).__name__}")
    return space
