"""A federation driven from Python: a numpy trainer behind the C client,
and a coordinator run from Python (fednode.Federation, Client,
Coordinator)."""
import numpy as np
import pytest

import fednode
from fednode.federation import Client, Coordinator, Federation, Trainer

FED = "py-fed"


class LinearTrainer(Trainer):
    """Least squares on the site's own data, one gradient step per epoch:
    a federation of sites whose data come from one linear model must find
    it."""

    def __init__(self, x, y):
        self.x, self.y, self.rounds = x, y, []

    def train(self, global_model, registry, cohort, config):
        self.rounds.append(config.round)
        assert config.federation == FED and config.extra == {"note": "py"}
        w = np.array(global_model["w"], dtype=np.float64)
        for _ in range(config.local_epochs):
            grad = self.x.T @ (self.x @ w - self.y) / len(self.y)
            w -= config.learning_rate * grad
        loss = float(np.mean((self.x @ w - self.y) ** 2))
        return {"w": w.astype(np.float32)}, len(self.y), {"loss": loss}

    def evaluate(self, model, registry, cohort, config):
        w = np.array(model["w"], dtype=np.float64)
        return len(self.y), {"mse": float(np.mean((self.x @ w - self.y) ** 2))}


def make_world(tmp_path, n_sites=2, rounds=12, **fed_options):
    store = tmp_path / "store"
    store.mkdir()
    coord = fednode.Identity.generate("coord")
    coord_trust = fednode.Trust.open(tmp_path / "coord-trust.json")
    sites = []
    rng = np.random.default_rng(7)
    truth = np.array([1.0, -2.0, 0.5], dtype=np.float64)
    for i in range(n_sites):
        ident = fednode.Identity.generate(f"site-{i}")
        coord_trust.add(ident.public(), "site")
        trust = fednode.Trust.open(tmp_path / f"trust-{i}.json")
        trust.add(coord.public(), "coordinator")
        reg = fednode.registry.Registry(tmp_path / f"reg-{i}", create=True)
        x = rng.normal(size=(40 + 20 * i, 3))
        sites.append((ident, trust, reg, LinearTrainer(x, x @ truth)))
    transport = fednode.Transport.dir(store)
    fed = Federation.create(FED, coord, coord_trust, [s[0].node_id for s in sites],
                            rounds=rounds, local_epochs=5, learning_rate=0.2, seed=3,
                            train={"note": "py"}, **fed_options)
    initial = {"w": np.zeros(3, dtype=np.float32)}
    return transport, coord, coord_trust, sites, fed, initial, truth


def test_two_sites_from_python(tmp_path):
    transport, coord, coord_trust, sites, fed, initial, truth = make_world(tmp_path)
    fed.publish(transport, coord, coord_trust)
    for ident, trust, reg, _ in sites:
        Federation.fetch(transport, FED, ident, trust).approve(reg, "pytest")
    coordinator = Coordinator(transport, coord, coord_trust, fed, initial, tmp_path / "state",
                              poll_interval=0.01)
    clients = [Client(transport, ident, trust, reg, FED, "all", trainer, poll_interval=0.01,
                      work_dir=str(tmp_path))
               for ident, trust, reg, trainer in sites]
    state = None
    for _ in range(100):
        state = coordinator.step()
        for c in clients:
            c.step()
        if state == "finished":
            break
    assert state == "finished"
    final = np.array(coordinator.model["w"])
    np.testing.assert_allclose(final, truth, atol=1e-2)
    # Every site did every round once and holds the final model.
    for c, (_, _, _, trainer) in zip(clients, sites):
        assert c.step() == "finished"
        assert trainer.rounds == list(range(1, 13))
        np.testing.assert_array_equal(np.array(c.model["w"]), final)
    results = coordinator.results
    assert [r["round"] for r in results] == list(range(1, 13))
    assert {a["site"] for a in results[-1]["aggregated"]} == {"site-0", "site-1"}
    assert "mse" in results[-1]["aggregated"][0]["metrics"]["eval"]
    for ident, trust, reg, _ in sites:
        assert reg.verify() is None
        rounds = [r for r in reg.audit_log() if r["event"] == "round.participate"]
        assert [r["details"]["round"] for r in rounds] == list(range(1, 13))


def test_unapproved_and_trainer_errors(tmp_path):
    transport, coord, coord_trust, sites, fed, initial, _ = make_world(tmp_path, n_sites=1)
    coordinator = Coordinator(transport, coord, coord_trust, fed, initial, tmp_path / "state")
    coordinator.step()
    ident, trust, reg, trainer = sites[0]
    client = Client(transport, ident, trust, reg, FED, "all", trainer)
    with pytest.raises(fednode.AuthError, match="not approved"):
        client.step()
    fed.approve(reg)
    assert fed.approved(reg)

    class Broken(Trainer):
        def train(self, global_model, registry, cohort, config):
            raise RuntimeError("out of GPU memory")

    client = Client(transport, ident, trust, reg, FED, "all", Broken())
    with pytest.raises(RuntimeError, match="GPU"):
        client.step()


def test_manifest_round_trip(tmp_path):
    _, _, _, _, fed, _, _ = make_world(tmp_path, strategy="fedadam", server_lr=0.05)
    doc = fed.to_dict()
    assert doc["strategy"]["name"] == "fedadam"
    assert doc["strategy"]["server_lr"] == 0.05
    back = Federation.parse(fed.json)
    assert back.digest == fed.digest and back.rounds == 12 and back.id == FED
    with pytest.raises(fednode.FormatError):
        Federation.parse('{"format": "nope"}')
