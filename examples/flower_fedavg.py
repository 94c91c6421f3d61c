"""Federated averaging with Flower, the clients' updates sent through lmgc.

Three clients train a small MLP (64 -> 128 -> 10, ReLU) on their shares of
scikit-learn's digits; each round every client sends its update (new weights
minus the global ones: what federated learning ships, gradient-like) as one lmgc
archive (the fast level: megabytes per second, decodes on any machine); the
server decodes the updates, adds them to the global weights and averages. The same simulation runs once more without
lmgc, and the two final models must be equal bit for bit: lmgc is lossless, so
federated learning does not notice it. Per round it prints what the clients
sent: raw, zstd -3, pcodec (when installed) and lmgc; and what the server's broadcast of the new global
model costs through lmgc alone and coded against the previous global model, which every client holds
(``reference=``; each broadcast archive is decoded with that reference and checked bit for bit).

``--update`` says what a client sends, as distributed training does where bandwidth matters:
``float`` the float32 update; ``qsgd`` QSGD-style stochastic levels -7..7 in int8 with one float32 norm
per bucket of 512 (seeded per client and round, so both runs draw the same); ``topk`` the largest 5 %
of each tensor as sorted int32 indices and float32 values. The server turns levels and indices back
into float32 updates the same way in both runs, so the comparison is the same quantization sent
through lmgc against sent raw.

    pip install "flwr[simulation]" scikit-learn      # once
    python examples/flower_fedavg.py [--rounds 3] [--clients 3] [--update float|qsgd|topk]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import zlib

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
BUCKET, LEVELS, TOP_SHARE = 512, 7, 0.05


def quantize(update: list[np.ndarray], kind: str, seed: int) -> dict[str, np.ndarray]:
    """What a client puts on the wire for ``update`` (float32 arrays, in NAMES order)."""
    if kind == "float":
        return dict(zip(NAMES, update, strict=True))
    wire: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    for name, u in zip(NAMES, update, strict=True):
        flat = u.reshape(-1)
        if kind == "qsgd":
            padded = np.concatenate([flat, np.zeros(-flat.size % BUCKET, dtype=np.float32)]).reshape(-1, BUCKET)
            norm = np.sqrt((padded * padded).sum(axis=1, dtype=np.float32)).astype(np.float32)
            scaled = np.abs(padded) / np.where(norm > 0, norm, np.float32(1))[:, None] * np.float32(LEVELS)
            level = np.minimum(np.floor(scaled + rng.random(padded.shape, dtype=np.float32)), LEVELS)
            wire[f"{name}.q"] = (np.sign(padded) * level).astype(np.int8).reshape(-1)[: flat.size].reshape(u.shape)
            wire[f"{name}.norm"] = norm
        else:
            k = max(1, int(flat.size * TOP_SHARE))
            idx = np.sort(np.argpartition(-np.abs(flat), k - 1)[:k]).astype(np.int32)
            wire[f"{name}.idx"], wire[f"{name}.val"] = idx, flat[idx]
    return wire


def dequantize(wire: dict[str, np.ndarray], kind: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The server's float32 update from what a client sent: the same arithmetic in both runs."""
    if kind == "float":
        return [wire[n] for n in NAMES]
    out = []
    for name, shape in zip(NAMES, shapes, strict=True):
        size = int(np.prod(shape))
        if kind == "qsgd":
            q = wire[f"{name}.q"].reshape(-1).astype(np.float32)
            step = np.repeat(wire[f"{name}.norm"] / np.float32(LEVELS), BUCKET)[:size]
            out.append((q * step).reshape(shape))
        else:
            dense = np.zeros(size, dtype=np.float32)
            dense[wire[f"{name}.idx"]] = wire[f"{name}.val"]
            out.append(dense.reshape(shape))
    return out


def pcodec_size(arrays: list[np.ndarray]) -> int:
    """Bytes pcodec 1.1 (level 8, one standalone stream per array) sends, or 0 when it is not installed."""
    try:
        from pcodec import ChunkConfig, standalone
    except ImportError:
        return 0
    config = ChunkConfig(compression_level=8, enable_8_bit=True)
    return sum(len(standalone.simple_compress(np.ascontiguousarray(a).reshape(-1), config)) for a in arrays)


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
    def __init__(self, client: int, clients: int, compress: bool, kind: str) -> None:
        self.x, self.y = data(client, clients)
        self.client, self.compress, self.kind = client, compress, kind

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        new = local_steps(parameters, self.x, self.y)
        update = [n - p for n, p in zip(new, parameters, strict=True)]  # float32, exact per element
        seed = zlib.crc32(parameters[0].tobytes()) * 64 + self.client  # this round and client, in both runs
        wire = quantize(update, self.kind, seed)
        arrays = list(wire.values())
        raw = sum(a.nbytes for a in arrays)
        sizes = {
            "raw": raw,
            "zstd": len(zstandard.ZstdCompressor(level=3).compress(b"".join(a.tobytes() for a in arrays))),
            "pcodec": pcodec_size(arrays),
        }
        if not self.compress:
            return arrays, len(self.x), {**sizes, "sent": raw}
        blob = lmgc.compress(wire, level="fast", threads=1)
        # one uint8 array carries the whole archive: Flower ships it as it is
        return [np.frombuffer(blob, dtype=np.uint8)], len(self.x), {**sizes, "sent": len(blob)}


class LmgcFedAvg(FedAvg):  # type: ignore[misc]
    """FedAvg over updates: decodes each client's lmgc archive, adds the update to the global weights,
    averages the results; keeps what each round sent."""

    def __init__(
        self,
        compress: bool,
        kind: str,
        log: list[dict[str, int]],
        final: list[list[np.ndarray]],
        initial: list[np.ndarray],
        **kw: Any,
    ) -> None:
        super().__init__(initial_parameters=ndarrays_to_parameters(initial), **kw)
        self.compress, self.kind, self.log, self.final, self.current = compress, kind, log, final, initial

    def aggregate_fit(
        self, server_round: int, results: list[tuple[ClientProxy, FitRes]], failures: list[Any]
    ) -> tuple[Parameters | None, dict[str, Any]]:
        sizes = {k: sum(int(r.metrics[k]) for _, r in results) for k in ("raw", "zstd", "pcodec", "sent")}
        self.log.append({"round": server_round, **sizes})
        # the server orders results by client id so that float sums run in the same order in both runs
        results = sorted(results, key=lambda item: int(item[1].metrics["cid"]))
        shapes = [g.shape for g in self.current]
        for _, res in results:
            sent = parameters_to_ndarrays(res.parameters)
            if self.compress:
                wire = lmgc.decompress(sent[0].tobytes())
            else:
                wire = dict(zip(quantize([np.zeros(s, np.float32) for s in shapes], self.kind, 0), sent, strict=True))
            update = dequantize(wire, self.kind, shapes)
            res.parameters = ndarrays_to_parameters([g + u for g, u in zip(self.current, update, strict=True)])
        params, metrics = super().aggregate_fit(server_round, results, failures)
        if params is not None:
            previous, self.current = self.current, parameters_to_ndarrays(params)
            self.final[:] = [self.current]
            if self.compress:
                self.log[-1].update(broadcast_sizes(previous, self.current))
        return params, metrics


def broadcast_sizes(previous: list[np.ndarray], current: list[np.ndarray]) -> dict[str, int]:
    """The new global model as the server would broadcast it: raw, lmgc alone, and lmgc against the
    previous global model (which the clients hold); the latter decoded with it and checked bit for bit."""
    new, old = dict(zip(NAMES, current, strict=True)), dict(zip(NAMES, previous, strict=True))
    alone = lmgc.compress(new, level="fast", threads=1)
    against = lmgc.compress(new, level="fast", threads=1, reference=old)
    back = lmgc.decompress(against, reference=old)
    if not all(np.array_equal(back[k].view(np.uint32), v.view(np.uint32)) for k, v in new.items()):
        raise SystemExit("the broadcast coded against the previous model did not decode bit for bit")
    return {"global_raw": sum(v.nbytes for v in current), "global_lmgc": len(alone), "global_ref": len(against)}


def simulate(rounds: int, clients: int, compress: bool, kind: str) -> tuple[list[np.ndarray], list[dict[str, int]]]:
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

        return Numbered(cid, clients, compress, kind).to_client()

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = LmgcFedAvg(
            compress,
            kind,
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
    ap.add_argument("--update", choices=("float", "qsgd", "topk"), default="float", help="what a client sends")
    args = ap.parse_args()
    with_lmgc, log = simulate(args.rounds, args.clients, True, args.update)
    plain, _ = simulate(args.rounds, args.clients, False, args.update)
    print(f"update: {args.update}, bytes all clients sent per round")
    print("round          raw  zstd -3   pcodec  lmgc (fast)  lmgc / raw")
    for row in log:
        ratio = row["sent"] / row["raw"]
        pco = f"{row['pcodec']:8,d}" if row["pcodec"] else "       -"
        print(f"{row['round']:5d}  {row['raw']:11,d}  {row['zstd']:7,d}  {pco}  {row['sent']:11,d}  {ratio:9.3f}")
    same = all(np.array_equal(a.view(np.uint32), b.view(np.uint32)) for a, b in zip(with_lmgc, plain, strict=True))
    print("the server's broadcast of the new global model, coded alone and against the previous global model")
    print("round          raw  lmgc (fast)  --reference")
    for row in log:
        if "global_raw" in row:
            ratio = row["global_ref"] / row["global_lmgc"]
            print(
                f"{row['round']:5d}  {row['global_raw']:11,d}  {row['global_lmgc']:11,d}  {row['global_ref']:11,d}"
                f"  ({ratio:.3f} of lmgc alone)"
            )
    print("aggregated model with lmgc == without, bit for bit:", same)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
