"""A shared budget (pixels decoded across requests) that waiting threads take from and give back."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class BudgetExhausted(Exception):
    """The budget did not free up enough within the wait allowed."""


class Budget:
    """`capacity` units shared by threads: `take(n, timeout)` waits until n are free, or raises BudgetExhausted."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._condition = threading.Condition()

    @contextmanager
    def take(self, amount: int, timeout: float) -> Iterator[None]:
        if amount > self.capacity:
            raise BudgetExhausted(f"{amount} is over the whole budget of {self.capacity}")
        with self._condition:
            if not self._condition.wait_for(lambda: self.used + amount <= self.capacity, timeout):
                raise BudgetExhausted(f"{self.used} of {self.capacity} in use for over {timeout:g} s")
            self.used += amount
        try:
            yield
        finally:
            with self._condition:
                self.used -= amount
                self._condition.notify_all()
