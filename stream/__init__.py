"""The consumer skeleton shared by every part that turns a Kafka topic into SQL effects (the
scorer, the label sink): offsets in the database, fenced commits, retries on outages, permanent
faults isolated to the message that causes them, dead letters, graceful stop; ``until_idle``
stops only once the topic is drained (:mod:`stream.drained`).

A part supplies a :class:`stream.contract.Pipeline` — a pure ``process(records)`` returning the
batch's effects — and :class:`stream.consumer.SqlConsumer` runs it.
"""

from stream.consumer import SqlConsumer
from stream.contract import BatchEffects, ConsumerConfig, ConsumerSummary, Pipeline
from stream.deadletters import DeadLetter, Outgoing
from stream.drained import Left, NotDrained, require_drained
from stream.heap import freeze_start_up
from stream.offsets import BatchSuperseded

__all__ = ["BatchEffects", "BatchSuperseded", "ConsumerConfig", "ConsumerSummary", "DeadLetter",
           "Left", "NotDrained", "Outgoing", "Pipeline", "SqlConsumer", "freeze_start_up",
           "require_drained"]
