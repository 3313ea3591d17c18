"""Taking a result away: export an individual of a run, load an exported model.

    export_individual("runs/tiny-1", None, "winner/")   # the best legal individual
    model = load_model("winner/")                        # = evo.load_model("winner/")
"""

from evo.export.exporter import export_individual
from evo.export.model_files import load_model, save_model

__all__ = ["export_individual", "load_model", "save_model"]
