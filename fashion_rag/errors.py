"""Errors a person can act on. Each message says what went wrong and what to do about it;
callers (CLI, UI) show the message as is instead of a stack trace."""


class FashionRagError(Exception):
    """Base class: the message is meant for the user."""


class InputError(FashionRagError):
    """The query itself is unusable: a broken image, nothing given, an unknown mode."""


class ModelLoadError(FashionRagError):
    """No encoder could be loaded from the id or folder given."""


class IndexMissingError(FashionRagError):
    """There is no index where one was expected."""


class IndexDamagedError(IndexMissingError):
    """The index folder is there but cannot be read (a truncated or hand-edited file): rebuild it."""

    def __init__(self, folder, reason: str):
        self.reason = reason
        super().__init__(f"The index in {folder} is damaged ({reason}); rebuild it with `python scripts/build_index.py "
                         f"--out {folder}` (or run `python app.py`, which rebuilds it).")


class StaleIndexError(FashionRagError):
    """The index was built from another catalog or model than the one in use."""


class StoreUnavailableError(FashionRagError):
    """The vector store (a Milvus server) cannot be reached."""
