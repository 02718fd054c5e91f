"""The shape arithmetic of every layer, worked out from the model itself (``lenet5 summary
--explain``): ``walk.py`` runs one dummy image through the model and fills the formulas
in, ``render.py`` writes the result out."""

from .render import format_explanation
from .walk import Explanation, Step, explain, explain_model

__all__ = ["Explanation", "Step", "explain", "explain_model", "format_explanation"]
