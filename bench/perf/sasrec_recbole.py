"""Our SASRec against RecBole 1.2.1's on ml-100k, under RecBole's own protocol, in one process.

Both sides use RecBole's data pipeline for ml-100k as RecBole ships it (its leave-one-out split
ordered by time, its augmented training prefixes, max_len 50) and are scored by RecBole's
Trainer.evaluate (full ranking; for sequential models RecBole masks only its padding item, no
history): our model is wrapped in a module with RecBole's `full_sort_predict`, so the evaluator is
literally the same code. RecBole's side trains through its
own Trainer (`_train_epoch` / `_valid_epoch`, anomaly detection off) with its SASRec defaults
(2 layers, 2 heads, d 64, inner 256, dropout 0.5, CE loss, Adam 1e-3, batch 2048).

Our side, two schemes:
- `recbole`: RecBole's exact scheme (the same prefixes, CE over all items at the last position,
  Adam 1e-3, batch 2048): the correctness check (test NDCG@10 over RecBole's) and the per-epoch speed;
- `all_positions`: one pass per user sequence with the loss at every position (the SASRec paper's
  scheme, with CE over all items where the paper uses BCE with sampled negatives), batch 256, to
  early stopping (patience 10 epochs on validation NDCG@10, RecBole's own `stopping_step`
  default). Its test NDCG@10 is the converged figure; its training seconds up to the first epoch
  whose validation NDCG@10 reaches RecBole's final one give the time to RecBole's quality. Each
  user's training sequence is cut into windows of max_len + 1 items, so every one of RecBole's
  training targets is predicted exactly once.
RecBole's reference is its model after the E epochs (as the issue defines the figures); its epoch
time includes its dataloader's per-batch work, which is part of what a RecBole user waits for, while
ours indexes tensors built before the clock starts.
Our tower is models.backbones.sasrec.SASRec with ids only (no profile, no scenario, no side
features); it reads a learned start token before the history, RecBole's does not.
Both sides run on one device (`python -m bench.perf --only sasrec --device D`; default auto, CUDA when
available), set in RecBole's config after it is built, and every epoch's clock is read after that
device's queued work (bench.perf.timing).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass

import torch
from torch import nn

from bench.engine.early_stopping import EarlyStopping
from bench.perf.timing import now
from models.recbole_compat import _import
from models.backbones.sasrec import SASRec as OurSASRec
from models.embeddings import history_tokens
from models.inputs import UserInput
from models.item_tower import ItemTower

RECBOLE_DEFAULTS = {  # RecBole 1.2.1's SASRec and sequential defaults, spelled out
    "n_layers": 2, "n_heads": 2, "hidden_size": 64, "inner_size": 256, "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02,
    "loss_type": "CE", "MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 2048, "learning_rate": 0.001,
    "learner": "adam", "train_neg_sample_args": None, "eval_batch_size": 4096,
    "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "NDCG@10",
}


@dataclass
class RecBoleData:
    config: object
    train: object
    valid: object
    test: object
    n_items: int  # RecBole's item count, padding id 0 included


def recbole_data(seed: int, epochs: int, workdir: str, device: torch.device | None = None) -> RecBoleData:
    """RecBole's ml-100k (shipped in its package) through its own Config, dataset and dataloaders, on `device`
    (None: RecBole's own choice, CUDA when available)."""
    import recbole

    config_cls = _import("recbole.config").Config
    data = _import("recbole.data")
    utils = _import("recbole.utils")
    root = os.path.join(os.path.dirname(recbole.__file__), "dataset_example")
    config = config_cls(model="SASRec", dataset="ml-100k", config_dict={
        **RECBOLE_DEFAULTS, "data_path": root, "seed": seed, "reproducibility": True, "epochs": epochs,
        "device": "cpu" if not torch.cuda.is_available() else "cuda", "use_gpu": torch.cuda.is_available(),
        "show_progress": False, "checkpoint_dir": workdir, "log_wandb": False, "state": "ERROR"})
    if device is not None:  # RecBole's Config picks CUDA whenever it is available: the asked device replaces it
        config["device"], config["use_gpu"] = device, device.type == "cuda"
    utils.init_seed(seed, True)
    dataset = data.create_dataset(config)
    train, valid, test = data.data_preparation(config, dataset)
    torch.autograd.set_detect_anomaly(False)  # RecBole's model imports switch it on (see models.recbole_compat)
    return RecBoleData(config, train, valid, test, dataset.item_num)


def _quiet_trainer(config, model):
    trainer_cls = _import("recbole.trainer").Trainer
    logging.getLogger().setLevel(logging.ERROR)
    trainer = trainer_cls(config, model)
    torch.autograd.set_detect_anomaly(False)
    return trainer


def run_recbole(data: RecBoleData, epochs: int) -> dict:
    """RecBole's SASRec through its Trainer: seconds and validation NDCG@10 per epoch, final test NDCG@10."""
    model = _import("recbole.model.sequential_recommender.sasrec").SASRec(data.config, data.train._dataset)
    model = model.to(data.config["device"])
    trainer = _quiet_trainer(data.config, model)
    seconds, valid = [], []
    for epoch in range(epochs):
        start = now(data.config["device"])
        trainer._train_epoch(data.train, epoch, show_progress=False)
        seconds.append(now(data.config["device"]) - start)
        valid.append(float(trainer._valid_epoch(data.valid, show_progress=False)[1]["ndcg@10"]))
    test = trainer.evaluate(data.test, load_best_model=False, show_progress=False)
    return {"epoch_seconds": seconds, "valid_ndcg10": valid, "test_ndcg10": float(test["ndcg@10"])}


class Scorer(nn.Module):
    """Our tower in RecBole's clothes: `full_sort_predict` on RecBole's (1-based, 0-padded) sequences."""

    def __init__(self, n_items: int) -> None:  # n_items: RecBole's count, padding 0 included
        super().__init__()
        self.item_tower = ItemTower(torch.zeros(n_items - 1, 0, dtype=torch.long), [], dim=RECBOLE_DEFAULTS["hidden_size"])
        self.tower = OurSASRec(self.item_tower, [], 1, use_profile=False, use_scenario=False,
                               max_len=RECBOLE_DEFAULTS["MAX_ITEM_LIST_LENGTH"])

    @property
    def device(self) -> torch.device:
        return self.item_tower.ids.weight.device

    @staticmethod
    def user_input(seq: torch.Tensor, length: torch.Tensor) -> UserInput:
        mask = torch.arange(seq.shape[1], device=seq.device)[None] < length[:, None]
        zeros = torch.zeros_like(seq)
        return UserInput(torch.zeros(len(seq), 0, dtype=torch.long, device=seq.device), (seq - 1).clamp(min=0) * mask,
                         zeros, mask)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        u = self.tower(self.user_input(interaction["item_id_list"], interaction["item_length"]))[:, 0]  # [B, D]
        scores = u @ self.item_tower.all_items().T  # [B, N-1]
        return torch.cat([torch.zeros_like(scores[:, :1]), scores], dim=1)  # RecBole's id 0 (padding) first


def evaluate(scorer: Scorer, data: RecBoleData, which: str) -> float:
    trainer = _quiet_trainer(data.config, scorer)
    result = trainer.evaluate(data.valid if which == "valid" else data.test, load_best_model=False, show_progress=False)
    return float(result["ndcg@10"])


def _prefixes(data: RecBoleData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    inter = data.train._dataset.inter_feat
    device = data.config["device"]
    return inter["item_id_list"].to(device), inter["item_length"].to(device), inter["item_id"].to(device)


def train_recbole_scheme(scorer: Scorer, data: RecBoleData, epochs: int, seed: int) -> dict:
    """RecBole's scheme on our tower: its prefixes, CE at the last position, Adam 1e-3, batch 2048."""
    seq, length, target = _prefixes(data)
    opt = torch.optim.Adam(scorer.parameters(), lr=RECBOLE_DEFAULTS["learning_rate"])
    gen = torch.Generator().manual_seed(seed)
    seconds, valid = [], []
    for _ in range(epochs):
        scorer.train()
        start = now(seq.device)
        for idx in torch.randperm(len(seq), generator=gen).to(seq.device).split(RECBOLE_DEFAULTS["train_batch_size"]):
            u = scorer.tower(scorer.user_input(seq[idx], length[idx]))[:, 0]  # [B, D]
            loss = nn.functional.cross_entropy(u @ scorer.item_tower.all_items().T, target[idx] - 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(now(seq.device) - start)
        valid.append(evaluate(scorer, data, "valid"))
    return {"epoch_seconds": seconds, "valid_ndcg10": valid, "test_ndcg10": evaluate(scorer, data, "test")}


def _user_sequences(data: RecBoleData) -> tuple[list[int], list[torch.Tensor]]:
    """RecBole's user ids and each one's whole training sequence (1-based ids, oldest first), rebuilt from RecBole's prefixes.

    RecBole's augmented rows come per user in time order, one per target: the sequence is the first
    row's first item followed by every row's target. Checked against every row's (truncated) prefix.
    """
    seq, length, target = (t.cpu() for t in _prefixes(data))
    user = data.train._dataset.inter_feat["user_id"].cpu()
    starts = torch.nonzero(torch.cat([torch.tensor([True]), user[1:] != user[:-1]])).ravel().tolist() + [len(user)]
    users, out = [], []
    for lo, hi in zip(starts[:-1], starts[1:]):
        full = torch.cat([seq[lo, :1], target[lo:hi]])  # [n] the user's training items in time order
        for row in (lo, hi - 1):  # the first and the last prefix must be the items before their target
            n = int(length[row])
            end = row - lo + 1  # index of the row's target in `full`
            if not torch.equal(seq[row, :n], full[end - n : end]):
                raise RuntimeError("RecBole's training prefixes are not in per-user time order")
        users.append(int(user[lo]))
        out.append(full)
    if len(set(users)) != len(users):
        raise RuntimeError("RecBole's training prefixes are not grouped by user")
    return users, out


def sliding_windows(sequences: list[torch.Tensor], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each sequence into windows of at most width + 1 items, each target predicted exactly once.

    A sequence s of n items has targets s[1:], taken in blocks of `width` from the newest back;
    a block's window holds its targets and the item before each, so window [w, : len + 1] is
    s[start - 1 : end + 1]. Returns windows [W, width + 1] (0-padded) and their item counts [W].
    """
    rows, lens = [], []
    for s in sequences:
        for end in range(len(s) - 1, 0, -width):  # index of the block's newest target
            start = max(1, end - width + 1)
            window = s[start - 1 : end + 1]
            rows.append(torch.cat([window, torch.zeros(width + 1 - len(window), dtype=s.dtype)]))
            lens.append(len(window))
    return torch.stack(rows), torch.tensor(lens)


def train_all_positions(scorer: Scorer, data: RecBoleData, max_epochs: int, seed: int, patience: int = 10) -> dict:
    """Sliding windows over every user's training sequence, CE at every position, to early stopping
    (no better validation NDCG@10 for `patience` epochs, bench.engine.early_stopping); the best epoch's model is tested.
    `seconds_valid`: (training seconds so far, validation NDCG@10) after each epoch."""
    width = RECBOLE_DEFAULTS["MAX_ITEM_LIST_LENGTH"]
    full, full_len = sliding_windows(_user_sequences(data)[1], width)  # [W, width + 1] 1-based ids, [W]
    full, full_len = full.to(data.config["device"]), full_len.to(data.config["device"])
    opt = torch.optim.Adam(scorer.parameters(), lr=RECBOLE_DEFAULTS["learning_rate"])
    gen = torch.Generator().manual_seed(seed)
    elapsed, history = 0.0, []
    stopper = EarlyStopping(patience, max_epochs)
    for _ in range(max_epochs):
        scorer.train()
        start = now(full.device)
        for idx in torch.randperm(len(full), generator=gen).to(full.device).split(256):
            inp, n = full[idx, :width], (full_len[idx] - 1).clamp(max=width)  # inputs and their lengths
            tgt = full[idx, 1 : width + 1]  # [B, L] next item at every position
            user = scorer.user_input(inp, n)
            tokens = history_tokens(scorer.tower.item_tower, scorer.tower.scenarios, user)  # [B, L, D]
            first = scorer.tower.start.expand(len(idx), -1)[:, None]
            out = scorer.tower.encode(torch.cat([first, tokens], dim=1))[:, 1:]  # [B, L, D] after each item
            valid_pos = user.mask & (tgt > 0)
            logits = out[valid_pos] @ scorer.item_tower.all_items().T
            loss = nn.functional.cross_entropy(logits, tgt[valid_pos] - 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        elapsed += now(full.device) - start
        score = evaluate(scorer, data, "valid")
        history.append((elapsed, score))
        if stopper.update(score, scorer):
            break
    if stopper.has_weights():
        stopper.restore(scorer)
    return {"seconds_valid": history, "test_ndcg10": evaluate(scorer, data, "test")}


@contextlib.contextmanager
def _in_tempdir():
    """RecBole writes log folders into the working directory: keep them out of the project."""
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        yield tmp


def sasrec_figures(epochs: int, seeds: list[int], device: torch.device | None = None) -> dict[str, object]:
    """The raw per-seed figures (printed as each seed finishes) on `device` (None: RecBole's choice);
    `summarise_seeds` turns them into the four SASRec-vs-RecBole figures."""
    torch.autograd.set_detect_anomaly(False)
    per_seed: dict[str, object] = {}
    for seed in seeds:
        with _in_tempdir() as tmp:
            data = recbole_data(seed, epochs, tmp, device)
            theirs = run_recbole(data, epochs)
            torch.manual_seed(seed)
            used = data.config["device"]
            exact = train_recbole_scheme(Scorer(data.n_items).to(used), data, epochs, seed)
            torch.manual_seed(seed)
            converged = train_all_positions(Scorer(data.n_items).to(used), data, 200, seed)
        # time to RecBole's quality: the first epoch of the run to early stopping at RecBole's final validation
        reached = [t for t, s in converged["seconds_valid"] if s >= theirs["valid_ndcg10"][-1]]
        new = {
            f"sasrec_seed{seed}_recbole_epoch_seconds": theirs["epoch_seconds"],
            f"sasrec_seed{seed}_recbole_valid_ndcg10": theirs["valid_ndcg10"],
            f"sasrec_seed{seed}_recbole_test_ndcg10": theirs["test_ndcg10"],
            f"sasrec_seed{seed}_ours_recbole_scheme_epoch_seconds": exact["epoch_seconds"],
            f"sasrec_seed{seed}_ours_recbole_scheme_test_ndcg10": exact["test_ndcg10"],
            f"sasrec_seed{seed}_ours_seconds_to_recbole_valid": reached[0] if reached else None,
            f"sasrec_seed{seed}_ours_converged_epochs": len(converged["seconds_valid"]),
            f"sasrec_seed{seed}_ours_converged_seconds": converged["seconds_valid"][-1][0],
            f"sasrec_seed{seed}_ours_converged_test_ndcg10": converged["test_ndcg10"],
        }
        for name, value in new.items():
            print(f"{name}: {value}", flush=True)
        per_seed |= new
    return per_seed


def summarise_seeds(figures: dict[str, object]) -> dict[str, object]:
    """The four figures, means over every seed whose raw `sasrec_seed<N>_*` figures `figures` holds
    (so seeds run by separate `--only sasrec --seeds N` calls into one file summarise together)."""
    seeds = sorted({int(m.group(1)) for k in figures if (m := re.fullmatch(r"sasrec_seed(\d+)_.+", k))})
    rel, speed, speedup_q, conv = [], [], [], []
    for seed in seeds:
        prefix = f"sasrec_seed{seed}_"
        f = {k.removeprefix(prefix): v for k, v in figures.items() if k.startswith(prefix)}
        recbole_seconds = sum(f["recbole_epoch_seconds"])
        rel.append(f["ours_recbole_scheme_test_ndcg10"] / f["recbole_test_ndcg10"])
        speed.append(recbole_seconds / sum(f["ours_recbole_scheme_epoch_seconds"]))
        reached = f["ours_seconds_to_recbole_valid"]
        speedup_q.append(recbole_seconds / reached if reached else float("nan"))
        conv.append(f["ours_converged_test_ndcg10"] / f["recbole_test_ndcg10"])
    mean = lambda xs: float(sum(xs) / len(xs))  # noqa: E731
    return {"sasrec_seeds": " ".join(map(str, seeds)), "sasrec_ndcg10_relative_to_recbole": mean(rel),
            "sasrec_epoch_speedup_vs_recbole": mean(speed), "sasrec_speedup_to_recbole_quality": mean(speedup_q),
            "sasrec_ndcg10_converged_relative_to_recbole": mean(conv)}
