"""The terminal report: the verdict at a glance, then the figures behind it."""

from __future__ import annotations

from typing import IO

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..probe.profile import MODELS, Profile
from ..probe.taxonomy import BREAKDOWN_CATEGORIES, DESCRIPTIONS

COLORS = {
    "cpu": "bright_red",
    "network": "bright_blue",
    "disk": "yellow",
    "sleep": "bright_cyan",
    "subprocess": "magenta",
    "lock": "bright_magenta",
    "gil": "red",
    "other": "white",
}
VERDICT_COLORS = {"cpu-bound": "bright_red", "io-bound": "bright_blue", "mixed": "bright_yellow"}
BAR_WIDTH = 30
SITES_PER_CATEGORY = 3
MAX_THREAD_ROWS = 12
WIDE = 110
"""Terminal width from which the breakdown explains each category."""


def render(profile: Profile, stream: IO[str] | None = None, width: int | None = None) -> None:
    """Print the report to ``stream`` (stdout by default)."""
    console = Console(file=stream, width=width, highlight=False, soft_wrap=False)
    console.print(build(profile, wide=console.width >= WIDE))


def build(profile: Profile, wide: bool = True) -> Group:
    """The report as one renderable; ``wide`` adds what each category means."""
    parts: list[object] = [_header(profile), _verdict(profile), _breakdown(profile, wide)]
    if len(profile.threads) > 1:
        parts.append(_threads(profile))
    if len(profile.processes) > 1:
        parts.append(_processes(profile))
    parts.append(_sites(profile))
    parts.append(_speedups(profile))
    if profile.notes:
        parts.append(Text("\n".join(f"note: {n}" for n in profile.notes), style="dim"))
    return Group(*parts)  # type: ignore[arg-type]


def _header(p: Profile) -> Text:
    text = Text()
    text.append("boundwise profile ", style="bold")
    text.append(p.target or "<block>", style="bold cyan")
    text.append(
        f"\nwall {p.wall_s:.2f}s · cpu {p.cpu_s:.2f}s · {p.cores} cores · "
        f"{p.samples} samples every {1000 * p.interval_s:g} ms",
        style="dim",
    )
    if p.exit_code:
        text.append(f" · exit status {p.exit_code}", style="bold red")
    return text


def _verdict(p: Profile) -> Panel:
    rec = p.recommendation
    verdict = p.verdict or "?"
    title = Text()
    title.append(verdict.upper(), style=f"bold {VERDICT_COLORS.get(verdict, 'white')}")
    if rec is not None:
        title.append("  →  recommended: ", style="bold")
        title.append(rec.model, style="bold green")
        title.append(
            f"  ({rec.predicted_speedup.get(rec.model, 1.0):.1f}x predicted)", style="green"
        )
    body = Text(rec.reason if rec else "")
    return Panel(Group(title, body), expand=True)


def _bar(fraction: float, color: str, width: int = BAR_WIDTH) -> Text:
    full = round(fraction * width)
    bar = Text("█" * full, style=color)
    bar.append("·" * (width - full), style="grey23")
    return bar


def _breakdown(p: Profile, wide: bool) -> Table:
    table = Table(
        title="Where the time goes (thread time, idle left out)",
        title_justify="left",
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for name, justify in (
        ("category", "left"),
        ("", "left"),
        ("share", "right"),
        ("seconds", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    if wide:
        table.add_column("meaning", style="dim")
    b = p.breakdown
    for cat in BREAKDOWN_CATEGORIES:
        frac = b.get(cat.value, 0.0)
        if frac < 0.0005 and cat.value != "cpu":
            continue
        row: list[Text | str] = [
            Text(cat.value, style=COLORS[cat.value]),
            _bar(frac, COLORS[cat.value]),
            f"{100 * frac:.1f}%",
            f"{p.seconds.get(cat.value, 0.0):.2f}",
        ]
        table.add_row(*row, *([DESCRIPTIONS[cat]] if wide else []))
    idle = p.seconds.get("idle", 0.0)
    if idle >= 0.005:
        row = [Text("idle", style="dim"), Text(""), Text("—", style="dim"), f"{idle:.2f}"]
        table.add_row(*row, *(["parked, not counted"] if wide else []))
    return table


def _mini(breakdown: dict[str, float]) -> Text:
    text = Text()
    for cat in BREAKDOWN_CATEGORIES:
        frac = breakdown.get(cat.value, 0.0)
        if frac >= 0.02:
            text.append(f"{cat.value} {100 * frac:.0f}%  ", style=COLORS[cat.value])
    return text


def _threads(p: Profile) -> Table:
    table = Table(title="Threads", title_justify="left", box=None, header_style="bold")
    table.add_column("thread", no_wrap=True, max_width=32, overflow="ellipsis")
    for col in ("pid", "active s", "idle s"):
        table.add_column(col, justify="right")
    table.add_column("breakdown")
    rows = [t for t in p.threads if t.active_s > 0.001] or p.threads
    for t in rows[:MAX_THREAD_ROWS]:
        table.add_row(
            t.name,
            str(t.pid),
            f"{t.active_s:.2f}",
            f"{t.seconds.get('idle', 0.0):.2f}",
            _mini(t.breakdown),
        )
    if len(rows) > MAX_THREAD_ROWS:
        table.add_row(f"… {len(rows) - MAX_THREAD_ROWS} more", "", "", "", "")
    return table


def _processes(p: Profile) -> Table:
    table = Table(title="Processes", title_justify="left", box=None, header_style="bold")
    for col in ("pid", "role", "cpu s", "breakdown"):
        table.add_column(col)
    for proc in p.processes:
        table.add_row(str(proc.pid), proc.role, f"{proc.cpu_s:.2f}", _mini(proc.breakdown))
    return table


def _sites(p: Profile) -> Table:
    table = Table(
        title="Top call sites in your code", title_justify="left", box=None, header_style="bold"
    )
    for col in ("category", "share", "location", "function"):
        table.add_column(col, justify="right" if col == "share" else "left")
    b = p.breakdown
    shown = 0
    for cat in sorted(BREAKDOWN_CATEGORIES, key=lambda c: -b.get(c.value, 0.0)):
        if b.get(cat.value, 0.0) < 0.02:
            continue
        for site in p.sites_for(cat.value)[:SITES_PER_CATEGORY]:
            table.add_row(
                Text(cat.value, style=COLORS[cat.value]),
                f"{100 * site.fraction:.1f}%",
                site.location,
                site.function,
            )
            shown += 1
    if not shown:
        table.add_row("", "", Text("no time was spent in your own code", style="dim"), "")
    return table


def _speedups(p: Profile) -> Table:
    table = Table(
        title="Predicted speedup over sync", title_justify="left", box=None, header_style="bold"
    )
    rec = p.recommendation
    for m in MODELS:
        table.add_column(m, justify="right")
    if rec is not None:
        best = rec.model
        table.add_row(
            *[
                Text(
                    f"{rec.predicted_speedup.get(m, 1.0):.1f}x",
                    style="bold green" if m == best else "",
                )
                for m in MODELS
            ]
        )
    return table
