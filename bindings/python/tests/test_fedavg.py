"""fednode.Aggregator: every strategy against a plain numpy reference of
its formulas (doc/federated.md), over several rounds with the state
carried over, for K = 1, 2 and 5 sites, updates sent as weights, as
deltas and mixed; then files, errors and the binding's surface."""
import math
import zlib

import numpy as np
import pytest

import fednode
from fednode import errors as fedavg_errors
from fednode import fedavg

SHAPES = {"conv.weight": (4, 3, 2), "conv.bias": (4,), "fc.weight": (5, 6),
          "scale": ()}

DEFAULTS = {"server_lr": None, "momentum": 0.9, "beta1": 0.9, "beta2": 0.99,
            "tau": 1e-3, "trim": 0.1}
ADAPTIVE = ("fedadagrad", "fedadam", "fedyogi")


def make_model(arrays, dtype=np.float32):
    m = fednode.Model.new()
    for name, arr in arrays.items():
        m.add(name, np.asarray(arr, dtype=dtype))
    return m


def as_f64(model):
    return {name: np.array(model[name], dtype=np.float64) for name in model.keys()}


# --- the reference ---------------------------------------------------------------

def reference_round(strategy, x, updates, state, hp):
    """One round in textbook form.  x: global (float64 arrays); updates:
    [(arrays as float64, weight, form)]; state: {"m": {...}, "v": {...}}
    or None.  Returns the next model and state, in float64."""
    lr = hp["server_lr"]
    if lr is None:
        lr = 0.1 if strategy in ADAPTIVE else 1.0
    new_x, new_m, new_v = {}, {}, {}
    for name, xt in x.items():
        # Each site's new weights x_k and delta d_k = x_k − x_t.
        xs = [u[name] if form == "weights" else xt + u[name] for u, _, form in updates]
        ds = [u[name] - xt if form == "weights" else u[name] for u, _, form in updates]
        n = np.array([w for _, w, _ in updates], dtype=np.float64)
        if strategy == "median":
            new_x[name] = np.median(np.stack(xs), axis=0)
            continue
        if strategy == "trimmed-mean":
            k = len(xs)
            cut = math.floor(hp["trim"] * k)
            srt = np.sort(np.stack(xs), axis=0)
            new_x[name] = srt[cut:k - cut].mean(axis=0)
            continue
        delta = sum(nk * dk for nk, dk in zip(n, ds)) / n.sum()
        tau, b1, b2 = hp["tau"], hp["beta1"], hp["beta2"]
        m = state["m"][name] if state and state["m"] else np.zeros_like(xt)
        v = state["v"][name] if state and state["v"] else np.full_like(xt, tau * tau)
        if strategy in ("fedavg", "fedprox"):
            new_x[name] = xt + lr * delta
        elif strategy == "fedavgm":
            m = hp["momentum"] * m + delta
            new_x[name] = xt + lr * m
        elif strategy == "fedadagrad":
            v = v + delta ** 2
            new_x[name] = xt + lr * delta / (np.sqrt(v) + tau)
        elif strategy == "fedadam":
            m = b1 * m + (1 - b1) * delta
            v = b2 * v + (1 - b2) * delta ** 2
            new_x[name] = xt + lr * m / (np.sqrt(v) + tau)
        elif strategy == "fedyogi":
            m = b1 * m + (1 - b1) * delta
            v = v - (1 - b2) * delta ** 2 * np.sign(v - delta ** 2)
            new_x[name] = xt + lr * m / (np.sqrt(v) + tau)
        new_m[name], new_v[name] = m, v
    keeps_m = strategy in ("fedavgm", "fedadam", "fedyogi")
    keeps_v = strategy in ADAPTIVE
    new_state = None
    if keeps_m or keeps_v:
        new_state = {"m": new_m if keeps_m else None, "v": new_v if keeps_v else None}
    return new_x, new_state


def cast(arrays, dtype):
    """float64 → the stored dtype → float64, as the library stores them."""
    return {k: np.asarray(v, dtype=dtype).astype(np.float64) for k, v in arrays.items()}


def assert_close(actual, expected, what):
    for name in expected:
        a, e = actual[name], expected[name]
        scale = max(float(np.max(np.abs(e))) if e.size else 0.0, 1e-30)
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6 * scale,
                                   err_msg=f"{what}: tensor {name}")


def run_rounds(strategy, k, forms, dtype, rounds=3, seed=0, batch=False, **hp_over):
    rng = np.random.default_rng(seed)
    hp = dict(DEFAULTS, **hp_over)
    x_ref = cast({n: rng.normal(size=s) for n, s in SHAPES.items()}, dtype)
    global_model = make_model(x_ref, dtype)
    state_model, state_ref = None, None
    for r in range(rounds):
        updates, models = [], []
        for i in range(k):
            form = forms[i % len(forms)]
            if form == "weights":
                arrays = {n: x_ref[n] + rng.normal(scale=0.5, size=s)
                          for n, s in SHAPES.items()}
            else:
                arrays = {n: rng.normal(scale=0.5, size=s) for n, s in SHAPES.items()}
            arrays = cast(arrays, dtype)
            weight = float(rng.integers(1, 200))
            updates.append((arrays, weight, form))
            models.append(make_model(arrays, dtype))
        kwargs = {key: value for key, value in hp_over.items()}
        agg = fednode.Aggregator(global_model, state=state_model, strategy=strategy,
                                 **kwargs)
        if batch:
            assert agg.add_batch(models, [w for _, w, _ in updates],
                                 [f for _, _, f in updates]) == [0] * k
        else:
            for model, (_, weight, form) in zip(models, updates):
                agg.add(model, weight, form)
        assert len(agg) == k
        new_model, new_state = agg.finish()
        agg.close()

        x_next, s_next = reference_round(strategy, x_ref, updates, state_ref, hp)
        x_next = cast(x_next, dtype)
        assert_close(as_f64(new_model), x_next, f"{strategy} K={k} {forms} round {r}")
        state_dtype = np.float64 if dtype == np.float64 else np.float32
        if s_next is None:
            assert new_state is None
        else:
            assert new_state.metadata["fednode.strategy"] == strategy
            assert new_state.metadata["fednode.rounds"] == str(r + 1)
            got = as_f64(new_state)
            for slot in ("m", "v"):
                if s_next[slot] is None:
                    continue
                s_next[slot] = cast(s_next[slot], state_dtype)
                assert_close({n: got[f"{slot}/{n}"] for n in SHAPES}, s_next[slot],
                             f"{strategy} state {slot} round {r}")
                assert new_state.dtype_of(f"{slot}/conv.bias") == (
                    "F64" if dtype == np.float64 else "F32")
        # The next round starts from what each side computed.
        x_ref, state_ref = x_next, s_next
        global_model, state_model = new_model, new_state


@pytest.mark.parametrize("strategy", fedavg.STRATEGIES)
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("forms", [("weights",), ("delta",), ("weights", "delta")],
                         ids=["weights", "deltas", "mixed"])
def test_against_numpy(strategy, k, forms):
    # trim 0.2 cuts one value at each end of 5 (the default 0.1 would not).
    hp = {"trim": 0.2} if strategy == "trimmed-mean" else {}
    run_rounds(strategy, k, forms, np.float32,
               seed=zlib.crc32(repr((strategy, k, forms)).encode()), **hp)


@pytest.mark.parametrize("strategy", fedavg.STRATEGIES)
def test_against_numpy_batch(strategy):
    run_rounds(strategy, 5, ("weights", "delta"), np.float32, seed=11, batch=True,
               **({"trim": 0.2} if strategy == "trimmed-mean" else {}))


@pytest.mark.parametrize("strategy", fedavg.STRATEGIES)
def test_against_numpy_f64_and_options(strategy):
    hp = {"server_lr": 0.3, "momentum": 0.5, "beta1": 0.8, "beta2": 0.95, "tau": 0.01,
          "trim": 0.25}
    run_rounds(strategy, 5, ("weights", "delta"), np.float64, rounds=3, seed=7, **hp)


def test_f16_output():
    run_rounds("fedadam", 2, ("weights",), np.float16, rounds=2, seed=3)


# --- files and the binding -----------------------------------------------------------

def test_add_file_matches_add(tmp_path):
    rng = np.random.default_rng(1)
    big = {"w": rng.normal(size=(300, 700)).astype(np.float32),  # > one read chunk
           "b": rng.normal(size=(7,)).astype(np.float32)}
    g = make_model(big)
    a = fednode.Aggregator(g, strategy="fedyogi")
    b = fednode.Aggregator(g, strategy="fedyogi")
    for i in range(3):
        u = make_model({n: v + rng.normal(size=v.shape) for n, v in big.items()})
        path = tmp_path / f"u{i}.safetensors"
        u.write(path)
        a.add(u, 10 + i, "weights")
        b.add_file(path, 10 + i, fedavg.WEIGHTS)
    assert b.count == 3
    m1, s1 = a.finish()
    out = tmp_path / "next.safetensors"
    s2 = b.finish_file(out)
    m2 = fednode.Model.read(out)
    for n in big:
        np.testing.assert_array_equal(m1[n], m2[n])
        np.testing.assert_array_equal(s1["m/" + n], s2["m/" + n])
        np.testing.assert_array_equal(s1["v/" + n], s2["v/" + n])


def test_batches(tmp_path):
    rng = np.random.default_rng(2)
    g = make_model({"w": rng.normal(size=(200, 700)), "b": rng.normal(size=3)})
    ups = [make_model({"w": rng.normal(size=(200, 700)), "b": rng.normal(size=3)})
           for _ in range(4)]
    paths = []
    for i, u in enumerate(ups):
        paths.append(tmp_path / f"u{i}.safetensors")
        u.write(paths[-1])
    weights = [5, 1, 2, 8]
    one = fednode.Aggregator(g, strategy="fedadam")
    for u, w in zip(ups, weights):
        one.add(u, w)
    ref, ref_state = one.finish()
    many = fednode.Aggregator(g, strategy="fedadam")
    assert many.add_files(paths, weights) == [0, 0, 0, 0]
    out, state = many.finish()
    for n in ("w", "b"):
        np.testing.assert_array_equal(ref[n], out[n])
        np.testing.assert_array_equal(ref_state["v/" + n], state["v/" + n])

    bad = make_model({"w": np.full((200, 700), np.inf), "b": np.zeros(3)})
    agg = fednode.Aggregator(g)
    with pytest.raises(fednode.InvalidError, match=r"update 1: tensor 'w': infinity") as e:
        agg.add_batch([ups[0], bad, ups[2]], [1, 1, 1], ["weights", "delta", "weights"])
    assert e.value.statuses == [0, fedavg_errors.EINVALID, 0]
    assert len(agg) == 2
    with pytest.raises(ValueError):
        agg.add_batch([ups[0]], [1, 2])


def test_errors(tmp_path):
    g = make_model({"w": np.zeros(4)})
    agg = fednode.Aggregator(g)
    bad = make_model({"w": np.array([0, 1, np.nan, 3])})
    with pytest.raises(fednode.InvalidError, match=r"'w'.*NaN at index 2"):
        agg.add(bad, 1)
    with pytest.raises(fednode.InvalidError, match="shape"):
        agg.add(make_model({"w": np.zeros(5)}), 1)
    with pytest.raises(fednode.InvalidError, match="weight"):
        agg.add(g, 0)
    with pytest.raises(ValueError):
        agg.add(g, 1, "gradient")
    with pytest.raises(fednode.NotFoundError):
        agg.add_file(tmp_path / "missing.safetensors", 1)
    with pytest.raises(fednode.InvalidError, match="no update"):
        agg.finish()
    agg.add(g, 1)
    agg.finish()
    with pytest.raises(fednode.InvalidError, match="finished"):
        agg.add(g, 1)
    with pytest.raises(fednode.InvalidError, match="unknown strategy"):
        fednode.Aggregator(g, strategy="fedsgd")
    with pytest.raises(fednode.InvalidError, match="trim"):
        fednode.Aggregator(g, strategy="trimmed-mean", trim=0.5)
    with pytest.raises(fednode.InvalidError, match="no state"):
        fednode.Aggregator(g, state=g)


def test_names():
    for value, name in enumerate(fedavg.STRATEGIES, start=1):
        assert fedavg.strategy_name(value) == name
        assert fedavg.strategy_from_name(name) == value
    assert fedavg.strategy_name(0) is None
    assert fednode.Aggregator is fedavg.Aggregator


def test_keeps_borrowed_models_alive():
    import gc
    agg = fednode.Aggregator(make_model({"w": np.ones(3)}), strategy="fedavgm")
    gc.collect()
    agg.add(make_model({"w": np.full(3, 3.0)}), 2)
    model, state = agg.finish()
    np.testing.assert_array_equal(model["w"], np.full(3, 3.0, dtype=np.float32))
    np.testing.assert_array_equal(state["m/w"], np.full(3, 2.0, dtype=np.float32))
