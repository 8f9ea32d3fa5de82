"""A training curve: one metric against the step, drawn with plotext.

The points are kept on the widget (`steps`, `values`) and the plot is rebuilt from them at render time, so
a refresh with unchanged points costs nothing and the drawing always fits the widget's current size.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import RenderResult
from textual_plotext import PlotextPlot


class CurvePlot(PlotextPlot):
    def __init__(self, title: str, *, color: str = "cyan", id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.color = color
        self.steps: list[float] = []
        self.values: list[float] = []

    def show(self, steps: Sequence[float], values: Sequence[float]) -> None:
        steps, values = list(steps), list(values)
        if steps == self.steps and values == self.values:
            return
        self.steps, self.values = steps, values
        self.refresh()

    def clear(self) -> None:
        self.show([], [])

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        latest = f"  {self.values[-1]:.4g} at step {self.steps[-1]:g}" if self.values else "  (no points yet)"
        plt.title(self.title + latest)
        if self.steps:
            plt.plot(self.steps, self.values, marker="braille", color=self.color)
        return super().render()
