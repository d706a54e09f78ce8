"""Generated data for the tiny language model: strings from a fixed random bigram grammar, and
addition problems with exactly checkable answers. Nothing is downloaded."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BigramGrammar:
    """Strings over `letters` from a Markov chain whose transition table is drawn once from
    `seed` (Dirichlet with concentration `concentration`: small values give peaked, grammar-like
    transitions). After each letter the string ends with probability `stop`, and always at
    `max_length` letters; strings have at least `min_length` letters."""

    letters: str = "abcdefgh"
    seed: int = 0
    concentration: float = 0.5
    stop: float = 0.15
    min_length: int = 2
    max_length: int = 12

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(first-letter probabilities, transition matrix rows = previous letter)."""
        rng = np.random.default_rng(self.seed)
        k = len(self.letters)
        first = rng.dirichlet(np.full(k, 1.0))
        trans = rng.dirichlet(np.full(k, self.concentration), size=k)
        return first, trans

    def sample(self, n: int, *, seed: int) -> list[str]:
        """n strings drawn with `seed`."""
        first, trans = self.tables()
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            s = [rng.choice(len(first), p=first)]
            while len(s) < self.max_length and (len(s) < self.min_length or rng.random() >= self.stop):
                s.append(rng.choice(len(first), p=trans[s[-1]]))
            out.append("".join(self.letters[i] for i in s))
        return out

    def logprob(self, text: str) -> float:
        """log-probability of a string under the grammar (-inf if it cannot be produced)."""
        first, trans = self.tables()
        if not (self.min_length <= len(text) <= self.max_length) or any(c not in self.letters for c in text):
            return float("-inf")
        ids = [self.letters.index(c) for c in text]
        lp = np.log(first[ids[0]])
        for a, b in zip(ids, ids[1:]):
            lp += np.log(trans[a, b])
        for i in range(1, len(ids) + 1):  # after letter i: continue or stop
            if i < self.min_length:
                continue
            if i == self.max_length:
                break
            lp += np.log(self.stop) if i == len(ids) else np.log1p(-self.stop)
        return float(lp)


ADDITION_SYMBOLS = "0123456789+="


def addition_problems(n: int, digits: int | tuple[int, ...], *, seed: int) -> tuple[list[str], list[str]]:
    """n problems "a+b=" with their answers "c". Each problem draws its number of digits d
    uniformly from `digits`, and both operands have d digits (no leading zeros; one digit
    includes 0). Returns (prompts, answers)."""
    rng = np.random.default_rng(seed)
    choices = (digits,) if isinstance(digits, int) else tuple(digits)
    prompts, answers = [], []
    for _ in range(n):
        d = int(rng.choice(choices))
        a, b = _number(rng, d), _number(rng, d)
        prompts.append(f"{a}+{b}=")
        answers.append(str(a + b))
    return prompts, answers


def operand_digits(prompt: str) -> int:
    """The number of digits of a problem's first operand ("12+34=" -> 2)."""
    return len(prompt.split("+")[0])


def _number(rng: np.random.Generator, digits: int) -> int:
    if digits < 1:
        raise ValueError(f"operands need at least one digit, got {digits}")
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return int(rng.integers(low, 10 ** digits))


def check_addition(prompt: str, answer: str) -> bool:
    """True when `answer` is exactly the sum asked by `prompt` ("a+b=")."""
    a, b = prompt.rstrip("=").split("+")
    return answer == str(int(a) + int(b))
