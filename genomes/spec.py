"""The shape of one convolution layer: what a slot is before any transformation."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class SpecError(ValueError):
    """A layer spec that is malformed or describes an impossible convolution."""


@dataclass(frozen=True)
class LayerSpec:
    """A 2-D convolution, NCHW, square kernel, no bias (a bias is a separate add).

    `padding` defaults to `kernel // 2` ("same" for odd kernels at stride 1).
    """

    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: int
    stride: int = 1
    padding: int | None = None
    groups: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        if self.padding is None:
            object.__setattr__(self, "padding", self.kernel // 2)
        for name in ("in_channels", "out_channels", "height", "width", "kernel", "stride",
                     "groups", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise SpecError(f"padding must be a non-negative integer, got {self.padding!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise SpecError(
                f"groups={self.groups} must divide in_channels={self.in_channels} "
                f"and out_channels={self.out_channels}"
            )
        if self.out_height < 1 or self.out_width < 1:
            raise SpecError(
                f"kernel {self.kernel} with padding {self.padding} does not fit a "
                f"{self.height}x{self.width} input"
            )

    @property
    def out_height(self) -> int:
        return conv_out_size(self.height, self.kernel, self.stride, self.padding)

    @property
    def out_width(self) -> int:
        return conv_out_size(self.width, self.kernel, self.stride, self.padding)

    @property
    def flops(self) -> int:
        """Multiply-adds counted as two floating-point operations."""
        return (2 * self.batch * self.out_channels * self.out_height * self.out_width
                * (self.in_channels // self.groups) * self.kernel * self.kernel)

    @property
    def params(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel ** 2

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> LayerSpec:
        if not isinstance(data, dict):
            raise SpecError(f"a layer spec must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise SpecError(f"unknown layer spec field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise SpecError(f"layer spec: {exc}") from None

    def short(self) -> str:
        text = (f"{self.in_channels}->{self.out_channels} {self.kernel}x{self.kernel}"
                f"/s{self.stride} on {self.height}x{self.width}")
        if self.groups > 1:
            text += f" g{self.groups}"
        if self.batch > 1:
            text += f" n{self.batch}"
        return text


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def parse_layer_option(text: str) -> LayerSpec:
    """Parse the CLI form `CI,CO,H,W,K,STRIDE[,GROUPS[,BATCH]]` (H,W may be equal sizes)."""
    parts = [p.strip() for p in text.split(",")]
    if not 6 <= len(parts) <= 8:
        raise SpecError(
            f"--layer {text!r}: expected CI,CO,H,W,K,STRIDE[,GROUPS[,BATCH]] (6 to 8 integers)"
        )
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise SpecError(f"--layer {text!r}: every field must be an integer") from None
    ci, co, h, w, k, s, *rest = values
    groups = rest[0] if rest else 1
    batch = rest[1] if len(rest) > 1 else 1
    try:
        return LayerSpec(ci, co, h, w, k, s, groups=groups, batch=batch)
    except SpecError as exc:
        raise SpecError(f"--layer {text!r}: {exc}") from None
