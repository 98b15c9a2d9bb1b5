"""advise: a verdict, an execution model and a predicted speedup from a Profile."""

from .recommend import advise, choose_model, verdict_of
from .speedup import Work, model_times, predicted_speedup

__all__ = ["Work", "advise", "choose_model", "model_times", "predicted_speedup", "verdict_of"]
