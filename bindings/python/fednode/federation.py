"""Federations: the manifest, a site's client with a trainer written in
Python, and the coordinator (include/fednode/fedavg.h)."""
import ctypes
import json
from collections import namedtuple

from . import _lib, errors
from ._handle import Handle
from .fedavg import strategy_options
from .model import Model

lib = _lib.lib

UPDATE_FORMS = {"weights": 0, "delta": 1}
_CLIENT_STATES = {0: "waiting", 1: "sent", 2: "finished"}
_COORDINATOR_STATES = {0: "waiting", 1: "closed", 2: "finished"}


def _enc(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def _lend(ptr, owner):
    """A Model viewing a library-owned model (never freed here); it keeps
    @p owner alive."""
    m = Model.__new__(Model)
    m._own(ctypes.c_void_p(ptr), None)
    m._owner = owner
    return m


def _hand_over(model):
    """Gives the C model of @p model to the library (which frees it)."""
    ptr = model._handle().value
    if model._finalizer:
        model._finalizer.detach()
    model._ptr = ctypes.c_void_p()
    return ptr


def _as_model(value):
    if isinstance(value, Model):
        return value
    m = Model.new()
    for name, array in value.items():
        m.add(name, array)
    return m


def _hook(opts, on_progress, cancel):
    """Sets the progress callback and cancel token of a client or
    coordinator options struct; returns the callback object to keep."""
    callback = None
    if on_progress:
        from . import Progress
        callback = _lib.PROGRESS_CB(errors.guard(
            lambda p, payload: on_progress(Progress.from_c(p.contents)) or 0, errors.EUSER))
        opts.progress = callback
    if cancel is not None:
        opts.cancel = cancel._handle()
    return callback


class Federation(Handle):
    """A federation manifest: create it (coordinator), fetch it (site),
    approve it in a registry.  ``json``, ``id``, ``digest``, ``rounds``."""

    _closed_message = "the Federation is closed"

    def __init__(self, _ptr):
        self._own(_ptr, lib.fdn_federation_free)

    @classmethod
    def create(cls, federation_id, coordinator, trust, sites, rounds, quorum=0,
               round_timeout=0, strategy="fedavg", update_form="weights", local_epochs=1,
               learning_rate=0.01, clip_norm=0.0, noise_multiplier=0.0, seed=0,
               title=None, model=None, train=None, **strategy_options_):
        """A new manifest with ``sites`` (node ids, each with a valid key
        in ``trust``).  ``strategy`` is a name ("fedavg", "fedadam", ...)
        and ``strategy_options`` its hyper-parameters (``server_lr``,
        ``momentum``, ``beta1``, ``beta2``, ``tau``, ``trim``,
        ``proximal_mu``).  ``model`` and ``train`` are dicts: a model
        description and what trainers receive as ``config.extra``."""
        so = strategy_options(strategy, **strategy_options_)
        opts = _lib.FederationOptions()
        lib.fdn_federation_options_init(ctypes.byref(opts), _lib.FederationOptions.VERSION)
        opts.id = _enc(federation_id)
        opts.title = _enc(title) if title else None
        opts.rounds = rounds
        opts.quorum = quorum
        opts.round_timeout_s = int(round_timeout)
        opts.strategy = ctypes.cast(ctypes.pointer(so), ctypes.c_void_p)
        opts.update_form = UPDATE_FORMS[update_form]
        opts.local_epochs = local_epochs
        opts.learning_rate = learning_rate
        opts.clip_norm = clip_norm
        opts.noise_multiplier = noise_multiplier
        opts.seed = seed
        opts.model_json = _enc(json.dumps(model)) if model is not None else None
        opts.train_json = _enc(json.dumps(train)) if train is not None else None
        ids = (ctypes.c_char_p * max(len(sites), 1))(*[_enc(s) for s in sites])
        ptr = ctypes.c_void_p()
        lib.fdn_federation_create(ctypes.byref(ptr), ctypes.byref(opts),
                                  coordinator._handle(), trust._handle(), ids, len(sites))
        return cls(ptr)

    @classmethod
    def parse(cls, text):
        """Parses manifest JSON (not authenticated: sites use :meth:`fetch`)."""
        ptr = ctypes.c_void_p()
        lib.fdn_federation_parse(ctypes.byref(ptr), _enc(text))
        return cls(ptr)

    @classmethod
    def fetch(cls, transport, federation_id, me, trust):
        """Gets and verifies the published manifest of ``federation_id``."""
        ptr = ctypes.c_void_p()
        lib.fdn_federation_fetch(ctypes.byref(ptr), transport._handle(), _enc(federation_id),
                                 me._handle(), trust._handle())
        return cls(ptr)

    @property
    def json(self):
        """The canonical manifest text."""
        buf = _lib.Buf()
        lib.fdn_federation_json(ctypes.byref(buf), self._handle())
        return _lib.take_buf(buf).decode()

    def to_dict(self):
        return json.loads(self.json)

    @property
    def id(self):
        return lib.fdn_federation_id(self._handle()).decode()

    @property
    def digest(self):
        """SHA-256 of the canonical text: what an approval refers to."""
        return lib.fdn_federation_digest(self._handle()).decode()

    @property
    def rounds(self):
        return lib.fdn_federation_rounds(self._handle())

    def publish(self, transport, coordinator, trust):
        """Seals the manifest for the roster and puts it in the store."""
        lib.fdn_federation_publish(transport._handle(), self._handle(),
                                   coordinator._handle(), trust._handle())

    def approve(self, registry, note=None):
        """Records this site's approval in ``registry``'s audit log."""
        lib.fdn_federation_approve(registry._handle(), self._handle(),
                                   _enc(note) if note else None)

    def approved(self, registry):
        """True when ``registry`` records an approval of this manifest."""
        rc = lib.fdn_federation_approved(registry._handle(), self._handle())
        if rc not in (0, errors.ENOTFOUND):
            raise errors.from_last(rc, lib)
        return rc == 0


TrainConfig = namedtuple("TrainConfig", "federation round local_epochs learning_rate "
                                        "proximal_mu seed extra")


class Trainer:
    """Base class of a site's training code.  Override :meth:`train`, and
    :meth:`evaluate` if the site evaluates the global model; both run on
    the thread that calls :meth:`Client.step` or :meth:`Client.run`.

    ``global_model`` is a :class:`fednode.Model` valid during the call
    only (copy what you keep: ``np.array(model[name])``); ``config`` a
    :class:`TrainConfig`."""

    def train(self, global_model, registry, cohort, config):
        """Returns ``(model, n_examples, metrics)``: the trained weights as
        a :class:`fednode.Model` or a dict name -> numpy array with the
        global model's names, dtypes and shapes; the number of examples
        (> 0); a dict of metrics (numbers)."""
        raise NotImplementedError

    evaluate = None  # or a method returning (n_examples, metrics)


def _config(c):
    return TrainConfig(c.federation.decode(), c.round, c.local_epochs, c.learning_rate,
                       c.proximal_mu, c.seed,
                       json.loads(c.extra_json.decode()) if c.extra_json else {})


def _put_metrics(buf, metrics):
    text = json.dumps(metrics or {}).encode()
    lib.fdn_buf_set(buf, text, len(text))


class Client(Handle):
    """A site taking part in a federation: ``step()`` for an event loop of
    your own, or ``run()`` until the federation ends."""

    _closed_message = "the Client is closed"

    def __init__(self, transport, me, trust, registry, federation_id, cohort, trainer,
                 poll_interval=1.0, work_dir=None, on_progress=None, cancel=None):
        self._keep = (transport, me, trust, registry, trainer, cancel)
        self._trainer_c = self._make_trainer(trainer, registry)
        opts = _lib.ClientOptions()
        lib.fdn_client_options_init(ctypes.byref(opts), _lib.ClientOptions.VERSION)
        opts.poll_interval_ms = int(poll_interval * 1000)
        opts.work_dir = _enc(work_dir) if work_dir else None
        self._progress = _hook(opts, on_progress, cancel)
        ptr = ctypes.c_void_p()
        lib.fdn_client_new(ctypes.byref(ptr), transport._handle(), me._handle(),
                           trust._handle(), registry._handle(), _enc(federation_id),
                           _enc(cohort), ctypes.byref(self._trainer_c), None,
                           ctypes.byref(opts))
        self._own(ptr, lib.fdn_client_free)

    def _make_trainer(self, trainer, registry):
        def train(payload, global_ptr, reg, cohort, config, out, n_examples, metrics):
            model, n, m = trainer.train(_lend(global_ptr, self), registry, cohort.decode(),
                                        _config(config.contents))
            if int(n) <= 0:
                raise ValueError("the trainer must report a positive number of examples")
            _put_metrics(metrics, m)
            n_examples[0] = int(n)
            out[0] = _hand_over(_as_model(model))
            return 0

        def evaluate(payload, model_ptr, reg, cohort, config, n_examples, metrics):
            n, m = trainer.evaluate(_lend(model_ptr, self), registry, cohort.decode(),
                                    _config(config.contents))
            n_examples[0] = int(n)
            _put_metrics(metrics, m)
            return 0

        self._train_cb = _lib.TRAIN_CB(errors.guard(train, errors.EUSER))
        self._evaluate_cb = (_lib.EVALUATE_CB(errors.guard(evaluate, errors.EUSER))
                             if getattr(trainer, "evaluate", None) else _lib.EVALUATE_CB())
        return _lib.Trainer(_lib.Trainer.VERSION, self._train_cb, self._evaluate_cb)

    def step(self):
        """Polls once; trains when a new round is open.  Returns "waiting",
        "sent" or "finished"."""
        state = ctypes.c_int()
        lib.fdn_client_step(self._handle(), ctypes.byref(state))
        return _CLIENT_STATES[state.value]

    def run(self):
        """Steps until the federation ends."""
        lib.fdn_client_run(self._handle())

    @property
    def round(self):
        """The last round this site sent an update for."""
        return lib.fdn_client_round(self._handle())

    @property
    def model(self):
        """The newest global model received (the final one once finished),
        copied."""
        ptr = ctypes.c_void_p()
        lib.fdn_client_model(ctypes.byref(ptr), self._handle())
        return Model.read(_lend(ptr.value, self).to_bytes())


class Coordinator(Handle):
    """The coordinator of a federation (its manifest's coordinator must be
    ``me``), checkpointing in ``state_dir``."""

    _closed_message = "the Coordinator is closed"

    def __init__(self, transport, me, trust, federation, initial, state_dir,
                 poll_interval=1.0, on_progress=None, cancel=None):
        self._keep = (transport, me, trust, federation, cancel)
        opts = _lib.CoordinatorOptions()
        lib.fdn_coordinator_options_init(ctypes.byref(opts), _lib.CoordinatorOptions.VERSION)
        opts.poll_interval_ms = int(poll_interval * 1000)
        self._progress = _hook(opts, on_progress, cancel)
        ptr = ctypes.c_void_p()
        # A model made from a dict must outlive the call that copies it.
        initial = _as_model(initial) if initial is not None else None
        lib.fdn_coordinator_new(ctypes.byref(ptr), transport._handle(), me._handle(),
                                trust._handle(), federation._handle(),
                                initial._handle() if initial is not None else None,
                                _enc(str(state_dir)), ctypes.byref(opts))
        self._own(ptr, lib.fdn_coordinator_free)

    def step(self):
        """Collects what arrived; closes the round when it can.  Returns
        "waiting", "closed" or "finished"."""
        state = ctypes.c_int()
        lib.fdn_coordinator_step(self._handle(), ctypes.byref(state))
        return _COORDINATOR_STATES[state.value]

    def run(self):
        """Steps until the last round is closed."""
        lib.fdn_coordinator_run(self._handle())

    @property
    def round(self):
        return lib.fdn_coordinator_round(self._handle())

    @property
    def model(self):
        """The current global model (the final one once finished), copied."""
        ptr = ctypes.c_void_p()
        lib.fdn_coordinator_model(ctypes.byref(ptr), self._handle())
        return Model.read(_lend(ptr.value, self).to_bytes())

    @property
    def results(self):
        """Every closed round's result (a list of dicts)."""
        buf = _lib.Buf()
        lib.fdn_coordinator_results(ctypes.byref(buf), self._handle())
        return json.loads(_lib.take_buf(buf).decode())
