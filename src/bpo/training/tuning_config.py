"""How BPO and its SFT baseline fine-tune the base model (no heavy imports: presets read it)."""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("bpo", "sft")


@dataclass(frozen=True)
class TuningConfig:
    """One LoRA fine-tuning run on the preference pairs.

    ``method="bpo"``: DPO's sigmoid loss on summed response log-probs against the frozen base
    (the adapters disabled). ``method="sft"``: the same LoRA, pairs and schedule, NLL on the chosen
    responses only (the paper's Table 4 baseline). Two options, off by default:

    - ``sft_weight`` > 0 adds NLL on the chosen to DPO (trl 1.x ``loss_type=["sigmoid", "sft"]``
      with ``loss_weights=[1, sft_weight]``);
    - ``mdpo_weight`` > 0 adds mDPO's conditional image term: the chosen answer with the real image
      is preferred over the same answer with the image weakened at ``mdpo_noise_place`` /
      ``mdpo_noise_step``, so the preference cannot be learned while ignoring the image.
    """

    method: str = "bpo"
    lr: float = 5e-5
    beta: float = 0.1
    epochs: int = 2
    batch_size: int = 8  # pairs per step
    max_pairs: int = 0  # 0 = every pair of the set; otherwise the first max_pairs in a seeded shuffle
    lora_r: int = 32  # the released code's LoRA: r 32, alpha 256, dropout 0.05
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    sft_weight: float = 0.0
    mdpo_weight: float = 0.0
    mdpo_noise_place: str = "pixels"
    mdpo_noise_step: int = 999
    max_length: int = 320
    bf16: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"TuningConfig.method must be one of {METHODS}, got {self.method!r}")
        for name in ("lr", "beta", "lora_alpha", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TuningConfig.{name} must be positive, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "lora_r", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TuningConfig.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.max_pairs, bool) or not isinstance(self.max_pairs, int) or self.max_pairs < 0:
            raise ValueError(f"TuningConfig.max_pairs must be an int >= 0 (0 = all), got {self.max_pairs!r}")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"TuningConfig.lora_dropout and warmup_ratio must be in [0, 1), got "
                             f"{self.lora_dropout}, {self.warmup_ratio}")
        if self.sft_weight < 0 or self.mdpo_weight < 0:
            raise ValueError(f"TuningConfig.sft_weight and mdpo_weight must be >= 0, got {self.sft_weight}, "
                             f"{self.mdpo_weight}")
        if self.method == "sft" and (self.sft_weight or self.mdpo_weight):
            raise ValueError("TuningConfig: sft_weight and mdpo_weight are options of method='bpo'")
        from bpo.noise import PLACES, T  # here: presets read this module without torch

        if self.mdpo_noise_place not in PLACES or not 0 <= self.mdpo_noise_step < T:
            raise ValueError(f"TuningConfig: mdpo_noise_place must be one of {PLACES} and mdpo_noise_step in "
                             f"[0, {T}), got {self.mdpo_noise_place!r}, {self.mdpo_noise_step}")

