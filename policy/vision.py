"""SAIL-ViT: the AIMv2-style vision tower of SAIL-VL2, with module names that give the public
checkpoint keys (``vision_model.preprocessor.*``, ``vision_model.trunk.blocks.{i}.*``,
``vision_model.trunk.post_trunk_norm``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from transformers import Aimv2VisionConfig

from policy.config import vision_blocks_for


class RMSNorm(nn.Module):
    """RMS normalisation with a weight and no bias, computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class Patchifier(nn.Module):
    """Conv2d patch embedding (kernel = stride = patch size) followed by RMSNorm."""

    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        patch = _square(config.patch_size)
        self.proj = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=patch, stride=patch, bias=True
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.proj(pixel_values).flatten(2).transpose(1, 2)  # (n, patches, C)
        return self.norm(x)


class Preprocessor(nn.Module):
    """Patchifier plus a learned absolute position embedding of shape (1, patches, C)."""

    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        num_patches = (_square(config.image_size) // _square(config.patch_size)) ** 2
        self.patchifier = Patchifier(config)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        tokens = self.patchifier(pixel_values)
        if tokens.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(
                f"pixel_values give {tokens.shape[1]} patches per tile but the position "
                f"embedding has {self.pos_embed.shape[1]}: tiles must be "
                "force_image_size x force_image_size"
            )
        return tokens + self.pos_embed


class Attention(nn.Module):
    """Non-causal multi-head self-attention with one fused qkv projection."""

    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        dim = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = dim // self.num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=config.qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (
            t.view(n, length, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v)
        )
        # SDPA's default scale is head_dim**-0.5, the scale of the public tower.
        out = F.scaled_dot_product_attention(q, k, v, is_causal=False)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class SwiGLUFFN(nn.Module):
    """fc2(silu(fc1(x)) * fc3(x))."""

    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        dim, hidden, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.fc2 = nn.Linear(hidden, dim, bias=bias)
        self.fc3 = nn.Linear(dim, hidden, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)) * self.fc3(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm_1(x)), then x + mlp(norm_2(x))."""

    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        self.attn = Attention(config)
        self.norm_1 = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = SwiGLUFFN(config)
        self.norm_2 = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm_1(x))
        return x + self.mlp(self.norm_2(x))


class Trunk(nn.Module):
    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.post_trunk_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class SAILViT(nn.Module):
    """The vision tower. ``forward(pixel_values, select_layer)`` returns (tiles, patches, C)."""

    def __init__(self, config: Aimv2VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.preprocessor = Preprocessor(config)
        self.trunk = Trunk(config)
        self.gradient_checkpointing = False

    def forward(self, pixel_values: torch.Tensor, select_layer: int = -1) -> torch.Tensor:
        """Features of ``hidden_states[select_layer]`` where hidden_states = [block 1 output,
        ..., block L output] (AIMv2's indexing); ``-1`` applies post_trunk_norm to the last
        block's output. Blocks after the selected one are not run."""
        layers = len(self.trunk.blocks)
        used = vision_blocks_for(select_layer, layers)
        if not -layers <= select_layer < layers:
            raise ValueError(f"select_layer={select_layer} is out of range for {layers} blocks")
        x = self.preprocessor(pixel_values)
        for block in self.trunk.blocks[:used]:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        if select_layer == -1:
            x = self.trunk.post_trunk_norm(x)
        return x


def _square(value: int | list[int] | tuple[int, ...]) -> int:
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)
