"""Run folders: configuration, the SQLite run store, and the one-process lock."""

from evo.store.lock import RunLock, holder_pid
from evo.store.records import Checkpoint, Evaluation, Individual
from evo.store.run_store import RunStore

__all__ = ["Checkpoint", "Evaluation", "Individual", "RunLock", "RunStore", "holder_pid"]
