"""Fine-tune the cross-encoder from the shipped all-MiniLM-L6-v2 weights on the train split (CPU, torch).

    python -m bench.verifier.train [--epochs 2] [--threads 2] [--out bench/verifier/build/verifier.pt]

Binary cross-entropy on the label, both prompt orders (each pair is shown stored/asked one way in one epoch
and the other way in the next), length-bucketed batches so short prompts are not padded to PAWS sentences,
bf16 autocast where the CPU computes bf16 natively (weights stay float32). Every layer is trained (freezing
the embeddings and lower layers, as the first build did, left the model unable to tell a missing ``?`` from a
changed role); ``--frozen-layers``/``--freeze-embeddings`` bring that back for a quicker build. Linear warmup
(6 %) then linear decay. Seeded: the same data and seed give the same weights (up to float rounding across CPUs).
Easy generated families (a changed name or content word, unrelated prompts: the guards and the cosine already
refuse most) are subsampled to ``--easy-share`` to spend the steps on the hard ones.

``--stop-after N`` ends the run after N steps with the schedule of the whole run (the shipped weights are
step 1600 of 2796 of a two-epoch run: they did better on dev than the end of epoch 1).

Writes the state dict (and one per epoch, ``<out>.epochN.pt``), and prints the dev loss/accuracy after each
epoch and the wall time.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from embedding_service.model import cpu_has_native_bf16

from .dataset import BUILD, read
from .generate import Pair
from .model import CrossEncoder, encode_pairs, pair_tokenizer, torch_scores

#: Generated families the cheap guards and the cosine mostly refuse already (subsampled by ``--easy-share``).
EASY_FAMILIES = frozenset({"name", "substitution", "unrelated"})


def batches(pairs: list[Pair], size: int, rng: random.Random, flip: bool) -> list[list[tuple[str, str, int]]]:
    rows = [((p.b, p.a) if flip else (p.a, p.b)) + (p.label,) for p in pairs]
    rng.shuffle(rows)
    # bucket: sort within windows of 50 batches by length, then shuffle the batches
    out = []
    window = size * 50
    for start in range(0, len(rows), window):
        chunk = sorted(rows[start:start + window], key=lambda r: len(r[0]) + len(r[1]))
        out.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
    rng.shuffle(out)
    return out


def evaluate(model: CrossEncoder, tokenizer: object, pairs: list[Pair]) -> dict[str, float]:
    model.eval()
    logits = torch_scores(model, tokenizer, [(p.a, p.b) for p in pairs])
    labels = np.array([p.label for p in pairs], dtype=np.float32)
    probs = 1 / (1 + np.exp(-logits))
    loss = float(np.mean(-(labels * np.log(probs + 1e-7) + (1 - labels) * np.log(1 - probs + 1e-7))))
    model.train()
    return {"loss": loss, "accuracy": float(np.mean((probs >= 0.5) == (labels == 1)))}


def train(pairs: list[Pair], dev: list[Pair], *, epochs: int, batch_size: int, lr: float, seed: int,
          frozen_layers: int = 0, freeze_embeddings: bool = False, checkpoint: Path | None = None,
          checkpoint_every: int = 100, init: Path | None = None, first_epoch: int = 0,
          log_every: int = 50, stop_after: int = 0) -> CrossEncoder:
    torch.manual_seed(seed + first_epoch)
    rng = random.Random(seed + first_epoch)
    tokenizer = pair_tokenizer()
    model = CrossEncoder()
    if init is not None:  # a second stage goes on from the first stage's weights
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=True))
    if freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    for layer in model.bert.encoder.layer[:frozen_layers]:
        layer.requires_grad_(False)
    model.train()
    head = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimizer = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": lr * 20}], weight_decay=0.01)
    plan = [batches(pairs, batch_size, rng, flip=bool(epoch % 2)) for epoch in range(first_epoch, first_epoch + epochs)]
    total = sum(len(b) for b in plan)
    warmup = max(1, int(0.06 * total))

    def factor(step: int) -> float:
        return step / warmup if step < warmup else max(0.0, (total - step) / (total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    bf16 = cpu_has_native_bf16()
    started = time.perf_counter()
    step = 0
    for epoch, epoch_batches in enumerate(plan):
        running = 0.0
        if stop_after and step >= stop_after:
            break
        for rows in epoch_batches:
            if stop_after and step >= stop_after:
                break
            ids, mask, types = encode_pairs(tokenizer, [(a, b) for a, b, _ in rows])
            labels = torch.tensor([label for _, _, label in rows], dtype=torch.float32)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
            loss = loss_fn(logits.float(), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running += float(loss.detach())
            if checkpoint is not None and step % checkpoint_every == 0:
                torch.save(model.state_dict(), checkpoint)  # a run cut short still leaves weights
            if step % log_every == 0:
                elapsed = time.perf_counter() - started
                print(f"epoch {epoch + 1} step {step}/{total} loss {running / log_every:.4f} "
                      f"{elapsed:.0f}s (eta {elapsed / step * (total - step):.0f}s)", flush=True)
                running = 0.0
        if checkpoint is not None and not (stop_after and step >= stop_after):
            torch.save(model.state_dict(), checkpoint.with_name(checkpoint.name.replace(".partial", "")
                                                                .replace(".pt", f".epoch{first_epoch + epoch + 1}.pt")))
        metrics = evaluate(model, tokenizer, dev)
        print(f"epoch {epoch + 1} done at {time.perf_counter() - started:.0f}s: dev loss {metrics['loss']:.4f} "
              f"accuracy {metrics['accuracy']:.4f}", flush=True)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, default=BUILD / "pairs.jsonl")
    parser.add_argument("--out", type=Path, default=BUILD / "verifier.pt")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine two threads mostly wait for each other)")
    parser.add_argument("--limit", type=int, default=0, help="train on the first N shuffled pairs (a smoke run)")
    parser.add_argument("--init", type=Path, help="start from these weights (a second stage)")
    parser.add_argument("--first-epoch", type=int, default=0, help="number of the first epoch (odd: prompts flipped)")
    parser.add_argument("--frozen-layers", type=int, default=0, help="lowest transformer layers left as shipped")
    parser.add_argument("--freeze-embeddings", action="store_true", help="leave the word embeddings as shipped")
    parser.add_argument("--paws-max", type=int, default=0,
                        help="PAWS pairs used, 0: all (long: each costs ~3 short ones)")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="stop after this many steps, the learning-rate schedule still planned for --epochs "
                             "(the shipped weights: step 1600 of a two-epoch run; 0: run every epoch)")
    parser.add_argument("--easy-share", type=float, default=0.5,
                        help="share of the easy generated families (name, substitution, unrelated) kept")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = read(args.pairs)
    easy = random.Random(args.seed)
    train_pairs = [p for p in pairs if p.split == "train" and p.source != "paws"
                   and (p.family not in EASY_FAMILIES or easy.random() < args.easy_share)]
    paws = [p for p in pairs if p.split == "train" and p.source == "paws"]
    random.Random(args.seed).shuffle(paws)
    train_pairs += paws[:args.paws_max or None]
    dev = [p for p in pairs if p.split == "dev"]
    if args.limit:
        random.Random(args.seed).shuffle(train_pairs)
        train_pairs, dev = train_pairs[:args.limit], dev[:max(200, args.limit // 5)]
    print(f"training on {len(train_pairs)} pairs, {args.epochs} epochs, dev {len(dev)}", flush=True)
    started = time.perf_counter()
    model = train(train_pairs, dev, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  frozen_layers=args.frozen_layers, freeze_embeddings=args.freeze_embeddings,
                  checkpoint=args.out.with_suffix(".partial.pt"), init=args.init,
                  first_epoch=args.first_epoch, stop_after=args.stop_after)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    minutes = (time.perf_counter() - started) / 60
    print(f"wrote {args.out} after {minutes:.1f} min ({math.ceil(minutes)} min on {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
