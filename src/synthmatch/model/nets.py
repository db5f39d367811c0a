"""The parameter-prediction network: a convolutional encoder over log-mel plus output heads.

Pure `nn.Module`s; everything about parameters (names, ranges) stays in the checkpoint metadata.

Encoder: the log-mel spectrogram (B, n_mels, T) is treated as an n_mels-channel sequence over time and
encoded by residual 1-D convolution blocks with stride (frequency as channels, in the spirit of
TC-ResNet): cheap enough to train on two CPU cores, and it keeps the temporal envelope, which pooled 2-D
features tend to lose. The MIDI note the example was played at is an extra input, so the model can tell
an oscillator transpose from the played pitch. Heads:

- continuous: one sigmoid output per continuous parameter of the tier (normalized [0, 1]);
- categorical: one softmax group per categorical parameter, computed as one linear layer split by option
  counts;
- modulation (tier 3): the routing as a dense source x destination grid with low-rank bilinear scores
  (existence logit, amount, power, bipolar and stereo logits per pair), so the set of connections is
  predicted without a fixed ordering and "absent" is simply a low existence score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ModelConfig", "SynthMatchNet", "MODEL_SIZES", "split_categorical"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a SynthMatchNet. `n_*` fields come from the dataset schema."""

    n_mels: int
    n_frames: int
    n_continuous: int
    categorical_sizes: tuple[int, ...]
    n_mod_sources: int = 0
    n_mod_destinations: int = 0
    channels: tuple[int, ...] = (64, 96, 128, 160)
    blocks_per_stage: int = 2
    embedding: int = 512
    mod_rank: int = 32
    dropout: float = 0.1
    size: str = "small"

    def __post_init__(self) -> None:
        if self.n_mels < 8 or self.n_frames < 4:
            raise ValueError(f"input too small: {self.n_mels} mels x {self.n_frames} frames")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["categorical_sizes"] = list(self.categorical_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        d["categorical_sizes"] = tuple(d["categorical_sizes"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# Named sizes: (channels per stage, blocks per stage, embedding, modulation rank)
MODEL_SIZES: dict[str, dict] = {
    "tiny": {"channels": (32, 48), "blocks_per_stage": 1, "embedding": 64, "mod_rank": 8},
    "small": {"channels": (64, 96, 128, 160), "blocks_per_stage": 2, "embedding": 512, "mod_rank": 32},
    "base": {"channels": (128, 192, 256, 320), "blocks_per_stage": 2, "embedding": 512, "mod_rank": 32},
    "large": {"channels": (192, 256, 384, 512), "blocks_per_stage": 3, "embedding": 768, "mod_rank": 48},
}


class _ResBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 5, stride=stride, padding=2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.skip = (
            nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.skip(x))


class SynthMatchNet(nn.Module):
    """log-mel (B, n_mels, T) + MIDI note (B,) -> parameter predictions."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        layers: list[nn.Module] = [
            nn.Conv1d(c.n_mels, c.channels[0], 3, padding=1, bias=False),
            nn.BatchNorm1d(c.channels[0]),
            nn.GELU(),
        ]
        c_prev = c.channels[0]
        for ch in c.channels:
            for b in range(c.blocks_per_stage):
                layers.append(_ResBlock1d(c_prev, ch, stride=2 if b == 0 else 1))
                c_prev = ch
        self.encoder = nn.Sequential(*layers)
        pooled = 3 * c_prev  # mean + max over time + the last frames' mean (release)
        self.note_embed = nn.Linear(1, 32)
        self.trunk = nn.Sequential(
            nn.Linear(pooled + 32, c.embedding),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.embedding, c.embedding),
            nn.GELU(),
            nn.Dropout(c.dropout),
        )
        self.continuous_head = nn.Linear(c.embedding, c.n_continuous)
        self.categorical_head = nn.Linear(c.embedding, max(1, sum(c.categorical_sizes)))
        self.has_modulation = c.n_mod_sources > 0 and c.n_mod_destinations > 0
        if self.has_modulation:
            r = c.mod_rank
            # 5 bilinear maps: existence, amount, power, bipolar, stereo
            self.mod_src = nn.Linear(c.embedding, 5 * c.n_mod_sources * r)
            self.mod_dst = nn.Linear(c.embedding, 5 * c.n_mod_destinations * r)
            self.mod_bias = nn.Parameter(torch.zeros(5))
            with torch.no_grad():
                self.mod_bias[0] = -4.0  # connections are rare: start near "absent"

    def embed(self, mel: torch.Tensor, midi_note: torch.Tensor) -> torch.Tensor:
        h = self.encoder(mel)  # (B, C, T')
        tail = max(1, h.shape[-1] // 4)
        pooled = torch.cat([h.mean(-1), h.amax(-1), h[..., -tail:].mean(-1)], dim=1)  # (B, 3C)
        note = self.note_embed(((midi_note.float() - 60.0) / 24.0).unsqueeze(-1))  # (B, 32)
        return self.trunk(torch.cat([pooled, note], dim=1))  # (B, E)

    def forward(self, mel: torch.Tensor, midi_note: torch.Tensor) -> dict[str, torch.Tensor]:
        """
        Args:
            mel: (B, n_mels, T) normalized log-mel.
            midi_note: (B,) MIDI note numbers.
        Returns:
            continuous (B, Nc) in [0, 1]; categorical_logits (B, sum of option counts); with modulation,
            mod_logits, mod_amount, mod_power (B, S, D; amount/power in [0, 1]) and mod_bipolar_logits,
            mod_stereo_logits (B, S, D).
        """
        e = self.embed(mel, midi_note)
        out = {
            "continuous": torch.sigmoid(self.continuous_head(e)),
            "categorical_logits": self.categorical_head(e),
        }
        if self.has_modulation:
            b, r = e.shape[0], self.config.mod_rank
            s = self.mod_src(e).view(b, 5, self.config.n_mod_sources, r)
            d = self.mod_dst(e).view(b, 5, self.config.n_mod_destinations, r)
            grid = torch.einsum("bksr,bkdr->bksd", s, d) / r**0.5 + self.mod_bias.view(1, 5, 1, 1)
            out["mod_logits"] = grid[:, 0]
            out["mod_amount"] = torch.sigmoid(grid[:, 1])
            out["mod_power"] = torch.sigmoid(grid[:, 2])
            out["mod_bipolar_logits"] = grid[:, 3]
            out["mod_stereo_logits"] = grid[:, 4]
        return out

    def early_parameters(self) -> list[nn.Parameter]:
        """Parameters of the first half of the encoder (what --freeze freezes)."""
        layers = list(self.encoder.children())
        return [p for layer in layers[: max(1, len(layers) // 2)] for p in layer.parameters()]


def split_categorical(logits: torch.Tensor, sizes: tuple[int, ...]) -> list[torch.Tensor]:
    """(B, sum(sizes)) -> one (B, size) tensor per categorical parameter."""
    return list(torch.split(logits, list(sizes), dim=-1)) if sizes else []
