"""Federated averaging with Flower, the clients' updates sent through lmgc.

Three clients train a small MLP (64 -> 128 -> 10, ReLU) on their shares of
scikit-learn's digits; each round every client sends its update (new weights
minus the global ones: what federated learning ships, gradient-like) as one lmgc
archive (the fast level: megabytes per second, decodes on any machine); the
server decodes the updates, adds them to the global weights and averages. The same simulation runs once more without
lmgc, and the two final models must be equal bit for bit: lmgc is lossless, so
federated learning does not notice it. Per round it prints what the clients
sent: raw float32, zstd -3, lmgc.

    pip install "flwr[simulation]" scikit-learn      # once
    python examples/flower_fedavg.py [--rounds 3] [--clients 3]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import zstandard
from flwr.client import ClientApp, NumPyClient
from flwr.common import Context, FitRes, Parameters, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

import lmgc

NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
HIDDEN = 128


def data(client: int, clients: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return x[client::clients], y[client::clients]


def local_steps(params: list[np.ndarray], x: np.ndarray, y: np.ndarray, steps: int = 5) -> list[np.ndarray]:
    """A few steps of full-batch gradient descent on the MLP, in float32 numpy (deterministic here)."""
    w1, b1, w2, b2 = (p.copy() for p in params)
    onehot = np.eye(10, dtype=np.float32)[y]
    lr = np.float32(0.5)
    for _ in range(steps):
        h = np.maximum(x @ w1.T + b1, np.float32(0))
        logits = h @ w2.T + b2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        d2 = (p - onehot) / np.float32(len(x))
        d1 = (d2 @ w2) * (h > 0)
        w2 -= lr * (d2.T @ h)
        b2 -= lr * d2.sum(axis=0)
        w1 -= lr * (d1.T @ x)
        b1 -= lr * d1.sum(axis=0)
    return [w1, b1, w2, b2]


class DigitsClient(NumPyClient):  # type: ignore[misc]
    def __init__(self, client: int, clients: int, compress: bool) -> None:
        self.x, self.y = data(client, clients)
        self.compress = compress

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        new = local_steps(parameters, self.x, self.y)
        update = [n - p for n, p in zip(new, parameters, strict=True)]  # float32, exact per element
        raw = sum(a.nbytes for a in update)
        packed = len(zstandard.ZstdCompressor(level=3).compress(b"".join(a.tobytes() for a in update)))
        if not self.compress:
            return update, len(self.x), {"raw": raw, "zstd": packed, "sent": raw}
        blob = lmgc.compress(dict(zip(NAMES, update, strict=True)), level="fast", threads=1)
        # one uint8 array carries the whole archive: Flower ships it as it is
        return [np.frombuffer(blob, dtype=np.uint8)], len(self.x), {"raw": raw, "zstd": packed, "sent": len(blob)}


class LmgcFedAvg(FedAvg):  # type: ignore[misc]
    """FedAvg over updates: decodes each client's lmgc archive, adds the update to the global weights,
    averages the results; keeps what each round sent."""

    def __init__(
        self,
        compress: bool,
        log: list[dict[str, int]],
        final: list[list[np.ndarray]],
        initial: list[np.ndarray],
        **kw: Any,
    ) -> None:
        super().__init__(initial_parameters=ndarrays_to_parameters(initial), **kw)
        self.compress, self.log, self.final, self.current = compress, log, final, initial

    def aggregate_fit(
        self, server_round: int, results: list[tuple[ClientProxy, FitRes]], failures: list[Any]
    ) -> tuple[Parameters | None, dict[str, Any]]:
        sizes = {k: sum(int(r.metrics[k]) for _, r in results) for k in ("raw", "zstd", "sent")}
        self.log.append({"round": server_round, **sizes})
        # the server orders results by client id so that float sums run in the same order in both runs
        results = sorted(results, key=lambda item: int(item[1].metrics["cid"]))
        for _, res in results:
            if self.compress:
                arrays = lmgc.decompress(parameters_to_ndarrays(res.parameters)[0].tobytes())
                update = [arrays[n] for n in NAMES]
            else:
                update = parameters_to_ndarrays(res.parameters)
            res.parameters = ndarrays_to_parameters([g + u for g, u in zip(self.current, update, strict=True)])
        params, metrics = super().aggregate_fit(server_round, results, failures)
        if params is not None:
            self.current = parameters_to_ndarrays(params)
            self.final[:] = [self.current]
        return params, metrics


def simulate(rounds: int, clients: int, compress: bool) -> tuple[list[np.ndarray], list[dict[str, int]]]:
    log: list[dict[str, int]] = []
    final: list[list[np.ndarray]] = []
    rng = np.random.default_rng(0)
    initial = [
        (rng.standard_normal((HIDDEN, 64)) / 8).astype(np.float32),
        np.zeros(HIDDEN, dtype=np.float32),
        (rng.standard_normal((10, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32),
        np.zeros(10, dtype=np.float32),
    ]

    def client_fn(context: Context) -> Any:
        cid = int(context.node_config["partition-id"])

        class Numbered(DigitsClient):
            def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
                out, n, metrics = super().fit(parameters, config)
                return out, n, {**metrics, "cid": cid}

        return Numbered(cid, clients, compress).to_client()

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = LmgcFedAvg(
            compress,
            log,
            final,
            initial,
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=clients,
            min_available_clients=clients,
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=client_fn),
        num_supernodes=clients,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    return final[0], log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=3)
    args = ap.parse_args()
    with_lmgc, log = simulate(args.rounds, args.clients, compress=True)
    plain, _ = simulate(args.rounds, args.clients, compress=False)
    print("round  raw float32  zstd -3  lmgc (fast)  lmgc / raw")
    for row in log:
        ratio = row["sent"] / row["raw"]
        print(f"{row['round']:5d}  {row['raw']:11,d}  {row['zstd']:7,d}  {row['sent']:11,d}  {ratio:9.3f}")
    same = all(np.array_equal(a.view(np.uint32), b.view(np.uint32)) for a, b in zip(with_lmgc, plain, strict=True))
    print("aggregated model with lmgc == without, bit for bit:", same)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
