"""Which requests are due in the next batch: the same turn and sample logic as online generation.

A conversation's turn k+1 depends on the answer to turn k, so it is due only once turn k is in the
ledger; best-of-N samples are drawn in the same rounds as ``distillset.teacher.generate`` (k minus
the samples already correct, for a verifiable prompt; all N otherwise), so early stop decides
between batches exactly as it does between online rounds. A request already in a line of an
unfinished batch is never due again (nothing is submitted twice); one whose batch lines failed is
due again while it has attempts left (``max_attempts``), and is otherwise given up: left to an
online call (``TEACHER_BATCH_FALLBACK=online``) or failed in its row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from distillset import ids
from distillset.settings import TeacherSettings
from distillset.teacher.batch.lines import BatchLine
from distillset.teacher.batch.store import BatchStore, KeyHistory
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation
from distillset.verify.engine import verify

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """The requests due now, and the conversations still waiting on a batch."""

    due: list[BatchLine] = field(default_factory=list)
    waiting: int = 0
    """Conversations with a request in an unfinished batch."""
    given_up: dict[str, str] = field(default_factory=dict)
    """Request key -> why the batches gave up on it (no attempts left)."""


def _passed(answer: str, conversation: Conversation) -> bool:
    try:
        return verify(answer, conversation.task).passed
    except Exception:  # one broken check must not stop a paid run; the row records it later
        log.exception("verifier %s failed while planning batches", conversation.task.kind)
        return False


class Planner:
    """Plans rounds for one teacher, endpoint origin and ledger."""

    def __init__(self, settings: TeacherSettings, ledger: Ledger, store: BatchStore, origin: str) -> None:
        self.settings = settings
        self.ledger = ledger
        self.store = store
        self.origin = origin
        self.samples = settings.samples_per_prompt
        self.max_answers = settings.max_answers_per_prompt
        self.early_stop = settings.pass_rate_min is None and settings.pass_rate_max is None
        self.sampling = [settings.sample_params(i) for i in range(self.samples)]
        # The first batch attempt, plus one resubmission unless failed lines go online.
        self.max_attempts = 1 if settings.batch_fallback == "online" else 2

    def plan(self, conversations: Iterable[Conversation]) -> Plan:
        plan = Plan()
        seen: set[str] = set()
        for conversation in conversations:
            if not isinstance(conversation, Conversation) or not conversation.turns:
                continue
            if any(not isinstance(t, str) or not t.strip() for t in conversation.turns):
                continue
            due = self._due(conversation, plan)
            if due is None:
                plan.waiting += 1
                continue
            for line in due:
                if line.key not in seen:
                    seen.add(line.key)
                    plan.due.append(line)
        return plan

    def _due(self, conversation: Conversation, plan: Plan) -> list[BatchLine] | None:
        """The requests due for ``conversation`` ([] when it needs none), or None while it waits."""
        task = conversation.task
        system = conversation.system if conversation.system is not None else self.settings.sampling.system_prompt
        passed = 0
        next_index = 0
        while next_index < self.samples:
            wanted = self.samples - next_index if task is None or not self.early_stop else self.max_answers - passed
            round_ = range(next_index, next_index + min(wanted, self.samples - next_index))
            due: list[BatchLine] = []
            waiting = False
            finals: list[tuple[str, str | None]] = []
            for sample in round_:
                state, value = self._walk(conversation, system, sample, plan)
                if state == "due":
                    due.append(value)
                elif state == "waiting":
                    waiting = True
                elif state == "answered":
                    finals.append(value)
                # "given_up": the sample ends without an answer (its row says why)
            if waiting:
                return None if not due else due
            if due:
                return due
            if task is not None:
                passed += sum(1 for content, reason in finals if reason != "length" and _passed(content, conversation))
            next_index = round_.stop
            if task is not None and self.early_stop and passed >= self.max_answers:
                break
        return []

    def _walk(self, conversation: Conversation, system: str | None, sample: int, plan: Plan):
        """Follow one sample's turns through the ledger: ("answered", (content, finish_reason)),
        ("due", line), ("waiting", None) or ("given_up", None)."""
        sampling = self.sampling[sample]
        messages: list[dict] = [{"role": "system", "content": system}] if system else []
        last = None
        for turn in conversation.turns:
            messages = messages + [{"role": "user", "content": turn}]
            key = ids.request_hash(self.settings.model, messages, sampling)
            answer = self.ledger.lookup([key], origin=self.origin).get(key)
            if answer is None:
                history = self.store.history([key], self.origin).get(key, KeyHistory())
                if history.in_flight:
                    return "waiting", None
                if history.failed_attempts >= self.max_attempts:
                    plan.given_up[key] = history.last_error or "failed in the batch"
                    return "given_up", None
                return "due", BatchLine(key, self.settings.model, messages, sampling)
            messages = messages + [{"role": "assistant", "content": answer.content}]
            last = (answer.content, answer.finish_reason)
        return "answered", last
