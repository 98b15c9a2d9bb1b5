"""The stall report: one event loop stall, as data, as text and as a rich renderable."""

from __future__ import annotations

import io
import linecache
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

from boundwise.probe.frames import Site, display_path
from boundwise.probe.taxonomy import Category

SCHEMA = "boundwise.watch/1"


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the blocked loop thread's stack."""

    file: str
    line: int
    function: str

    @classmethod
    def of(cls, site: Site) -> Frame:
        return cls(site.file, site.line, site.function)

    def __str__(self) -> str:
        return f"{display_path(self.file)}:{self.line} in {self.function}"


@dataclass(slots=True)
class Stall:
    """The event loop did not get back to its own scheduling for ``duration_s``.

    ``file``/``line``/``function`` name the program's own line that blocked (the
    most-sampled one); ``stack`` is the full stack at that line, innermost first.
    """

    duration_s: float
    category: Category
    file: str = ""
    line: int = 0
    function: str = ""
    call: str = ""
    """The call in progress at that line (``time.sleep``, ``requests.get``...)."""
    advice: str = ""
    cpu_fraction: float | None = None
    """Share of the sampled stall the loop thread spent on a CPU (None: not measured)."""
    samples: int = 0
    breakdown: dict[str, float] = field(default_factory=dict)
    """Share of samples per category."""
    detail: str = ""
    """What the kernel showed it blocked in (``clock_nanosleep``, ``recvfrom on socket``)."""
    stack: list[Frame] = field(default_factory=list)
    started_at: float = 0.0
    """Unix time the stall began (approximately)."""
    context: str = ""
    """What the loop was running, when known (an endpoint, a test)."""

    @property
    def where(self) -> str:
        return f"{display_path(self.file)}:{self.line}" if self.file else "unknown location"

    @property
    def code(self) -> str:
        """The source text of the blocking line."""
        return linecache.getline(self.file, self.line).strip() if self.file else ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["category"] = str(self.category)
        out["file"] = display_path(self.file) if self.file else ""
        out["code"] = self.code
        out["duration_s"] = round(self.duration_s, 6)
        if self.cpu_fraction is not None:
            out["cpu_fraction"] = round(self.cpu_fraction, 3)
        out["stack"] = [
            {"file": display_path(f.file), "line": f.line, "function": f.function}
            for f in self.stack
        ]
        return out

    def headline(self) -> str:
        """One line: how long, what kind, where, in which call."""
        call = f" in {self.call}" if self.call else ""
        ctx = f" [{self.context}]" if self.context else ""
        return (
            f"event loop blocked {self.duration_s * 1000:.0f} ms ({self.category}) "
            f"at {self.where}{call}{ctx}"
        )

    def __str__(self) -> str:
        return render_text(self)

    def __rich__(self) -> RenderableType:
        return render(self)


_CATEGORY_STYLE = {
    Category.CPU: "bold magenta",
    Category.NETWORK: "bold cyan",
    Category.DISK: "bold yellow",
    Category.SLEEP: "bold blue",
    Category.SUBPROCESS: "bold green",
    Category.LOCK: "bold red",
}


def render(stall: Stall, max_frames: int = 12) -> RenderableType:
    """A traceback-like rendering: duration and kind, the user's line with its
    source, the advice, then the stack (outermost first, like a traceback)."""
    head = Text()
    head.append("Event loop blocked ", style="bold")
    head.append(f"{stall.duration_s * 1000:.0f} ms", style="bold red")
    head.append(" — ")
    head.append(str(stall.category), style=_CATEGORY_STYLE.get(stall.category, "bold"))
    if stall.cpu_fraction is not None:
        head.append(f" (loop thread on CPU {stall.cpu_fraction:.0%} of the time)", style="dim")
    if stall.context:
        head.append(f"  [{stall.context}]", style="dim")
    parts: list[RenderableType] = [head]
    where = Text("  at ")
    where.append(stall.where, style="bold")
    if stall.function:
        where.append(f" in {stall.function}")
    if stall.call:
        where.append(" calling ")
        where.append(stall.call, style="bold")
    parts.append(where)
    if stall.code:
        parts.append(Text(f"    {stall.code}", style="yellow"))
    if stall.advice:
        parts.append(Text.assemble("  fix: ", (stall.advice, "green")))
    if stall.stack:
        parts.append(Text("  stack (most recent call last):", style="dim"))
        frames = stall.stack[:max_frames][::-1]
        if len(stall.stack) > max_frames:
            parts.append(Text(f"    ... {len(stall.stack) - max_frames} more", style="dim"))
        for f in frames:
            here = (f.file, f.line, f.function) == (stall.file, stall.line, stall.function)
            mark = "→ " if here else "  "
            parts.append(Text(f"  {mark}{f}", style="bold" if mark.strip() else "dim"))
    return Group(*parts)


def render_text(stall: Stall, max_frames: int = 12) -> str:
    """The same rendering as plain text (for logs and test failure messages)."""
    console = Console(width=120, no_color=True, color_system=None, record=True, file=io.StringIO())
    console.print(render(stall, max_frames), highlight=False, soft_wrap=True)
    return console.export_text().rstrip()


def to_json_doc(stalls: list[Stall], **extra: Any) -> dict[str, Any]:
    """The ``boundwise.watch/1`` JSON document."""
    return {"schema": SCHEMA, **extra, "stalls": [s.to_dict() for s in stalls]}
