"""The label sink: a consumer group on the ``labels`` topic that keeps every label (with history)
in SQL, with the scorer's guarantees (it runs on the same :mod:`stream` skeleton)."""
