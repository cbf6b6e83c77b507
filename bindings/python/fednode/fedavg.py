"""Aggregation of site updates into the next global model
(include/fednode/fedavg.h; formulas in doc/federated.md)."""
import ctypes
import os

from . import _lib
from ._handle import Handle
from .errors import FednodeError
from .model import Model

lib = _lib.lib

STRATEGIES = ("fedavg", "fedavgm", "fedadagrad", "fedadam", "fedyogi", "fedprox",
              "median", "trimmed-mean")

WEIGHTS = 0
DELTA = 1
_FORMS = {"weights": WEIGHTS, "delta": DELTA, WEIGHTS: WEIGHTS, DELTA: DELTA}


def strategy_from_name(name):
    """The fdn_strategy value of ``name`` ("fedavg", "fedadam", ...)."""
    out = ctypes.c_int()
    lib.fdn_strategy_from_name(ctypes.byref(out), name.encode("utf-8"))
    return out.value


def strategy_name(value):
    """The name of an fdn_strategy value, or None when unknown."""
    name = lib.fdn_strategy_name(value)
    return name.decode("utf-8") if name else None


def strategy_options(strategy="fedavg", **params):
    """An fdn_strategy_options: ``strategy`` a name or value, ``params`` the
    hyper-parameters (server_lr, momentum, beta1, beta2, tau, trim,
    proximal_mu); None or absent = the strategy's default."""
    opts = _lib.StrategyOptions()
    lib.fdn_strategy_options_init(ctypes.byref(opts), _lib.StrategyOptions.VERSION)
    opts.strategy = strategy_from_name(strategy) if isinstance(strategy, str) else int(strategy)
    for field, value in params.items():
        if field not in ("server_lr", "momentum", "beta1", "beta2", "tau", "trim",
                         "proximal_mu"):
            raise TypeError(f"unknown strategy parameter {field!r}")
        if value is not None:
            setattr(opts, field, float(value))
    return opts


class Aggregator(Handle):
    """One round's aggregation.

    ``global_model`` is the round's global model (a :class:`fednode.Model`)
    and ``state`` the previous round's optimizer state (or None); both must
    stay open while the aggregator lives, which this object ensures by
    keeping references to them.  ``strategy`` is a name or an fdn_strategy
    value; the hyper-parameters default as in the C API (None or 0 = the
    strategy's default).

    >>> agg = Aggregator(global_model, strategy="fedadam", server_lr=0.01)
    >>> agg.add(update, weight=120)            # or add_file(path, weight)
    >>> new_model, state = agg.finish()
    """

    _closed_message = "the Aggregator is closed"

    def __init__(self, global_model, state=None, strategy="fedavg", server_lr=None,
                 momentum=None, beta1=None, beta2=None, tau=None, trim=None,
                 proximal_mu=None):
        opts = strategy_options(strategy, server_lr=server_lr, momentum=momentum,
                                beta1=beta1, beta2=beta2, tau=tau, trim=trim,
                                proximal_mu=proximal_mu)
        ptr = ctypes.c_void_p()
        lib.fdn_aggregator_new(ctypes.byref(ptr), global_model._handle(),
                               state._handle() if state is not None else None,
                               ctypes.byref(opts))
        # Borrowed by the C object: keep them alive as long as it is.
        self._global = global_model
        self._state = state
        self._own(ptr, lib.fdn_aggregator_free)

    @staticmethod
    def _form(form):
        try:
            return _FORMS[form]
        except KeyError:
            raise ValueError(f"form must be 'weights' or 'delta', not {form!r}") from None

    def add(self, update, weight, form="weights"):
        """Folds in one site's update (a :class:`fednode.Model`) trained on
        ``weight`` examples; ``form`` is "weights" or "delta"."""
        lib.fdn_aggregator_add(self._handle(), update._handle(), float(weight),
                               self._form(form))

    def add_file(self, path, weight, form="weights"):
        """As :meth:`add`, reading a safetensors file in bounded chunks."""
        lib.fdn_aggregator_add_file(self._handle(), os.fsencode(path), float(weight),
                                    self._form(form))

    def _arrays(self, n, weights, forms):
        if len(weights) != n:
            raise ValueError(f"{n} updates but {len(weights)} weights")
        if isinstance(forms, (str, int)):
            forms = [forms] * n
        if len(forms) != n:
            raise ValueError(f"{n} updates but {len(forms)} forms")
        return ((ctypes.c_double * n)(*[float(w) for w in weights]),
                (ctypes.c_int * n)(*[self._form(f) for f in forms]),
                (ctypes.c_int * n)())

    def _batch(self, fn, items, weights, forms):
        """Runs a batch call; raises for the first rejected update (after
        the valid ones were folded in) with ``statuses`` (one code per
        update) on the exception."""
        n = len(items)
        w, f, status = self._arrays(n, weights, forms)
        try:
            fn(self._handle(), n, items, w, f, status)
        except FednodeError as exc:
            exc.statuses = list(status)
            raise
        return list(status)

    def add_batch(self, updates, weights, forms="weights"):
        """Folds in several updates at once (the same result as
        :meth:`add` on each, faster as the round's first updates).
        ``forms`` is one form for all or one per update.  Returns the
        list of status codes (all 0); when some are rejected the valid
        ones are still folded in and the first rejection is raised, with
        every code in its ``statuses`` attribute."""
        ptrs = (ctypes.c_void_p * len(updates))(*[u._handle().value for u in updates])
        return self._batch(lib.fdn_aggregator_add_batch, ptrs, weights, forms)

    def add_files(self, paths, weights, forms="weights"):
        """As :meth:`add_batch` for safetensors files."""
        names = (ctypes.c_char_p * len(paths))(*[os.fsencode(p) for p in paths])
        return self._batch(lib.fdn_aggregator_add_files, names, weights, forms)

    def __len__(self):
        return lib.fdn_aggregator_count(self._handle())

    @property
    def count(self):
        """Updates folded in so far."""
        return len(self)

    def finish(self):
        """The next global model and the new optimizer state (None for
        stateless strategies), as :class:`fednode.Model` objects."""
        out, state = ctypes.c_void_p(), ctypes.c_void_p()
        lib.fdn_aggregator_finish(self._handle(), ctypes.byref(out), ctypes.byref(state))
        return Model(out), (Model(state) if state else None)

    def finish_file(self, path):
        """Writes the next global model to ``path`` (atomically, streamed)
        and returns the new state (or None)."""
        state = ctypes.c_void_p()
        lib.fdn_aggregator_finish_file(self._handle(), os.fsencode(path),
                                       ctypes.byref(state))
        return Model(state) if state else None
