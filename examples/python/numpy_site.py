#!/usr/bin/python3
"""A federation site whose training is written in numpy.

    numpy_site.py --store URL --identity KEYFILE --trust FILE --id FEDERATION
                  --registry DIR --cohort NAME [--eval-cohort NAME]

The C client (libfednode's fdn_client) does the protocol: it waits for each
round's global model, checks and opens the sealed envelopes, records every
round in the registry's audit log and seals the update for the coordinator.
This script only supplies the training: softmax regression on the images of
a registry cohort (the data `fednode demo` creates: one CT slice per patient,
label "finding" = "nodule" | "none"), in numpy.

Every site of a federation must compute the same features; run this script
at every site (or `fednode node` at every site, whose C trainer centres the
features differently).

Written as an example host program: CC0 (see examples/COPYING).
"""
import argparse
import sys

import numpy as np

import fednode
from fednode.federation import Client, Trainer

WINDOW = (-1000.0, -400.0)   # lung window, HU
POOL = 4                      # 64x64 pixels -> 16x16 features
CLASSES = ("none", "nodule")


def features(path):
    """The 16x16 lung-window features of one stored CT slice."""
    ds = fednode.Dataset.read(path)
    rows, cols = ds.get_int("Rows"), ds.get_int("Columns")
    signed = ds.get_int("PixelRepresentation") == 1
    raw = np.frombuffer(ds.get_bytes("PixelData"), dtype="<i2" if signed else "<u2")
    slope = ds.get_number("RescaleSlope") if "RescaleSlope" in ds else 1.0
    intercept = ds.get_number("RescaleIntercept") if "RescaleIntercept" in ds else 0.0
    hu = raw[:rows * cols].reshape(rows, cols) * slope + intercept
    x = np.clip((hu - WINDOW[0]) / (WINDOW[1] - WINDOW[0]), 0.0, 1.0)
    return x.reshape(rows // POOL, POOL, cols // POOL, POOL).mean(axis=(1, 3)).ravel()


class SoftmaxTrainer(Trainer):
    def __init__(self, eval_cohort=None):
        self.eval_cohort = eval_cohort
        self.cache = {}
        self.mean = None

    def raw(self, registry, cohort):
        xs, ys = [], []
        for m in registry.cohort(cohort, "federated training (numpy example)"):
            if m.sha256 not in self.cache:
                self.cache[m.sha256] = features(m.locator)
            xs.append(self.cache[m.sha256])
            ys.append(CLASSES.index(m.labels["finding"]))
        return np.array(xs), np.array(ys)

    def data(self, registry, cohort, train_cohort):
        """Features centred on the mean image of this site's training
        cohort (without centring, the shared body outline dominates the
        gradient and SGD swings between the classes), and labels."""
        if self.mean is None:
            self.mean = self.raw(registry, train_cohort)[0].mean(axis=0)
        x, y = self.raw(registry, cohort)
        return x - self.mean, y

    @staticmethod
    def forward(w, b, x):
        z = x @ w.T + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def train(self, global_model, registry, cohort, config):
        x, y = self.data(registry, cohort, cohort)
        w = np.array(global_model["classifier.weight"], dtype=np.float64)
        b = np.array(global_model["classifier.bias"], dtype=np.float64)
        w0, rng = w.copy(), np.random.default_rng(config.seed)
        batch = int(config.extra.get("batch_size", 16))
        onehot = np.eye(len(CLASSES))[y]
        for _ in range(config.local_epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), batch):
                i = order[start:start + batch]
                g = (self.forward(w, b, x[i]) - onehot[i]) / len(i)
                # FedProx: the proximal term pulls towards the global model.
                w -= config.learning_rate * (g.T @ x[i] + config.proximal_mu * (w - w0))
                b -= config.learning_rate * g.sum(axis=0)
        p = self.forward(w, b, x)
        metrics = {"loss": float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))),
                   "accuracy": float(np.mean(p.argmax(axis=1) == y))}
        model = {"classifier.weight": w.astype(np.float32),
                 "classifier.bias": b.astype(np.float32)}
        return model, len(y), metrics

    def evaluate(self, model, registry, cohort, config):
        x, y = self.data(registry, self.eval_cohort or cohort, cohort)
        p = self.forward(np.array(model["classifier.weight"], dtype=np.float64),
                         np.array(model["classifier.bias"], dtype=np.float64), x)
        return len(y), {"loss": float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))),
                        "accuracy": float(np.mean(p.argmax(axis=1) == y))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("--store", "--identity", "--trust", "--id", "--registry", "--cohort"):
        ap.add_argument(name, required=True)
    ap.add_argument("--eval-cohort")
    ap.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
    a = ap.parse_args()
    transport = fednode.Transport.open(a.store)
    me = fednode.Identity.load(a.identity)
    trust = fednode.Trust.open(a.trust)
    registry = fednode.registry.Registry(a.registry)
    client = Client(transport, me, trust, registry, a.id, a.cohort,
                    SoftmaxTrainer(a.eval_cohort), poll_interval=a.poll,
                    on_progress=lambda p: print(f"{me.node_id}: {p.items_done} of "
                                                f"{p.items_total} rounds", flush=True))
    client.run()
    print(f"{me.node_id}: federation {a.id} finished after {client.round} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
