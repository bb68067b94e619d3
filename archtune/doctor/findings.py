"""What the doctor reports: findings with a stable code, a severity, evidence and advice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

SEVERITIES = ("info", "warning", "error")  # error: the network cannot train as configured

# Every code a detector can emit; stable, so that scripts and the search can act on them.
CODES = (
    "vanishing_gradients", "exploding_gradients", "dead_units", "saturation", "update_ratio",
    "loss_oscillation", "symmetry", "overfitting", "underfitting", "val_below_train",
    "unscaled_features", "constant_features", "class_imbalance", "train_val_leak", "transfer_below_scratch",
)


@dataclass
class Finding:
    """One problem: ``code`` (see `CODES`), ``severity``, a one-line ``message``, the numbers
    behind it (``evidence``) and what to change (``advice``, most effective first)."""

    code: str
    severity: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.code in CODES, self.code
        assert self.severity in SEVERITIES, self.severity

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.code}: {self.message}"]
        lines += [f"    - {tip}" for tip in self.advice]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "evidence": self.evidence, "advice": list(self.advice)}


@dataclass
class Diagnosis:
    """The findings of `archtune.diagnose`, worst first; empty when nothing is wrong.

    ``"dead_units" in diagnosis`` asks whether a code was found; ``diagnosis["dead_units"]``
    gives that finding. ``checked`` lists the detectors that had the evidence they need.
    """

    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self.findings.sort(key=lambda f: -SEVERITIES.index(f.severity))

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __contains__(self, code: object) -> bool:
        return any(f.code == code for f in self.findings)

    def __getitem__(self, code: str) -> Finding:
        for f in self.findings:
            if f.code == code:
                return f
        raise KeyError(f"no {code!r} finding; found: {', '.join(self.codes) or 'nothing'}")

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    @property
    def healthy(self) -> bool:
        """No warning or error (info findings are explanations, not problems)."""
        return all(f.severity == "info" for f in self.findings)

    def summary(self) -> dict[str, Any]:
        """Compact and JSON-able: stored in each search trial's user attributes."""
        return {"codes": self.codes, "worst": self.findings[0].severity if self.findings else None}

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "checked": list(self.checked),
                "findings": [f.to_dict() for f in self.findings]}

    def __str__(self) -> str:
        head = f"diagnosis of {self.source}: " if self.source else "diagnosis: "
        if not self.findings:
            return head + f"no problems found ({len(self.checked)} checks: {', '.join(self.checked)})"
        counts = ", ".join(f"{sum(f.severity == s for f in self.findings)} {s}" for s in reversed(SEVERITIES)
                           if any(f.severity == s for f in self.findings))
        return "\n".join([head + counts, *(str(f) for f in self.findings)])
