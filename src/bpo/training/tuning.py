"""LoRA fine-tuning of the base MLLM on preference pairs: BPO (DPO's sigmoid loss) and its SFT
baseline, resumable from a checkpoint written at the end of every epoch.

- LoRA (``peft``) on every linear layer of the LM only: projector, vision tower and ``lm_head``
  stay frozen, so their outputs are computed once (``bpo.training.pairs``).
- The reference is the base model (adapters disabled); its log-probs are cached before training.
- Chosen and rejected (and, for mDPO, the chosen with a weakened image) go through the LM in one
  batched forward; the output layer runs only on response positions.
- Every step logs trl's names: ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``,
  ``rewards/margins``, ``logps/chosen``, ``logps/rejected``, plus ``loss``, ``lr``, ``tokens/s``.
- A non-finite loss or gradient stops the run, naming the step and the batch's pairs; the last
  checkpoint (end of the previous epoch) is never written over by a failing epoch.
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bpo.models.forward import token_logprobs
from bpo.training.data import length_grouped_batches
from bpo.precision import autocast
from bpo.training.loop import OptimConfig, lr_at
from bpo.training.lora_dropout import use_lora_dropout
from bpo.training.pairs import EncodedPairs, encode_pairs, load_or_compute_reference, pair_batch, select_pairs
from bpo.training.tuning_config import TuningConfig


def lm_linear_targets(model) -> str:
    """A ``peft`` ``target_modules`` regex matching every ``nn.Linear`` inside the LM (and nothing
    in the vision tower, the projector or ``lm_head``)."""
    lm = model.model.language_model
    prefix = next(name for name, module in model.named_modules() if module is lm)
    suffixes = sorted({name.rsplit(".", 1)[-1] for name, m in lm.named_modules() if isinstance(m, torch.nn.Linear)})
    if not suffixes:
        raise ValueError("the LM has no nn.Linear layers for LoRA")
    return rf"{re.escape(prefix)}\..*\.({'|'.join(map(re.escape, suffixes))})"


def attach_lora(model, cfg: TuningConfig):
    """``model`` wrapped by ``peft`` with fresh LoRA adapters (seeded by ``cfg.seed``)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lm_linear_targets(model), bias="none")
    peft_model = get_peft_model(model, lora)
    use_lora_dropout(peft_model)  # peft's nn.Dropout cost a quarter of a CPU step (benchmarks/lora_dropout.py)
    return peft_model


def dpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's sigmoid loss per pair, and the implicit rewards beta * log(pi / pi_ref) of chosen and
    rejected (the rewards are detached, as trl logs them)."""
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    losses = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def _sums(logp: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=logp.dtype, device=logp.device).index_add(0, rows, logp)


def step_loss(model, pairs: EncodedPairs, batch: list[int], reference: dict, cfg: TuningConfig,
              pad_id: int) -> tuple[torch.Tensor, dict]:
    """The loss of one batch of pairs and its log row (trl's metric names)."""
    n = len(batch)
    device = pairs.embeds.device
    ref = {name: values[batch].to(device) for name, values in reference.items()}  # cached on the CPU
    ref_c = ref["chosen"]
    if cfg.method == "sft":
        ids, mask, labels, embeds = pair_batch(pairs, batch, pad_id, "c")
        logp, rows = token_logprobs(model, ids, mask, embeds, labels, projected=True)
        loss = -logp.mean()
        chosen = _sums(logp.detach().float(), rows, n)
        return loss, {"logps/chosen": chosen.mean().item(), "rewards/chosen": (cfg.beta * (chosen - ref_c)).mean().item(),
                      "tokens": int(mask.sum())}
    weak = cfg.mdpo_weight > 0
    ids, mask, labels, embeds = pair_batch(pairs, batch, pad_id, "cr", weak_chosen=weak)
    logp, rows = token_logprobs(model, ids, mask, embeds, labels, projected=True)
    seq = _sums(logp.float(), rows, ids.shape[0])
    chosen, rejected = seq[:n], seq[n:2 * n]
    losses, r_c, r_r = dpo_loss(chosen, rejected, ref_c, ref["rejected"], cfg.beta)
    loss = losses.mean()
    row = {"rewards/chosen": r_c.mean().item(), "rewards/rejected": r_r.mean().item(),
           "rewards/accuracies": (r_c > r_r).float().mean().item(), "rewards/margins": (r_c - r_r).mean().item(),
           "logps/chosen": chosen.detach().mean().item(), "logps/rejected": rejected.detach().mean().item(),
           "tokens": int(mask.sum())}
    if cfg.sft_weight:
        nll = -logp[rows < n].float().mean()  # trl's "sft" term: mean NLL over the chosen tokens
        loss = loss + cfg.sft_weight * nll
        row["nll"] = nll.item()
    if weak:  # mDPO's conditional term: the same answer, real image over weakened image
        cond = dpo_loss(chosen, seq[2 * n:], ref_c, ref["weak_chosen"], cfg.beta)[0].mean()
        loss = loss + cfg.mdpo_weight * cond
        row["mdpo"] = cond.item()
    return loss, row


@dataclass
class TuningRun:
    """A finished (or paused) run: the ``peft`` model, its per-step log and where it is saved."""

    model: object
    log: list[dict]
    directory: Path
    finished: bool

    @property
    def adapter_dir(self) -> Path:
        return self.directory / "adapter"


def _checkpoint(peft_model, opt, log: list[dict], epoch: int, path: Path) -> None:
    from peft import get_peft_model_state_dict

    tmp = path.with_suffix(".tmp")
    torch.save({"adapter": get_peft_model_state_dict(peft_model), "optimizer": opt.state_dict(), "log": log,
                "epoch": epoch, "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp)
    tmp.replace(path)  # atomic: a kill mid-write leaves the previous checkpoint whole


def load_tuned(base_model, directory: Path):
    """The base model with a finished run's adapter (a copy: ``base_model`` stays untouched)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(copy.deepcopy(base_model), Path(directory) / "adapter")


def train_tuning(base_model, processor, ds, cfg: TuningConfig, directory: Path, reference_cache: Path | None = None,
                 base_path: str | None = None, stop_after_epoch: int | None = None,
                 progress: bool = True) -> TuningRun:
    """Fine-tune a copy of ``base_model`` on the pairs ``ds`` (trl's columns) as ``cfg`` says,
    saving into ``directory``. A finished run there is loaded, a paused or killed one resumes from
    its last epoch checkpoint. ``stop_after_epoch`` ends this call after that epoch's checkpoint
    (a session with a time budget; the next call goes on). ``base_path`` is written into the
    adapter's config so plain ``peft`` finds the base model."""
    directory = Path(directory)
    if (directory / "log.json").exists():  # written last: the run finished
        return TuningRun(load_tuned(base_model, directory), json.loads((directory / "log.json").read_text()),
                         directory, True)
    ds = select_pairs(ds, max_pairs=cfg.max_pairs, seed=cfg.seed)
    weaken = (cfg.mdpo_noise_place, cfg.mdpo_noise_step) if cfg.mdpo_weight else None
    model = copy.deepcopy(base_model).float()
    model.eval()
    pad = processor.tokenizer.pad_token_id
    pairs = encode_pairs(model, processor, ds, cfg.max_length, weaken, cfg.seed, cfg.bf16, progress)
    plan = [length_grouped_batches(pairs.lengths(), cfg.batch_size, seed=cfg.seed * 1009 + e) for e in range(cfg.epochs)]
    plan = [[[int(i) for i in b] for b in epoch] for epoch in plan]
    reference = load_or_compute_reference(model, pairs, pad, reference_cache, plan[0], cfg.bf16, progress)
    model = attach_lora(model, cfg)
    model.train()
    inner = model.get_base_model()  # LoRA layers live inside it; our forward helpers take the LLaVA
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, fused=True)
    optim_cfg = OptimConfig(cfg.lr, cfg.warmup_ratio, max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16)
    per_epoch = -(-len(pairs) // cfg.batch_size)
    total = per_epoch * cfg.epochs
    directory.mkdir(parents=True, exist_ok=True)
    ckpt = directory / "checkpoint.pt"
    log, start_epoch = [], 0
    if ckpt.exists():
        from peft import set_peft_model_state_dict

        state = torch.load(ckpt, weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log, start_epoch = state["log"], state["epoch"]
    bar = tqdm(total=total, initial=start_epoch * per_epoch, desc=f"{cfg.method} (LoRA)", disable=not progress,
               leave=False)
    for epoch in range(start_epoch, cfg.epochs):
        for batch in plan[epoch]:
            step = len(log)
            start = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, optim_cfg)
            with autocast(cfg.bf16, pairs.embeds.device.type):
                loss, row = step_loss(inner, pairs, batch, reference, cfg, pad)
            where = f"{cfg.method} run {directory.name}: step {step} (epoch {epoch}), pairs {[pairs.pair_ids[i] for i in batch]}"
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at {where}; the last good checkpoint is "
                                         f"{ckpt if ckpt.exists() else 'none (first epoch)'}")
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            if not torch.isfinite(norm):
                raise FloatingPointError(f"gradient norm is {norm.item()} at {where}")
            opt.step()
            opt.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - start
            log.append({"step": step, "epoch": epoch, "loss": loss.item(), "lr": opt.param_groups[0]["lr"], **row,
                        "seconds": seconds, "tokens/s": row["tokens"] / seconds})
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        _checkpoint(model, opt, log, epoch + 1, ckpt)
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch and epoch + 1 < cfg.epochs:
            bar.close()
            return TuningRun(model, log, directory, False)
    bar.close()
    if base_path is not None:
        model.peft_config["default"].base_model_name_or_path = str(base_path)
    model.save_pretrained(directory / "adapter")
    (directory / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    (directory / "log.json").write_text(json.dumps(log))
    ckpt.unlink()
    model.eval()
    return TuningRun(model, log, directory, True)
