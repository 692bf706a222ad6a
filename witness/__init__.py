"""A C2SP ``tlog-witness`` for one log, run by an audit office on its own machine (``nocert witness serve``),
and the client the platform submits its checkpoints with.

* `witness.identity`: the witness's own Ed25519 key and name in its state directory.
* `witness.state`: its SQLite record of the latest cosigned checkpoint per log origin.
* `witness.core`: the ``add-checkpoint`` rules, independent of HTTP.
* `witness.app`: the HTTP interface (Starlette), `witness.cli`: ``nocert witness serve|vkey``.
* `witness.client`: submitting a checkpoint to witnesses, for the platform.
"""
