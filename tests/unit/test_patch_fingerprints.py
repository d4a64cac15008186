"""Each Faust/aiokafka method a patch replaces is fingerprinted: an upgrade that changes one fails
here, so the patch is read again against the new upstream before it is trusted."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from types import ModuleType
from typing import Any

import pytest

from streams.kafka.patches import app, consumer, recovery

MODULES = (consumer, recovery, app)


def resolve(dotted: str) -> Any:
    """``package.module.Class.attr`` -> the attribute as the class defines it."""
    module_name, class_name, attr = dotted.rsplit(".", 2)
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.__dict__[attr]


def digest(obj: Any) -> str:
    fn = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]


@pytest.mark.parametrize("dotted,expected", [(d, e) for m in MODULES for d, e in m.REPLACES.items()])
def test_the_upstream_method_a_patch_replaces_is_the_one_it_was_written_against(dotted: str, expected: str) -> None:
    assert digest(resolve(dotted)) == expected, f"{dotted} changed upstream: read the patch again, then its digest"


def overrides(module: ModuleType) -> set[str]:
    """Every upstream method a class of ``module`` redefines, as ``module.Class.attr`` of its definer."""
    found = set()
    for cls in vars(module).values():
        if not inspect.isclass(cls) or cls.__module__ != module.__name__:
            continue
        for attr, value in cls.__dict__.items():
            own = (attr.startswith("__") and attr != "__init__") or attr in ("logger", "_abc_impl")
            if own or inspect.isclass(value):
                continue
            for base in cls.__mro__[1:]:
                if attr in base.__dict__ and base.__module__.split(".")[0] in ("faust", "mode", "aiokafka"):
                    found.add(f"{base.__module__}.{base.__qualname__}.{attr}")
                    break
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_override_of_a_patch_module_is_fingerprinted(module: ModuleType) -> None:
    assert overrides(module) == set(module.REPLACES)


def test_a_changed_upstream_source_changes_its_digest() -> None:
    def one() -> int:
        return 1

    def two() -> int:
        return 2

    assert digest(one) != digest(two)


def test_kafkas_producer_fenced_code_is_read_as_the_epoch_error_aiokafka_handles() -> None:
    from aiokafka import errors

    from streams.kafka.patches import fences

    # Had aiokafka learnt code 90 itself, setdefault kept its class: read the patch again then.
    assert fences.PRODUCER_FENCED == 90
    assert errors.for_code(90) is errors.InvalidProducerEpoch


def test_a_fence_is_recognised_in_what_a_write_raised_or_in_what_killed_the_producer() -> None:
    from aiokafka import errors

    from streams.kafka.patches.fences import fenced

    # The sender died of the fence; the next write failed on the producer's fatal state.
    state = AssertionError("Invalid state transition TransactionState.FATAL_ERROR -> IN_TRANSACTION")
    assert fenced(state, errors.ProducerFenced())
    try:
        try:
            raise errors.ProducerFenced()
        except errors.ProducerFenced as inner:
            raise errors.KafkaError("Unexpected error during batch delivery") from inner
    except errors.KafkaError as outer:
        assert fenced(outer)
    assert not fenced(state, None) and not fenced(errors.KafkaConnectionError())
